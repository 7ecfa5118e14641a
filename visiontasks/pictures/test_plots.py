"""The test report's pictures: confusion matrices (counts and normalised), ROC and precision-recall curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix_figure(matrix: np.ndarray, names: Sequence[str], normalize: bool = False) -> Any:
    """Rows are the true classes, columns the predicted ones; ``normalize`` divides each row by its total
    (the share of each true class given each label: recall on the diagonal)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4, 0.5 * len(names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    axis.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true",
             title="confusion matrix" + (" (share of each true class)" if normalize else " (counts)"))  # fmt: skip
    axis.set_xticklabels(names, rotation=45, ha="right")
    axis.set_yticklabels(names)
    if len(names) <= 30:
        top = matrix.max() or 1
        for (row, col), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalize else (f"{value:.0f}" if value < 1e5 else f"{value:.1e}")
            axis.text(col, row, text, ha="center", va="center", fontsize=8, color="white" if value > top / 2 else "black")
    figure.tight_layout()
    return figure


def curves_by_class_figure(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], names: Sequence[str], labels: Sequence[str], title: str,
    xlabel: str, ylabel: str, diagonal: bool = False,
) -> Any:
    """One line per class (``labels`` give the legend text, e.g. the name and its AUC or AP)."""
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for k, (x, y, label) in enumerate(zip(xs, ys, labels)):
        axis.plot(x, y, color=colours(k % colours.N), linewidth=1.5, label=label)
    if diagonal:
        axis.plot([0, 1], [0, 1], "k--", linewidth=0.8, alpha=0.5)
    axis.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc="lower right" if diagonal else "lower left")
    figure.tight_layout()
    return figure


def roc_figure(fpr: Sequence[np.ndarray], tpr: Sequence[np.ndarray], names: Sequence[str]) -> Any:
    """ROC curve of each class (one class against the rest), with its area in the legend."""
    areas = [float(np.trapezoid(t, f)) if hasattr(np, "trapezoid") else float(np.trapz(t, f)) for f, t in zip(fpr, tpr)]
    labels = [f"{name} (AUC {area:.3f})" for name, area in zip(names, areas)]
    return curves_by_class_figure(fpr, tpr, names, labels, "ROC (test)", "false positive rate", "true positive rate", True)


def pr_figure(recall: np.ndarray, precision: Sequence[np.ndarray], names: Sequence[str], title: str) -> Any:
    """Precision against recall for each class (undefined points, where a class has no detections, left out)."""
    xs, ys, labels = [], [], []
    for name, values in zip(names, precision):
        keep = values >= 0
        xs.append(recall[keep])
        ys.append(values[keep])
        labels.append(f"{name} (AP {values[keep].mean() if keep.any() else 0:.3f})")
    return curves_by_class_figure(xs, ys, names, labels, title, "recall", "precision")


def confusion_figures(matrix: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """``confusion_matrix`` (counts) and ``confusion_matrix_normalized`` (share of each true class)."""
    return {"confusion_matrix": confusion_matrix_figure(matrix, names),
            "confusion_matrix_normalized": confusion_matrix_figure(matrix, names, normalize=True)}  # fmt: skip
