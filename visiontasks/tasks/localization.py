"""Classification + localization: one label and one box per image, from two heads on one backbone."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchvision.ops import box_convert, generalized_box_iou_loss

from visiontasks.metrics import localization_metrics
from visiontasks.models.localizer import Localizer, boxes_to_pixels
from visiontasks.models.timm_weights import load_timm_weights
from visiontasks.models.weights import load_matching, state_dict_for
from visiontasks.pictures.test_plots import confusion_figures
from visiontasks.reports import per_class_rows, save_report
from visiontasks.results import LocalizationResult
from visiontasks.tasks.balance import loss_weights
from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.export_graph import CLASSES, ExportGraph, LocalizerOutputs

BoxLoss = Literal["smooth_l1", "giou", "l1+giou"]


class LocalizationTask(BaseTask):
    """Say what the single object in an image is and where: a class and a pixel box.

    Loss = ``w_cls * cross_entropy + w_box * box_loss``, the box compared in coordinates
    normalised to the image (so the weights do not depend on the image size).

    Args:
        model: the backbone, any classifier of :class:`ClassificationTask`; its final layer is
            replaced by a class head and a 4-number box head.
        model_options: the classifier's own options, e.g. ``{dropout: 0.3}`` for ``simple_cnn``.
        box_loss: ``smooth_l1`` on the box corners, ``giou`` (generalised IoU) or ``l1+giou`` (both, summed).
        w_cls: weight of the classification loss.
        w_box: weight of the box loss.
        class_weights: per-class weights of the classification loss, or ``auto``: inverse class frequency in the
            training split (logged with the counts).
        **kwargs: the shared options of :class:`BaseTask` (num_classes, weights, optimizer, ...).
    """

    monitor = "val/loc_acc"
    monitor_mode = "max"
    kinds = ("localization",)

    def __init__(
        self,
        model: str = "resnet18",
        model_options: dict[str, Any] | None = None,
        box_loss: BoxLoss = "l1+giou",
        w_cls: float = 0.8,
        w_box: float = 0.2,
        class_weights: list[float] | Literal["auto"] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        classifier = self.build_model("classification", num_classes=self.num_classes, in_channels=self.hparams.in_channels)
        self.model = Localizer(classifier, self.num_classes)

    def configure_losses(self) -> None:
        self.register_buffer("class_weight", loss_weights(self), persistent=False)

    def configure_metrics(self, stage: str) -> MetricCollection:
        return localization_metrics(self.num_classes)

    def load_pretrained(self, weights: str) -> None:
        """ImageNet weights or a classification checkpoint fill the backbone; a localization one fills all."""
        if load_timm_weights(self.model, weights):
            return
        state = state_dict_for(weights, self.hparams.model)
        whole = any(key.startswith(("backbone.", "model.backbone.")) for key in state)
        load_matching(self.model if whole else self.model.backbone, state)

    def trainable_when_frozen(self) -> tuple[str, ...]:
        return ("model.class_head", "model.box_head")

    def export_graph(self) -> ExportGraph:
        return ExportGraph(LocalizerOutputs(self), {
            "probabilities": f"B x num_classes: softmax {CLASSES}",
            "boxes": "B x 4: x_min, y_min, x_max, y_max as fractions of the image: multiply by the original width/height",
        })

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits (BxK) and normalised ``cx, cy, w, h`` boxes (Bx4) of a BxCxHxW batch in [0, 1]."""
        return self.model(self.standardize(images))

    def box_loss(self, boxes: Tensor, target: Tensor) -> Tensor:
        """The configured box loss between normalised xyxy boxes."""
        kind = self.hparams.box_loss
        if kind == "smooth_l1":
            return F.smooth_l1_loss(boxes, target, beta=0.05)
        loss = generalized_box_iou_loss(boxes, target, reduction="mean")
        return loss + F.l1_loss(boxes, target) if kind == "l1+giou" else loss

    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        logits, boxes = self(batch["image"])
        size = torch.tensor(batch["image"].shape[-2:], device=boxes.device)
        target = batch["box"] / size.flip(0).repeat(2)  # pixel xyxy -> [0, 1]
        class_loss = F.cross_entropy(logits, batch["label"], weight=self.class_weight)
        box_loss = self.box_loss(box_convert(boxes, "cxcywh", "xyxy"), target)
        self.log_losses(stage, {"loss_cls": class_loss, "loss_box": box_loss}, len(logits))
        loss = self.hparams.w_cls * class_loss + self.hparams.w_box * box_loss
        return loss, (logits, boxes_to_pixels(boxes, size))

    def sample_losses(self, batch: dict[str, Any]) -> Tensor:
        logits, boxes = self(batch["image"])
        size = torch.tensor(batch["image"].shape[-2:], device=boxes.device)
        target, boxes = batch["box"] / size.flip(0).repeat(2), box_convert(boxes, "cxcywh", "xyxy")
        box = torch.stack([self.box_loss(boxes[i : i + 1], target[i : i + 1]) for i in range(len(boxes))])
        classes = F.cross_entropy(logits, batch["label"], weight=self.class_weight, reduction="none")
        return self.hparams.w_cls * classes + self.hparams.w_box * box

    def update_metrics(self, metrics: MetricCollection, predictions: tuple[Tensor, Tensor], batch: dict[str, Any]) -> None:
        logits, boxes = predictions
        metrics.update({"scores": logits.softmax(dim=1), "box": boxes}, {"label": batch["label"], "box": batch["box"]})

    def results(self, batch: dict[str, Any], outputs: tuple[Tensor, Tensor] | None = None) -> list[LocalizationResult]:
        """Per image: label, score and the box in the original image's pixels."""
        logits, boxes = self(batch["image"]) if outputs is None else outputs
        scores, labels = logits.detach().float().softmax(dim=1).max(dim=1)
        fields = [self.result_fields(batch, i) for i in range(len(boxes))]
        pixels = boxes_to_pixels(boxes.detach().float().cpu(), torch.tensor([f["orig_size"] for f in fields]))
        return [
            LocalizationResult(**f, label=self.class_names[int(label)], score=round(float(score), 4),
                               box=tuple(round(v, 1) for v in box.tolist()))  # fmt: skip
            for f, label, score, box in zip(fields, labels, scores, pixels)
        ]

    def report(self, values: dict[str, Any]) -> None:
        """Per class: precision, recall, F1, support, mean box IoU and localization accuracy; confusion matrices."""
        matrix, names = values["test/confmat"].cpu().numpy(), self.class_names
        tp = matrix.diagonal()
        rows = per_class_rows(names, tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp)
        count, iou, hits = values["test/per_class"].cpu().double()
        for k, row in enumerate(rows[: len(names)]):
            row.update(iou=float(iou[k]), loc_acc=float(hits[k]))
        weights = count / count.sum().clamp(min=1)
        for row in rows[len(names):]:  # macro and weighted averages
            average = (lambda a: float(a.mean())) if row["class"] == "macro avg" else (lambda a: float((a * weights).sum()))
            row.update(iou=average(iou), loc_acc=average(hits))
        title = "Localization report (test): class scores, box IoU and loc_acc (class right and IoU >= 0.5)"
        save_report(self.trainer, "test_report", title, rows, confusion_figures(matrix, names), (matrix, names))
