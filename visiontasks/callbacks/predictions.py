"""Writing what ``predict`` returns into the run folder."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from visiontasks.callbacks.ordered import OrderedWriter, output_path
from visiontasks.results.formats import write_csv


class PredictionCsvWriter(OrderedWriter):
    """One CSV row per image from the task's prediction dicts (lists are joined with ``;``), in the data's order,
    written once by rank zero however many processes predicted."""

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__()
        self.filename = filename

    def write(self, trainer: pl.Trainer, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        path = output_path(trainer, self.filename)
        write_csv(path, items)
        print(f"Predictions written to {path}")
