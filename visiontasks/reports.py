"""Test reports: a table printed to the console and saved as text and JSON in the run folder, with its pictures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402

from visiontasks.pictures.curves import FAST_PNG  # noqa: E402
from visiontasks.pictures.wandb_views import confusion_plot, curve_plot, log_report, wandb_run  # noqa: E402
from visiontasks.runs import stage_dir  # noqa: E402


def format_table(rows: Sequence[dict[str, Any]], title: str) -> str:
    columns = list(rows[0])
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def save_report(
    trainer: pl.Trainer,
    name: str,
    title: str,
    rows: Sequence[dict[str, Any]],
    figures: dict[str, Any] | None = None,
    confusion: tuple[np.ndarray, Sequence[str]] | None = None,
    curves: dict[str, tuple] | None = None,
) -> None:
    """Print ``rows`` as a table and write ``<run>/test/<name>.txt``, ``.json`` and each figure as
    ``<figure name>.png``, on rank zero; with W&B also log them (see :mod:`visiontasks.pictures.wandb_views`):
    ``confusion`` (matrix of counts, class names) as W&B's confusion matrix, ``curves`` (name: xs, ys, class
    names, title, x name) as W&B line plots."""
    figures = figures or {}
    if not trainer.is_global_zero or not rows:
        for figure in figures.values():
            plt.close(figure)
        return
    folder = stage_dir(trainer)
    folder.mkdir(parents=True, exist_ok=True)
    text = format_table(rows, title)
    print("\n" + text + "\n")
    (folder / f"{name}.txt").write_text(text + "\n")
    (folder / f"{name}.json").write_text(json.dumps(list(rows), indent=2) + "\n")
    for key, figure in figures.items():
        figure.savefig(folder / f"{key}.png", dpi=120, bbox_inches="tight", pil_kwargs=FAST_PNG)
    if wandb_run(trainer) is not None:
        extras = {}
        if confusion is not None and confusion[0].sum() <= 1_000_000:  # W&B takes one entry per sample
            extras["confusion_matrix_plot"] = confusion_plot(confusion[0], confusion[1], "confusion matrix (test)")
        extras.update({key: curve_plot(*value) for key, value in (curves or {}).items()})
        log_report(trainer, name, rows, figures, extras)
    for figure in figures.values():
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
