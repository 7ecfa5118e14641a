"""The metric collection of each task, from torchmetrics only."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
from torch import Tensor
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    AUROC,
    Accuracy,
    ConfusionMatrix,
    F1Score,
    JaccardIndex,
    Precision,
    Recall,
)
from torchmetrics.detection import MeanAveragePrecision
from torchmetrics.wrappers import LambdaInputTransformer
from torchvision.ops import box_iou


def classification_metrics(num_classes: int, multilabel: bool = False, summaries: bool = True) -> MetricCollection:
    """acc, precision, recall, f1 (macro), and with ``summaries`` auroc and the confusion matrix (for the test
    report), which training leaves out: updating them costs more per step than the other four together."""
    if multilabel:
        kind = {"task": "multilabel", "num_labels": num_classes}
    elif num_classes == 1:
        raise ValueError("classification needs at least 2 classes (or multilabel: true)")
    else:
        kind = {"task": "multiclass", "num_classes": num_classes}
    metrics = {
        "acc": Accuracy(**kind, average="micro"),
        "precision": Precision(**kind, average="macro"),
        "recall": Recall(**kind, average="macro"),
        "f1": F1Score(**kind, average="macro"),
    }
    if summaries:
        metrics["auroc"] = AUROC(**kind, average="macro", thresholds=200)  # binned: constant memory per epoch
        metrics["confmat"] = ConfusionMatrix(**kind)
    return MetricCollection(metrics)


class BoxIoU(MeanMetric):
    """Mean IoU of each image's predicted box with its true box (one box per image, xyxy)."""

    def update(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> None:
        super().update(box_iou(preds["box"], target["box"]).diagonal())


class LocalizationAccuracy(MeanMetric):
    """Share of images whose class is right AND whose box has IoU >= ``iou_threshold`` with the true box."""

    def __init__(self, iou_threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.iou_threshold = iou_threshold

    def update(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> None:
        iou = box_iou(preds["box"], target["box"]).diagonal()
        right = preds["scores"].argmax(dim=1) == target["label"]
        super().update((right & (iou >= self.iou_threshold)).float())


def localization_metrics(num_classes: int, iou_threshold: float = 0.5) -> MetricCollection:
    """acc, f1 (macro), mean box iou and loc_acc, all updated with the same two dicts.

    ``preds`` holds ``scores`` (BxK class scores) and ``box`` (Bx4 xyxy); ``target`` holds
    ``label`` (B) and ``box`` (Bx4 xyxy, same pixels as the predictions).
    """
    kind = {"task": "multiclass", "num_classes": num_classes}
    scores, label = itemgetter("scores"), itemgetter("label")
    metrics = {
        "acc": LambdaInputTransformer(Accuracy(**kind, average="micro"), scores, label),
        "f1": LambdaInputTransformer(F1Score(**kind, average="macro"), scores, label),
        "iou": BoxIoU(),
        "loc_acc": LocalizationAccuracy(iou_threshold),
    }
    return MetricCollection(metrics, compute_groups=False)  # the two means must never share state


def segmentation_metrics(num_classes: int, ignore_index: int = 255) -> MetricCollection:
    """miou (macro Jaccard), dice (macro F1 over pixels, which is Dice), acc (pixel accuracy) and
    iou_per_class (for the test report), all skipping ``ignore_index`` pixels.

    Updated with predicted class masks (B x H x W) and target masks; macro averages leave out
    classes absent from both, so a batch without some class does not drag the mean down.
    """
    kind = {"task": "multiclass", "num_classes": num_classes, "ignore_index": ignore_index}
    metrics = {
        "miou": JaccardIndex(**kind, average="macro"),
        "dice": F1Score(**kind, average="macro"),
        "acc": Accuracy(**kind, average="micro"),
        "iou_per_class": JaccardIndex(**kind, average="none"),
    }
    return MetricCollection(metrics)


# COCOeval's own IoU and recall thresholds, in float64. torchmetrics' defaults come from a float32
# linspace (0.07 becomes 0.0700000003), which moves the sampled precision wherever a recall hits a
# threshold exactly and gives numbers up to ~1e-3 off what COCO's tools report.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10).tolist()
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101).tolist()


class CocoMeanAveragePrecision(MeanAveragePrecision):
    """COCO mAP with box numbers under plain names (``map``, ``map_50``, ``mar_100``) and mask
    numbers as ``segm_map...``; per-class values come back as Python lists, reported, not logged.
    Computed with COCO's exact thresholds, so the numbers equal pycocotools' COCOeval."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("iou_thresholds", COCO_IOU_THRESHOLDS)
        kwargs.setdefault("rec_thresholds", COCO_RECALL_THRESHOLDS)
        super().__init__(**kwargs)

    def compute(self) -> dict:
        values = {}
        for key, value in super().compute().items():
            key = key.removeprefix("bbox_")
            per_class = key == "classes" or key.endswith("_per_class")
            values[key] = value.reshape(-1).tolist() if per_class else value
        return values


def detection_metrics(
    masks: bool = False, backend: str = "faster_coco_eval", class_metrics: bool = False
) -> MetricCollection:
    """COCO mAP of boxes (and masks): map, map_50, map_75, map_small/medium/large, mar_1/10/100, ...

    Updated with torchmetrics' detection dicts every batch and computed once per epoch, by
    ``faster_coco_eval`` (same numbers as ``pycocotools``, several times faster: see
    benchmarks/map_backends.py) or ``pycocotools``. ``class_metrics`` adds per-class AP and AR.
    """
    iou_type = ("bbox", "segm") if masks else "bbox"
    metric = CocoMeanAveragePrecision(iou_type=iou_type, backend=backend, class_metrics=class_metrics)
    return MetricCollection({"map": metric})
