"""The metric collection of each task, from torchmetrics only."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
from torch import Tensor
import torch
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import (
    AUROC,
    ROC,
    Accuracy,
    ConfusionMatrix,
    F1Score,
    JaccardIndex,
    MulticlassStatScores,
    MultilabelStatScores,
    Precision,
    Recall,
)
from torchmetrics.detection import MeanAveragePrecision
from torchmetrics.wrappers import LambdaInputTransformer
from torchvision.ops import box_iou


class MulticlassBalancedErrorRate(MulticlassStatScores):
    """Balanced error rate: the mean over classes of each class's error rate (1 - its recall), so a rare
    class counts as much as a common one (1 - balanced accuracy); classes absent from the targets are left out."""

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, average=None, **kwargs)

    def compute(self) -> Tensor:
        tp, _, _, fn = self._final_state()
        present = (tp + fn) > 0
        return (fn[present] / (tp + fn)[present]).float().mean() if present.any() else torch.tensor(0.0)


class MultilabelBalancedErrorRate(MultilabelStatScores):
    """Balanced error rate per label, ``(miss rate + false alarm rate) / 2``, averaged over the labels."""

    def __init__(self, num_labels: int, **kwargs: Any) -> None:
        super().__init__(num_labels=num_labels, average=None, **kwargs)

    def compute(self) -> Tensor:
        tp, fp, tn, fn = (state.float() for state in self._final_state())
        return (0.5 * (fn / (tp + fn).clamp(min=1) + fp / (fp + tn).clamp(min=1))).mean()


TRUSTED = {"validate_args": False}
"""torchmetrics checks every update's values (a ``torch.unique`` over the predictions and targets: ~20 % of a U-Net
step on the CPU). The data modules check the labels and masks once at set-up and predictions are the model's own
scores or their argmax, so the checks are off."""


def classification_metrics(num_classes: int, multilabel: bool = False, stage: str = "test") -> MetricCollection:
    """acc, precision, recall, f1 (macro) and ber (balanced error rate) at every stage; auroc for validation
    and test; the confusion matrix and each class's ROC curve only for test (the report draws them).

    Training leaves out auroc: updating the summaries costs more per step than the others together.
    """
    if multilabel:
        kind = {"task": "multilabel", "num_labels": num_classes, **TRUSTED}
    elif num_classes == 1:
        raise ValueError("classification needs at least 2 classes (or multilabel: true)")
    else:
        kind = {"task": "multiclass", "num_classes": num_classes, **TRUSTED}
    metrics = {
        "acc": Accuracy(**kind, average="micro"),
        "precision": Precision(**kind, average="macro"),
        "recall": Recall(**kind, average="macro"),
        "f1": F1Score(**kind, average="macro"),
        "ber": MultilabelBalancedErrorRate(num_classes, **TRUSTED) if multilabel else MulticlassBalancedErrorRate(num_classes, **TRUSTED),
    }
    if stage != "train":
        metrics["auroc"] = AUROC(**kind, average="macro", thresholds=200)  # binned: constant memory per epoch
    if stage == "test":
        metrics["confmat"] = ConfusionMatrix(**kind)
        metrics["roc"] = ROC(**kind, thresholds=200)
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


class PerClassBoxScores(Metric):
    """Per true class: image count, mean box IoU and localization accuracy (as a 3 x K tensor), for the report."""

    def __init__(self, num_classes: int, iou_threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.iou_threshold = num_classes, iou_threshold
        for name in ("count", "iou", "hits"):
            self.add_state(name, torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: dict[str, Tensor], target: dict[str, Tensor]) -> None:
        iou = box_iou(preds["box"], target["box"]).diagonal().double()
        right = preds["scores"].argmax(dim=1) == target["label"]
        label = target["label"].long()
        self.count += torch.bincount(label, minlength=self.num_classes).double()
        self.iou.index_add_(0, label, iou)
        self.hits.index_add_(0, label, (right & (iou >= self.iou_threshold)).double())

    def compute(self) -> Tensor:
        count = self.count.clamp(min=1)
        return torch.stack([self.count, self.iou / count, self.hits / count]).float()


def localization_metrics(num_classes: int, iou_threshold: float = 0.5) -> MetricCollection:
    """acc, f1 (macro), mean box iou and loc_acc, and for the test report the confusion matrix and the
    per-class box scores, all updated with the same two dicts.

    ``preds`` holds ``scores`` (BxK class scores) and ``box`` (Bx4 xyxy); ``target`` holds
    ``label`` (B) and ``box`` (Bx4 xyxy, same pixels as the predictions).
    """
    kind = {"task": "multiclass", "num_classes": num_classes, **TRUSTED}
    scores, label = itemgetter("scores"), itemgetter("label")
    metrics = {
        "acc": LambdaInputTransformer(Accuracy(**kind, average="micro"), scores, label),
        "f1": LambdaInputTransformer(F1Score(**kind, average="macro"), scores, label),
        "iou": BoxIoU(),
        "loc_acc": LocalizationAccuracy(iou_threshold),
        "confmat": LambdaInputTransformer(ConfusionMatrix(**kind), scores, label),
        "per_class": PerClassBoxScores(num_classes, iou_threshold),
    }
    return MetricCollection(metrics, compute_groups=False)  # the two means must never share state


def segmentation_metrics(num_classes: int, ignore_index: int = 255) -> MetricCollection:
    """miou (macro Jaccard), dice (macro F1 over pixels, which is Dice), acc (pixel accuracy) and
    iou_per_class (for the test report), all skipping ``ignore_index`` pixels.

    Also the pixel confusion matrix, for the test report.
    Updated with predicted class masks (B x H x W) and target masks; macro averages leave out
    classes absent from both, so a batch without some class does not drag the mean down.
    """
    kind = {"task": "multiclass", "num_classes": num_classes, "ignore_index": ignore_index, **TRUSTED}
    metrics = {
        "miou": JaccardIndex(**kind, average="macro"),
        "dice": F1Score(**kind, average="macro"),
        "acc": Accuracy(**kind, average="micro"),
        "iou_per_class": JaccardIndex(**kind, average="none"),
        "confmat": ConfusionMatrix(**kind),
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


class MeanAverageBestOverlap(Metric):
    """MABO (Uijlings et al., selective search): for each true object the best IoU any predicted box reaches
    (0 if none), averaged per class (ABO), then over the classes present. It scores where the boxes are,
    whatever their class or score: the detector's recall of object locations.

    Updated with torchmetrics' detection dicts, as the mAP; ``compute`` gives ``mabo`` and ``abo_per_class``.
    """

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("best", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, preds: list[dict[str, Tensor]], target: list[dict[str, Tensor]]) -> None:
        for found, truth in zip(preds, target):
            boxes, labels = truth["boxes"], truth["labels"]
            if "iscrowd" in truth:  # crowd regions are no objects to find
                boxes, labels = boxes[truth["iscrowd"] == 0], labels[truth["iscrowd"] == 0]
            if len(boxes) == 0:
                continue
            iou = box_iou(boxes.float(), found["boxes"].float()) if len(found["boxes"]) else boxes.new_zeros(len(boxes), 1)
            self.best.append(iou.max(dim=1).values.float())
            self.labels.append(labels.long())

    def compute(self) -> dict[str, Tensor]:
        best = torch.cat(self.best) if isinstance(self.best, list) and self.best else self.best
        labels = torch.cat(self.labels) if isinstance(self.labels, list) and self.labels else self.labels
        if isinstance(best, list) or len(best) == 0:
            return {"mabo": torch.tensor(0.0, device=self.device), "abo_per_class": []}
        classes = labels.unique()
        abo = torch.stack([best[labels == c].mean() for c in classes])
        return {"mabo": abo.mean(), "abo_per_class": dict(zip(classes.tolist(), abo.tolist()))}


def detection_metrics(
    masks: bool = False, backend: str = "faster_coco_eval", class_metrics: bool = False
) -> MetricCollection:
    """COCO mAP of boxes (and masks): map, map_50, map_75, map_small/medium/large, mar_1/10/100, ...

    Updated with torchmetrics' detection dicts every batch and computed once per epoch, by
    ``faster_coco_eval`` (same numbers as ``pycocotools``, several times faster: see
    benchmarks/map_backends.py) or ``pycocotools``. ``class_metrics`` adds per-class AP and AR.
    Beside it ``mabo``: :class:`MeanAverageBestOverlap`.
    """
    iou_type = ("bbox", "segm") if masks else "bbox"
    metric = CocoMeanAveragePrecision(iou_type=iou_type, backend=backend, class_metrics=class_metrics)
    return MetricCollection({"map": metric, "mabo": MeanAverageBestOverlap()}, compute_groups=False)
