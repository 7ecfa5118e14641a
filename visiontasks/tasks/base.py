"""What every task shares: optimiser and schedule, per-stage metrics, freezing, logging, checkpoints.

A task subclass builds its model, loss and metrics in ``configure_models`` / ``configure_losses``
/ ``configure_metrics`` and says how a batch becomes a loss and predictions in ``compute``.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MetricCollection

from visiontasks.callbacks.wandb_images import WandbImageLogger
from visiontasks.errors import DataError

STAGES = ("train", "val", "test")


class BaseTask(pl.LightningModule, abc.ABC):
    """Base of every task.

    Args:
        num_classes: number of classes (the CLI takes it from the data module).
        class_names: names of the classes, kept in the checkpoint for predictions and reports.
        in_channels: image channels (1 grayscale, 3 RGB; the CLI takes it from the data module).
        weights: pretrained weights: a torchvision name (``DEFAULT``, ``IMAGENET1K_V1``) or a file path.
            Loaded when training starts from scratch; never when a checkpoint is restored.
        freeze_backbone: train only the head (transfer learning).
        unfreeze_at_epoch: with ``freeze_backbone``, make the whole network trainable from this epoch.
        optimizer: optimiser class and arguments (default AdamW, lr 1e-3).
        lr_scheduler: learning-rate schedule; ``None`` gives cosine decay over the whole run.
    """

    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(
        self,
        num_classes: int,
        class_names: list[str] | None = None,
        in_channels: int = 3,
        weights: str | None = None,
        freeze_backbone: bool = False,
        unfreeze_at_epoch: int | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class_names given for num_classes={num_classes}")
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.pretrained_loaded = False
        self.backbone_frozen = False
        self.configure_models()
        self.configure_losses()
        metrics = self.configure_metrics()
        for stage in STAGES:  # attributes, not a ModuleDict: "train" would shadow Module.train
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}/"))
        if freeze_backbone:
            self.set_backbone_frozen(True)

    # ----- what a task provides -----------------------------------------------------------------
    @abc.abstractmethod
    def configure_models(self) -> None:
        """Build ``self.model`` (and anything else with weights) from ``self.hparams``."""

    def configure_losses(self) -> None:
        """Build the loss modules from ``self.hparams`` (tasks whose model computes its loss skip this)."""

    @abc.abstractmethod
    def configure_metrics(self) -> MetricCollection:
        """The metrics of one stage; cloned with ``train/``, ``val/`` and ``test/`` prefixes."""

    @abc.abstractmethod
    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Any]:
        """The loss of a batch and the predictions the metrics take."""

    @abc.abstractmethod
    def update_metrics(self, metrics: MetricCollection, predictions: Any, batch: dict[str, Any]) -> None:
        """Feed one batch of predictions and targets to ``metrics``."""

    def load_pretrained(self, weights: str) -> None:
        """Load pretrained ``weights`` into the model (tasks with a pretrained option override this)."""
        raise ValueError(f"{type(self).__name__} with these settings takes no pretrained weights")

    def trainable_when_frozen(self) -> tuple[str, ...]:
        """Parameter-name prefixes that stay trainable when the backbone is frozen (the heads)."""
        return ()

    def extra_callbacks(self) -> list[Callback]:
        """Callbacks the task always brings (prediction writers)."""
        return []

    # ----- shared behaviour ---------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.hparams.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.hparams.class_names or [str(i) for i in range(self.num_classes)]

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        expected = getattr(datamodule, "num_classes", None)
        if expected and expected != self.num_classes:
            raise DataError(
                f"The task has num_classes={self.num_classes} but the data has {expected} classes "
                f"{getattr(datamodule, 'class_names', '')}: drop num_classes from the task (the CLI links it) "
                "or make the two agree."
            )
        channels = getattr(datamodule, "in_channels", None)
        if channels and channels != self.hparams.in_channels:
            raise DataError(f"The task has in_channels={self.hparams.in_channels} but the data gives {channels}.")
        if self.hparams.get("weights") and not self.pretrained_loaded and self.trainer.ckpt_path is None:
            self.load_pretrained(self.hparams.weights)
            self.pretrained_loaded = True

    def stage_metrics(self, stage: str) -> MetricCollection:
        return getattr(self, f"{stage}_metrics")

    def set_backbone_frozen(self, frozen: bool) -> None:
        keep = self.trainable_when_frozen()
        for name, parameter in self.named_parameters():
            if not (keep and name.startswith(keep)):
                parameter.requires_grad = not frozen
        self.backbone_frozen = frozen
        self.train(self.training)

    def train(self, mode: bool = True) -> BaseTask:
        """Frozen batch-norm layers keep their running statistics, as in the transfer-learning recipe."""
        super().train(mode)
        if mode and self.backbone_frozen:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    if not any(p.requires_grad for p in module.parameters()):
                        module.eval()
        return self

    def on_train_epoch_start(self) -> None:
        epoch = self.hparams.get("unfreeze_at_epoch")  # tasks without a backbone leave it out
        if self.backbone_frozen and epoch is not None and self.current_epoch >= epoch:
            self.set_backbone_frozen(False)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_scheduler_factory is not None:
            scheduler = self.lr_scheduler_factory(optimizer)
            config = {"scheduler": scheduler, "interval": "epoch"}
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                config["monitor"] = self.monitor
            return {"optimizer": optimizer, "lr_scheduler": config}
        steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(steps):
            return {"optimizer": optimizer}
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(steps)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[Callback]:
        """``last.ckpt`` plus the best checkpoint by the task's monitored metric, in every run."""
        best = ModelCheckpoint(
            monitor=self.monitor,
            mode=self.monitor_mode,
            save_last=True,
            filename="best-epoch{epoch:03d}",
            auto_insert_metric_name=False,
        )
        return [best, WandbImageLogger(), *self.extra_callbacks()]

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Any]:
        loss, predictions = self.compute(batch, stage)
        self.update_metrics(self.stage_metrics(stage), predictions, batch)
        batch_size = len(batch["image"])
        if stage == "train":
            self.log("train/loss", loss, batch_size=batch_size, prog_bar=True)
        else:
            self.log(f"{stage}/loss", loss, batch_size=batch_size, on_epoch=True, sync_dist=True, prog_bar=True)
        return loss, predictions

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not batch:  # every sample of the batch was skipped by the augmentation
            return None
        return self._step(batch, "train")[0]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def report(self, values: dict[str, Any]) -> None:
        """Called with every test metric value (per-class ones too) to print and save a report."""

    def _end_epoch(self, stage: str) -> None:
        values = self.stage_metrics(stage).compute()
        scalars = {k: v for k, v in values.items() if isinstance(v, Tensor) and v.numel() == 1}
        self.log_dict(scalars, prog_bar=stage == "val", sync_dist=True)  # already synced: silences the DDP hint
        if stage == "test":
            self.report(values)
        self.stage_metrics(stage).reset()

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")
