"""The metric collection of each task, from torchmetrics only."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import (
    AUROC,
    Accuracy,
    ConfusionMatrix,
    F1Score,
    Precision,
    Recall,
)


def classification_metrics(num_classes: int, multilabel: bool = False) -> MetricCollection:
    """acc, precision, recall, f1 (macro), auroc and the confusion matrix (for the test report)."""
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
        "auroc": AUROC(**kind, average="macro"),
        "confmat": ConfusionMatrix(**kind),
    }
    return MetricCollection(metrics)
