"""Writing what ``predict`` returns into the run folder."""

from __future__ import annotations

import csv
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.runs import rank_path


class PredictionCsvWriter(Callback):
    """One CSV row per image from the task's prediction dicts (lists are joined with ``;``)."""

    def __init__(self, filename: str = "predictions.csv") -> None:
        self.filename = filename
        self.rows: list[dict[str, Any]] = []

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rows = []

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        self.rows.extend(outputs)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.rows:
            return
        path = rank_path(trainer, self.filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in row.items()})
        print(f"Predictions written to {path}")
