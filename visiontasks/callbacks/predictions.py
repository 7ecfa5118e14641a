"""Writing what ``predict`` returns into the run folder."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.results.formats import write_csv
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
        write_csv(path, self.rows)
        print(f"Predictions written to {path}")
