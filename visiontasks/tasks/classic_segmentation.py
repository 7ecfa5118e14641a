"""Classic segmentation baselines (threshold, edges, clustering) through the same CLI, data and metrics as the U-Net.

Nothing is trained by gradient: ``fit`` makes one pass over the training split to fill the model's
vote table (which class each kind of region is), kept in the checkpoint; validate, test and
predict then work as for :class:`SegmentationTask`, with the same metric names and prediction files.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from torchmetrics import MetricCollection

from visiontasks.errors import OptionError
from visiontasks.metrics import segmentation_metrics
from visiontasks.models.classic_segmentation import ClassicMethod, ClassicSegmentation
from visiontasks.results import SegmentationResult
from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.segmentation import mask_results, save_iou_report, stacked_images, update_mask_metrics

# This task has no optimiser on purpose; Lightning's warning about that would only alarm its users.
warnings.filterwarnings("ignore", message="`LightningModule.configure_optimizers` returned `None`")


class ClassicSegmentationTask(BaseTask):
    """Label every pixel with a classic method whose regions get classes by a vote learned in ``fit``.

    Args:
        num_classes: classes of the masks, 0 = background (the CLI takes it from the data module).
        model: the method: ``otsu`` or ``local_threshold`` (threshold), ``sobel_watershed`` or ``canny_watershed``
            (edges), ``kmeans`` or ``slic`` (clustering).
        model_options: the method's own options, e.g. ``{block_size: 51}`` for ``local_threshold``,
            ``{sigma: 2.0}`` for the edge methods, ``{n_clusters: 3, position_weight: 0.5}`` for
            ``kmeans``, ``{n_segments: 200, compactness: 20}`` for ``slic``.
        class_names: names of the classes (the CLI takes them from the data module).
        in_channels: image channels (the CLI takes it from the data module).
        ignore_index: mask value of unlabelled pixels: no vote, no metric.
    """

    needs_checkpoint = False  # its vote is learned in seconds; test and predict may run without a fit

    monitor = "val/miou"
    monitor_mode = "max"
    kinds = ("segmentation",)

    def __init__(
        self,
        num_classes: int,
        model: ClassicMethod = "otsu",
        model_options: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
        in_channels: int = 3,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(num_classes=num_classes, class_names=class_names, in_channels=in_channels)
        self.automatic_optimization = False  # votes are counted, not optimised

    def configure_models(self) -> None:
        if self.num_classes < 2:
            raise OptionError("segmentation needs at least 2 classes: background and one object class")
        hp = self.hparams
        self.model = ClassicSegmentation(hp.model, self.num_classes, hp.ignore_index, **(hp.model_options or {}))
        self.register_buffer("new_votes", self.model.votes.clone(), persistent=False)  # this epoch's, per rank

    def configure_metrics(self, stage: str) -> MetricCollection:
        return segmentation_metrics(self.num_classes, self.hparams.ignore_index)

    def configure_optimizers(self) -> None:
        """Nothing to optimise: Lightning stands in a no-op optimiser, stepped once per batch counted."""
        return None

    def forward(self, images: Tensor) -> Tensor:
        """Class log-probabilities (B x num_classes x H x W) of a BxCxHxW batch in [0, 1]."""
        return self.model(images)

    def on_fit_start(self) -> None:
        if self.num_classes > 2:
            rank_zero_info(
                f"{self.hparams.model} separates objects from background, not one object class from another: "
                "each object-like region gets the class most often seen with regions like it in training, "
                f"and the scores count that on all {self.num_classes} classes."
            )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch:  # empty when the augmentation skipped every sample
            self.new_votes += self.model.count(self.model.keys(stacked_images(batch)), batch["mask"])
        self.optimizers().step()  # advances global_step, which checkpoints and loggers count in

    def on_validation_start(self) -> None:
        self._merge_votes()  # validation inside fit runs before on_train_epoch_end: score the votes so far

    def on_train_epoch_end(self) -> None:
        self._merge_votes()

    def _merge_votes(self) -> None:
        """Add every rank's new votes to the table (summed over ranks, so all ranks keep the same table)."""
        new_votes = self.trainer.strategy.reduce(self.new_votes.clone(), reduce_op="sum")  # one device: the same tensor
        self.new_votes.zero_()
        if int(new_votes.sum()) == 0:
            return
        self.model.add_votes(new_votes)
        names = [self.class_names[c] for c in self.model.classes_predicted()]
        rank_zero_info(f"{self.hparams.model}: {int(self.model.votes.sum())} labelled pixels counted; predicts {names}")

    def on_validation_epoch_start(self) -> None:
        self._warn_if_unfitted()

    def on_test_epoch_start(self) -> None:
        self._warn_if_unfitted()

    def _warn_if_unfitted(self) -> None:
        if not self.trainer.sanity_checking and int(self.model.votes.sum()) == 0:
            rank_zero_warn(f"{self.hparams.model} has counted no votes yet (run fit, or pass --ckpt_path): every pixel is background")

    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Tensor]:
        log_probs = self(stacked_images(batch))
        labelled = batch["mask"] != self.hparams.ignore_index
        loss = F.nll_loss(log_probs, batch["mask"], ignore_index=self.hparams.ignore_index) if labelled.any() else log_probs.new_zeros(())
        return loss, log_probs

    def update_metrics(self, metrics: MetricCollection, log_probs: Tensor, batch: dict[str, Any]) -> None:
        update_mask_metrics(metrics, log_probs, batch)

    def results(self, batch: dict[str, Any], outputs: Tensor | None = None) -> list[SegmentationResult]:
        """Per input: the predicted class mask (HxW uint8) at the input's original size."""
        return mask_results(self, self, batch, outputs)

    def report(self, values: dict[str, Any]) -> None:
        save_iou_report(self, values)
