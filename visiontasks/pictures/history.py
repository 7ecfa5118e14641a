"""Per-epoch history of a fit, whatever the logger: ``metrics.csv`` and ``curves.png`` in the run folder."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
from torch import Tensor

from visiontasks.pictures.curves import FAST_PNG, curves_figure

HISTORY_FILE = "metrics.csv"
CURVES_FILE = "curves.png"


def read_history(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.csv`` written earlier (a resumed run keeps them), numbers as floats."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        rows = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
    return [row | {"epoch": int(row["epoch"]), "step": int(row.get("step", 0))} for row in rows if "epoch" in row]


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = ["epoch", "step"] + sorted({key for row in rows for key in row} - {"epoch", "step"})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


class EpochHistory:
    """Collects one row per epoch from the trainer's logged values: every scalar ``train/...`` and ``val/...``,
    with ``train/loss`` as the mean over the epoch's steps (Lightning keeps only the last step's)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.losses: list[float] = []

    def start(self, path: Path, epoch: int) -> None:
        """Continue the rows of a resumed run, up to the epoch it starts from."""
        self.rows = [row for row in read_history(path) if row["epoch"] < epoch]
        self.losses = []

    def add_loss(self, outputs: Any) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor):
            self.losses.append(float(loss.detach()))

    def end_epoch(self, trainer: pl.Trainer, epoch: int) -> dict[str, Any]:
        """The row of ``epoch``, read once all its metrics are logged (after the task's own epoch-end hook)."""
        row: dict[str, Any] = {"epoch": epoch, "step": trainer.global_step}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")) and isinstance(value, Tensor) and value.numel() == 1:
                row[key] = round(float(value), 6)
        if self.losses:
            row["train/loss"] = round(sum(self.losses) / len(self.losses), 6)
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]
        self.losses = []
        return row

    def save(self, folder: Path) -> None:
        """``metrics.csv`` and ``curves.png``."""
        self.save_table(folder)
        self.save_curves(folder)

    def save_table(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_history(folder / HISTORY_FILE, self.rows)

    def save_curves(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        figure = curves_figure(self.rows)
        figure.savefig(folder / CURVES_FILE, dpi=100, pil_kwargs=FAST_PNG)
        plt.close(figure)


def show_train_loss_every_epoch(trainer: pl.Trainer) -> None:
    """Log ``train/loss`` at least once per epoch: an epoch shorter than ``log_every_n_steps`` (50) logs none."""
    batches = trainer.num_training_batches
    if isinstance(batches, (int, float)) and math.isfinite(batches) and 0 < batches < trainer.log_every_n_steps:
        trainer.log_every_n_steps = max(1, int(batches))
