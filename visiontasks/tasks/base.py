"""What every task shares: optimiser and schedule, per-stage metrics, freezing, logging, checkpoints.

A task subclass builds its model, loss and metrics in ``configure_models`` / ``configure_losses``
/ ``configure_metrics`` and says how a batch becomes a loss and predictions in ``compute``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn
from torchmetrics import MetricCollection

from visiontasks.callbacks.budget import TrainingBudget
from visiontasks.callbacks.preemption import Preemption
from visiontasks.checkpoints import RETIRED_HPARAMS, BestCheckpoint, LastCheckpoint, loadable, saved_inputs, stamp
from visiontasks.data.inputs import ImageInput
from visiontasks.errors import CheckpointError, DataError, ExportError, OptionError, TrainingStopped, check_option
from visiontasks.inference import predict_images
from visiontasks.model_folder import ModelFolder, load_folder_weights, model_card, read_model_folder, write_model_folder
from visiontasks.models.normalize import normalize
from visiontasks.models.registry import create_model, model_entry
from visiontasks.tasks.option_checks import check_optimizer
from visiontasks.pictures import RunPictures
from visiontasks.results import PredictionWriter, Result, network_picture
from visiontasks.tasks.balance import use_training_class_weights
from visiontasks.tasks.data_contract import check_data, register_kinds
from visiontasks.tasks.export_graph import ExportGraph
from visiontasks.tasks.loss_means import LossMeans
from visiontasks.tasks.quiet import quiet_expected_lightning_messages
from visiontasks.tasks.step_seeds import seed_step
from visiontasks.version import __version__

STAGES = ("train", "val", "test")
quiet_expected_lightning_messages()  # at import: the tips come when a Trainer is made, before any task hook
PLAIN_SCHEDULE = TrainingBudget(warmup=0.0, lr_floor=0.0)
"""The schedule of a Trainer without a ``TrainingBudget`` (plain Python): cosine decay to zero, no warm-up."""


def _all_subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_all_subclasses(direct))]


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
        optimizer: optimiser class and arguments (default AdamW, lr 1e-3, fused kernel where the device has one).
        lr_scheduler: learning-rate schedule; ``None`` gives cosine decay over the run (with the CLI's budget: a warm-up first, to a floor).
    """

    monitor: str = "val/loss"
    needs_checkpoint: bool = True
    """``validate``, ``test``, ``predict`` and ``export`` need ``--ckpt_path``: without it they would run untrained
    weights and write normal-looking results (the classic baselines, which need no training, say ``False``)."""
    monitor_mode: str = "min"
    kinds: tuple[str, ...] = ()
    """The sample kinds (see :mod:`visiontasks.kinds`) this task trains on; checked at set-up. The first task
    defined with a kind is that kind's task (:data:`TASK_OF_KIND`)."""

    explained_by_grad_cam: bool = False
    """The test's ``grad_cam.png`` shows where the network looked for the class it gave the image."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register_kinds(cls)

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
        quiet_expected_lightning_messages()  # again: a caller's warnings.catch_warnings may have reset the filters
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        check_option(num_classes >= 1, "--model.init_args.num_classes", num_classes, "give at least 1 class.")
        if class_names is not None and len(class_names) != num_classes:
            raise OptionError(f"--model.init_args.class_names: {len(class_names)} names given for num_classes={num_classes}.")
        check_option(in_channels >= 1, "--model.init_args.in_channels", in_channels, "give 1 (grayscale) or 3 (RGB).")
        check_option(unfreeze_at_epoch is None or unfreeze_at_epoch >= 0, "--model.init_args.unfreeze_at_epoch",
                     unfreeze_at_epoch, "give an epoch number (0 or more), or null.")  # fmt: skip
        check_optimizer(optimizer)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.pretrained_loaded = False
        self.backbone_frozen = False
        self.configure_models()
        self.configure_losses()
        for stage in STAGES:  # attributes, not a ModuleDict: "train" would shadow Module.train
            setattr(self, f"{stage}_metrics", self.configure_metrics(stage).clone(prefix=f"{stage}/"))
        self.loss_means = LossMeans()  # this epoch's validation and test losses (see log_losses)
        if freeze_backbone:
            self.set_backbone_frozen(True)

    # ----- what a task provides -----------------------------------------------------------------
    @abc.abstractmethod
    def configure_models(self) -> None:
        """Build ``self.model`` (and anything else with weights) from ``self.hparams``."""

    def configure_losses(self) -> None:
        """Build the loss modules from ``self.hparams`` (tasks whose model computes its loss skip this)."""

    @abc.abstractmethod
    def configure_metrics(self, stage: str) -> MetricCollection:
        """The metrics of ``stage`` (``train``, ``val`` or ``test``), cloned with its prefix. Every scalar is
        logged when the epoch ends; a task may leave out of training and validation what only the test report
        uses (a confusion matrix, ROC curves) or what costs more per step than a small step."""

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
        """Parameter-name prefixes that stay trainable when the backbone is frozen (the heads): by default the head
        that the registration of ``hparams.model`` names."""
        registration = getattr(self, "registration", None)
        return tuple(f"model.{prefix}" for prefix in registration.trainable_when_frozen) if registration else ()

    def export_graph(self) -> ExportGraph:
        """The network :func:`visiontasks.export` writes, and how to read its outputs."""
        raise ExportError(f"{type(self).__name__} cannot be exported (no network to export: it is not trained by gradient).")

    def sample_losses(self, batch: dict[str, Any]) -> Tensor | None:
        """The loss of each sample of ``batch`` (the top-losses picture ranks the test images by it); ``None`` for a
        task without a loss (the classic methods), which then has no top-losses picture."""
        return None

    @abc.abstractmethod
    def results(self, batch: dict[str, Any], outputs: Any = None) -> list[Result]:
        """One typed result per image of ``batch``, in the original images' pixels, from ``outputs`` (what
        ``forward`` gives for the batch's images; computed when ``None``)."""

    # ----- shared behaviour ---------------------------------------------------------------------
    def build_model(self, kind: str, **fixed: Any) -> nn.Module:
        """The registered model ``hparams.model`` of ``kind``, with the user's ``model_options`` and the
        arguments the task sets itself (``fixed``: classes and channels from the data, ...)."""
        options = dict(self.hparams.get("model_options") or {})
        taken = sorted(set(options) & set(fixed))
        if taken:
            raise DataError(f"model_options {', '.join(taken)}: {type(self).__name__} sets these itself; remove them.")
        self.registration = model_entry(self.hparams.model, kind)  # the model's facts, for the task to ask
        return create_model(self.hparams.model, kind, **fixed, **options)

    def standardize(self, images: Tensor) -> Tensor:
        """A batch in [0, 1] standardised as the model's registration says (ImageNet's statistics unless it says
        otherwise: a timm model's come from its pretrained config)."""
        registration = getattr(self, "registration", None)
        return normalize(images, registration.mean, registration.std) if registration else normalize(images)

    @property
    def num_classes(self) -> int:
        return self.hparams.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.hparams.class_names or [str(i) for i in range(self.num_classes)]

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        check_data(self, datamodule)
        use_training_class_weights(self, datamodule)
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
        optimizer = self._optimizer()
        if self.lr_scheduler_factory is not None:
            scheduler = self.lr_scheduler_factory(optimizer)
            config = {"scheduler": scheduler, "interval": "epoch"}
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                config["monitor"] = self.monitor
            return {"optimizer": optimizer, "lr_scheduler": config}
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._cosine_over_run())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _optimizer(self) -> torch.optim.Optimizer:
        """The default AdamW runs PyTorch's fused kernel where the parameters' device has one (one pass over all
        tensors: ResNet-18's optimiser step 86 -> 21 ms on a CPU core); configs ask for it with ``fused: true``."""
        if self.optimizer_factory is torch.optim.AdamW:
            parameters = list(self.parameters())
            try:
                return torch.optim.AdamW(parameters, fused=True)
            except RuntimeError:  # a device without the fused kernel
                return torch.optim.AdamW(parameters)
        return self.optimizer_factory(self.parameters())

    def _cosine_over_run(self) -> Any:
        """Warm-up, then cosine decay to a floor over the run's steps, as the Trainer's ``TrainingBudget`` says (the
        CLI always has one; see :mod:`visiontasks.callbacks.budget`), else cosine to zero; the step count is looked
        up at the first step.

        Asking for the step count here would make Lightning build the training loader before a resumed
        run has restored its epoch, and its workers would prefetch epoch 0's order.
        """

        def factor(step: int) -> float:
            trainer = self._trainer  # None when the optimiser is built outside a Trainer (LambdaLR asks for step 0)
            callbacks = trainer.callbacks if trainer is not None else []
            budget = next((c for c in callbacks if isinstance(c, TrainingBudget)), PLAIN_SCHEDULE)
            return budget.lr_factor(step, trainer.estimated_stepping_batches if step and trainer is not None else math.inf)

        return factor

    def configure_callbacks(self) -> list[Callback]:
        """Unless the Trainer has them, the prediction writer and the run's pictures (W&B overlays too); when
        fitting also ``last.ckpt`` (every epoch) and the best checkpoint by its monitor.

        Only when fitting: a later ``trainer.test`` keeps the fit's checkpoint callbacks, and with them
        ``trainer.checkpoint_callback.best_model_path``.
        """
        callbacks: list[Callback] = []
        for kind in (PredictionWriter, RunPictures):  # the CLI adds its own, configured
            if not any(isinstance(c, kind) for c in self.trainer.callbacks):
                callbacks.append(kind())
        if self.trainer.state.fn == TrainerFn.FITTING:
            callbacks = [BestCheckpoint(self.monitor, self.monitor_mode), LastCheckpoint(), *callbacks]
            if not any(isinstance(c, Preemption) for c in self.trainer.callbacks):
                callbacks.append(Preemption())  # SIGTERM / Ctrl+C: a resumable checkpoint and a non-zero exit
        return callbacks

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path | IO, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's loading, for checkpoints of older versions too (see :func:`visiontasks.checkpoints.loadable`)."""
        return super().load_from_checkpoint(loadable(checkpoint_path), *args, **kwargs)

    def save_pretrained(self, path: str | Path, metrics: dict[str, float] | None = None) -> Path:
        """Write this task as a model folder: weights (safetensors), options and class names, input settings and a
        model card with ``metrics``; :meth:`from_pretrained` loads it, ``huggingface_hub`` pushes it as it is."""
        name, path = type(self).__name__, Path(path)
        hparams = {k: v for k, v in dict(self.hparams).items() if not k.startswith("_")}
        folder = ModelFolder(name, hparams, self.input_settings(), __version__)
        usage = f"from visiontasks import {name}\ntask = {name}.from_pretrained({path.name!r})\nresults = task.predict([\"photo.jpg\"])"
        return write_model_folder(path, self, folder, model_card(path.name, folder, metrics or {}, usage))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Any:
        """The task of a model folder (``python -m visiontasks save``): its options, weights and input settings; in
        eval mode, nothing downloaded. ``BaseTask.from_pretrained`` gives whichever task the folder holds."""
        folder = read_model_folder(path)
        task_class = cls.subclass_named(folder.task)
        options = {k: v for k, v in folder.hparams.items() if not k.startswith("_") and k not in RETIRED_HPARAMS}
        options.update({k: None for k in ("weights", "backbone_weights") if k in options})  # the folder has them
        task = task_class(**options)
        load_folder_weights(task, path)
        task.saved_inputs = folder.inputs
        return task.eval()

    @classmethod
    def subclass_named(cls, name: str) -> type[BaseTask]:
        """The task class called ``name``: this one or one below it (a folder or checkpoint of another is an error)."""
        found = [c for c in (cls, *_all_subclasses(cls)) if c.__name__ == name]
        if not found:
            raise CheckpointError(f"this is a {name}'s model, not a {cls.__name__}'s: load it with {name}.")
        return found[0]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record which task made the checkpoint, so that loading it into another one fails clearly, and how
        its images were prepared, so that ``predict`` prepares new ones alike."""
        stamp(checkpoint, type(self).__name__, __version__, self.input_settings())

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        seed_step(self, batch_idx)

    def log_losses(self, stage: str, losses: dict[str, Tensor], batch_size: int) -> None:
        """Log ``{stage}/{name}`` for each loss: every step in training; for validation and test the epoch's
        mean over all images of all processes, logged when the epoch ends (:class:`LossMeans`)."""
        if stage == "train":
            self.log_dict({f"train/{name}": value for name, value in losses.items()}, batch_size=batch_size,
                          prog_bar="loss" in losses)  # fmt: skip
            return
        for name, value in losses.items():
            self.loss_means.update(f"{stage}/{name}", value, batch_size)

    def _step(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Any]:
        loss, predictions = self.compute(batch, stage)
        self.update_metrics(self.stage_metrics(stage), predictions, batch)
        self.log_losses(stage, {"loss": loss}, len(batch["image"]))
        return loss, predictions

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not batch:  # every sample of the batch was skipped by the augmentation
            return None
        loss = self._step(batch, "train")[0]
        if not torch.isfinite(loss):
            raise TrainingStopped(self._non_finite_message(float(loss.detach()), batch_idx))
        return loss

    def _non_finite_message(self, loss: float, batch_idx: int) -> str:
        last = [Path(c.dirpath) / "last.ckpt" for c in self.trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint) and c.dirpath]
        good = str(last[0]) if last and last[0].is_file() else "none yet (no epoch has ended)"
        return (
            f"train/loss is {loss} at epoch {self.current_epoch}, step {self.global_step} (batch {batch_idx}): training "
            f"stopped before this update; the last good checkpoint is {good}. Lower the learning rate, clip gradients "
            "(--trainer.gradient_clip_val 1.0) or look for bad values in the data."
        )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> list[Result]:
        """The typed results of a batch (see :meth:`results`); the ``predict`` command's writer saves them."""
        return self.results(batch)

    def predict(
        self, inputs: ImageInput | Sequence[ImageInput], batch_size: int = 16, device: str | torch.device | None = None
    ) -> list[Result]:
        """Predict on your own images: one typed result per image, in the image's own pixels.

        Args:
            inputs: image file paths, folders (their images, sorted), PIL images, numpy arrays (HxWxC or HxW,
                uint8 or float in [0, 1]) or tensors (CxHxW, or BxCxHxW for several); one or a list.
            batch_size: images per forward pass.
            device: where to run; default the GPU when there is one, else where the task is.

        Images are prepared as evaluation prepared them (eval transforms, training size and channels, kept in
        the checkpoint), so ``Task.load_from_checkpoint(path).predict(...)`` needs neither a Trainer nor data.
        """
        return predict_images(self, inputs, batch_size, device)

    def input_settings(self) -> dict[str, Any]:
        """How images are prepared for this task: by the data module it is trained with, else as its checkpoint
        says (see :meth:`VisionDataModule.input_settings`), else as they are (no resize, no transforms)."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if hasattr(datamodule, "input_settings"):
            return datamodule.input_settings()
        return getattr(self, "saved_inputs", None) or {"image_size": None, "in_channels": self.hparams.in_channels}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.saved_inputs = saved_inputs(checkpoint)

    def result_fields(self, batch: dict[str, Any], i: int) -> dict[str, Any]:
        """What every result of image ``i`` of ``batch`` carries: file, original size, class names, and the picture
        to draw on when there is no file (the caller's array, else the network input resized back)."""
        path = batch["path"][i] if "path" in batch else ""
        image = batch["image"][i]
        size = tuple(int(v) for v in batch["orig_size"][i]) if "orig_size" in batch else tuple(image.shape[-2:])
        picture = batch["picture"][i] if "picture" in batch else None
        if picture is None and not (path and Path(path).is_file()):
            picture = network_picture(image, size)
        return {"path": path, "orig_size": size, "class_names": self.class_names, "picture": picture}

    def report(self, values: dict[str, Any]) -> None:
        """Called with every test metric value (per-class ones too) to print and save a report."""

    def _end_epoch(self, stage: str) -> None:
        values = self.stage_metrics(stage).compute()
        scalars = {k: v for k, v in values.items() if isinstance(v, Tensor) and v.numel() == 1}
        self.log_dict(scalars, prog_bar=stage == "val", sync_dist=True)  # already synced: silences the DDP hint
        self.loss_means.log(self, stage)
        if stage == "test":
            self.report(values)
        self.stage_metrics(stage).reset()

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")
