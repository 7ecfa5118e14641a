"""Semantic segmentation: a class for every pixel (softmax), or object vs background (one sigmoid)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection

from visiontasks.data.collate import original_targets
from visiontasks.errors import DataError, OptionError
from visiontasks.metrics import segmentation_metrics
from visiontasks.models.timm_weights import load_timm_weights
from visiontasks.models.segmentation import load_segmentation_weights, logits_of
from visiontasks.models.segmentation_losses import LossName, SegmentationLoss
from visiontasks.models.tta import TTAName
from visiontasks.pictures.test_plots import confusion_figures
from visiontasks.reports import save_report
from visiontasks.results import SegmentationResult
from visiontasks.tasks.balance import loss_weights
from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.export_graph import CLASSES, ExportGraph, Probabilities
from visiontasks.tasks.tta import active_views, evaluation_scores

class SegmentationTask(BaseTask):
    """Label every pixel with a class (class 0 is usually the background).

    Args:
        model: ``unet`` (the course's U-Net) or a torchvision FCN / DeepLabV3 (``fcn_resnet50``,
            ``deeplabv3_resnet50``, ``deeplabv3_mobilenet_v3_large``); ``weights`` may name
            ImageNet backbone weights (``DEFAULT``) for the torchvision ones.
        model_options: the model's own options, e.g. ``{depth: 3}`` for ``unet`` (declared by
            :class:`~visiontasks.models.unet.UNet`; table in docs/segmentation.md); the torchvision
            models have none.
        binary: for two classes (background, object): one output channel with a sigmoid instead
            of two with a softmax.
        loss: ``ce`` (cross-entropy), ``dice`` (soft Dice), ``ce+dice`` (their sum) or ``focal``.
        ignore_index: mask value of unlabelled pixels, left out of the loss and the metrics.
        class_weights: per-class loss weights for imbalanced data (e.g. a small foreground), or ``auto``: inverse
            pixel frequency in the training masks (logged with the counts).
        focal_gamma: focusing exponent of the focal loss.
        tta: test-time augmentation at test and predict: every pixel's class probabilities averaged over the image
            and its views (``hflip``, ``vflip``, ``scale_up``, ``scale_down``), each mapped back onto the image;
            ``true`` is ``[hflip]``. Results and predictions record the views used.
        **kwargs: the shared options of :class:`BaseTask` (num_classes, weights, optimizer, ...).
    """

    monitor = "val/miou"
    monitor_mode = "max"
    kinds = ("segmentation",)

    def __init__(
        self,
        model: str = "unet",
        model_options: dict[str, Any] | None = None,
        binary: bool = False,
        loss: LossName = "ce",
        ignore_index: int = 255,
        class_weights: list[float] | Literal["auto"] | None = None,
        focal_gamma: float = 2.0,
        tta: bool | list[TTAName] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        if self.num_classes < 2:
            raise OptionError("segmentation needs at least 2 classes: background and one object class (binary: true)")
        if self.hparams.binary and self.num_classes != 2:
            raise OptionError(f"binary: true needs exactly 2 classes (background, object), got {self.num_classes}")
        outputs = 1 if self.hparams.binary else self.num_classes
        self.model = self.build_model("segmentation", num_classes=outputs, in_channels=self.hparams.in_channels)

    def configure_losses(self) -> None:
        self.criterion = SegmentationLoss(self.hparams.loss, self.hparams.ignore_index, loss_weights(self), self.hparams.focal_gamma)

    def configure_metrics(self, stage: str) -> MetricCollection:
        return segmentation_metrics(self.num_classes, self.hparams.ignore_index)

    def load_pretrained(self, weights: str) -> None:
        if not load_timm_weights(self.model, weights):
            load_segmentation_weights(self.model, self.hparams.model, weights)

    def export_graph(self) -> ExportGraph:
        return ExportGraph(Probabilities(self), {
            "probabilities": f"B x num_classes x H x W: softmax {CLASSES}; resize to the original size, then argmax per pixel",
        }, any_size=True)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (B x num_classes x H x W) of a BxCxHxW batch in [0, 1].

        A binary model's sigmoid logit ``z`` comes back as ``[0, z]``, whose softmax is
        ``[1 - sigmoid(z), sigmoid(z)]``, so everything downstream treats both kinds alike.
        """
        logits = logits_of(self.model(self.standardize(images)))
        return torch.cat([torch.zeros_like(logits), logits], dim=1) if self.hparams.binary else logits

    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Tensor]:
        logits = evaluation_scores(self, stacked_images(batch), per_pixel=True)
        return self.criterion(logits, batch["mask"]), logits

    def sample_losses(self, batch: dict[str, Any]) -> Tensor:
        logits, masks = self(stacked_images(batch)), batch["mask"]
        return torch.stack([self.criterion(logits[i : i + 1], masks[i : i + 1]) for i in range(len(logits))])

    def update_metrics(self, metrics: MetricCollection, logits: Tensor, batch: dict[str, Any]) -> None:
        update_mask_metrics(metrics, logits, batch)

    def results(self, batch: dict[str, Any], outputs: Tensor | None = None) -> list[SegmentationResult]:
        """Per input: the predicted class mask (HxW uint8) at the input's original size."""
        return mask_results(self, lambda images: evaluation_scores(self, images, per_pixel=True), batch, outputs, active_views(self))

    def report(self, values: dict[str, Any]) -> None:
        save_iou_report(self, values)


