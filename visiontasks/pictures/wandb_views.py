"""Test results in the W&B run: the report as a table, its pictures, W&B's own confusion matrix and PR curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger


def wandb_run(trainer: pl.Trainer) -> Any:
    """The W&B run of the trainer's W&B logger on rank zero, else ``None`` (also when W&B is disabled)."""
    if not trainer.is_global_zero:
        return None
    logger = next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
    run = logger.experiment if logger is not None else None
    return None if run is None or getattr(run, "disabled", False) else run  # WANDB_MODE=disabled: nothing to build


def confusion_plot(matrix: np.ndarray, names: Sequence[str], title: str) -> Any:
    """``wandb.plot.confusion_matrix`` from a matrix of counts (it takes one true and one predicted label per sample)."""
    import wandb

    rows, cols = np.nonzero(matrix)
    counts = matrix[rows, cols].astype(int)
    truth, predicted = np.repeat(rows, counts).tolist(), np.repeat(cols, counts).tolist()
    return wandb.plot.confusion_matrix(y_true=truth, preds=predicted, class_names=list(names), title=title)


def curve_plot(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], names: Sequence[str], title: str, xname: str) -> Any:
    """A W&B line series, one line per class, for curves (ROC, precision-recall) computed by the metrics."""
    import wandb

    return wandb.plot.line_series(xs=[list(map(float, x)) for x in xs], ys=[list(map(float, y)) for y in ys],
                                  keys=list(names), title=title, xname=xname)  # fmt: skip


def log_report(
    trainer: pl.Trainer, name: str, rows: Sequence[dict[str, Any]], figures: dict[str, Any], extras: dict[str, Any]
) -> None:
    """Log a test report to the W&B run, if any: ``test/<name>`` (a table), each figure as an image under
    ``test/<figure name>``, and ``extras`` (W&B plots) as they are."""
    run = wandb_run(trainer)
    if run is None:
        return
    import wandb

    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[None if row.get(c) == "" else row.get(c) for c in columns] for row in rows]  # "" in a number column
    table = wandb.Table(columns=columns, data=cells)
    logged = {f"test/{name}": table, **{f"test/{key}": wandb.Image(figure) for key, figure in figures.items()}}
    run.log({**logged, **{f"test/{key}": value for key, value in extras.items()}})
