"""Test reports: a table printed to the console and saved as text and JSON in the run folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402

from visiontasks.runs import stage_dir  # noqa: E402


def format_table(rows: Sequence[dict[str, Any]], title: str) -> str:
    columns = list(rows[0])
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def save_report(trainer: pl.Trainer, name: str, title: str, rows: Sequence[dict[str, Any]], figure: Any = None) -> None:
    """Print ``rows`` as a table and write ``<run>/test/<name>.txt``, ``.json`` (and ``.png``), on rank zero."""
    if not trainer.is_global_zero or not rows:
        return
    folder = stage_dir(trainer)
    folder.mkdir(parents=True, exist_ok=True)
    text = format_table(rows, title)
    print("\n" + text + "\n")
    (folder / f"{name}.txt").write_text(text + "\n")
    (folder / f"{name}.json").write_text(json.dumps(list(rows), indent=2) + "\n")
    if figure is not None:
        figure.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
        plt.close(figure)


def per_class_rows(names: Sequence[str], tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class, then macro and weighted averages (as sklearn)."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    support = tp + fn
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    rows = [
        {"class": n, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for n, p, r, f, s in zip(names, precision, recall, f1, support)
    ]
    weights = support / max(support.sum(), 1)
    for label, avg in (("macro avg", np.mean), ("weighted avg", lambda a: float((a * weights).sum()))):
        rows.append({"class": label, "precision": float(avg(precision)), "recall": float(avg(recall)),
                     "f1": float(avg(f1)), "support": int(support.sum())})  # fmt: skip
    return rows


def confusion_matrix_figure(matrix: np.ndarray, names: Sequence[str]) -> Any:
    size = max(4, 0.5 * len(names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    axis.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    axis.set_xticklabels(names, rotation=45, ha="right")
    axis.set_yticklabels(names)
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, int(value), ha="center", va="center",
                  color="white" if value > matrix.max() / 2 else "black")  # fmt: skip
    return figure