def stacked_images(batch: dict[str, Any]) -> Tensor:
    """The batch's images as one tensor; images of different sizes cannot be scored against stacked masks."""
    if isinstance(batch["image"], list):
        raise DataError(
            "The images of a batch differ in size: set data.init_args.image_size, or add a crop to the "
            "transforms, so that training and evaluation batches can be stacked."
        )
    return batch["image"]


ROWS_AT_ONCE = 128
"""Output rows resized per step: a 12000 x 12000 mask of 21 classes needs 0.13 GB at a time, not 12 GB."""
ONE_RESIZE = 512 * 32768
"""Class scores up to this many values (classes x output pixels) are resized at once: the same classes, faster."""


def class_mask(scores: Tensor, size: tuple[int, int]) -> Tensor:
    """The class of every pixel (HxW uint8) at ``size`` from one image's class scores (C x h x w, logits or
    log-probabilities): probabilities are resized, not labels, for smooth borders. Predictions and the
    evaluation both use it, so the written masks are the ones that were scored.

    Bilinear resizing is separable: rows ``A_h @ P @ A_w^T`` with PyTorch's own linear weights, made a band
    of output rows at a time, so memory follows the mask (one byte a pixel), not classes x pixels x 4 bytes."""
    probs = scores.softmax(dim=0)
    height, width = (int(v) for v in size)
    if probs.shape[-2:] == (height, width):
        return probs.argmax(dim=0).to(torch.uint8)
    if probs.shape[0] * height * width <= ONE_RESIZE:
        resized = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return resized.argmax(dim=0).to(torch.uint8)
    across = probs @ _linear_weights(probs.shape[2], width, probs).T  # C x h x W
    down = _linear_weights(probs.shape[1], height, probs)  # H x h
    mask = torch.empty((height, width), dtype=torch.uint8, device=scores.device)
    for top in range(0, height, ROWS_AT_ONCE):
        rows = slice(top, top + ROWS_AT_ONCE)
        mask[rows] = torch.einsum("rh,chw->crw", down[rows], across).argmax(dim=0).to(torch.uint8)
    return mask


def _linear_weights(size: int, new_size: int, like: Tensor) -> Tensor:
    """``new_size x size``: row ``i`` holds the weights of the inputs for output ``i`` (``align_corners=False``)."""
    identity = torch.eye(size, dtype=like.dtype, device=like.device)[None]
    return F.interpolate(identity, size=new_size, mode="linear", align_corners=False)[0].T


def update_mask_metrics(metrics: MetricCollection, scores: Tensor, batch: dict[str, Any]) -> None:
    """Score predicted classes against the true masks: in each file's own pixels when the batch carries
    them (``original``: the network saw resized images), else at the network's size."""
    originals = original_targets(batch)["mask"]
    if originals is batch["mask"]:
        metrics.update(scores.argmax(dim=1), batch["mask"])
        return
    for image_scores, mask in zip(scores, originals):
        metrics.update(class_mask(image_scores, tuple(mask.shape))[None].long(), mask[None])


def mask_results(task: BaseTask, scores_of: Callable[[Tensor], Tensor], batch: dict[str, Any], outputs: Any = None,
                 tta: tuple[str, ...] = ()) -> list[SegmentationResult]:  # fmt: skip
    """Per input: the predicted class mask (HxW uint8) at the input's original size.

    ``scores_of`` maps a BxCxHxW batch to class scores (B x classes x H x W, logits or log-probabilities);
    ``outputs`` are those scores when already computed; ``tta`` the test-time augmentation views they average.
    """
    images = batch["image"]  # a list when sizes differ (a predict folder without image_size)
    if outputs is None:
        outputs = scores_of(images) if isinstance(images, Tensor) else [scores_of(image[None])[0] for image in images]
    results = []
    for i, scores in enumerate(outputs):
        fields = task.result_fields(batch, i)
        mask = class_mask(scores, fields["orig_size"]).to(torch.uint8).cpu().numpy()
        results.append(SegmentationResult(**fields, mask=mask, tta=tta))
    return results


def save_iou_report(task: BaseTask, values: dict[str, Any]) -> None:
    """Print and save the test IoU of every class and their mean (``test_report.txt`` / ``.json``) and the
    pixel confusion matrices."""
    per_class = values["test/iou_per_class"].tolist()
    rows = [{"class": name, "iou": float(iou)} for name, iou in zip(task.class_names, per_class)]
    rows += [{"class": "mean (miou)", "iou": float(values["test/miou"])}]
    matrix = values["test/confmat"].cpu().numpy()
    figures = confusion_figures(matrix, task.class_names)  # pixels
    save_report(task.trainer, "test_report", "Segmentation report (test): IoU per class", rows, figures, (matrix, task.class_names))
