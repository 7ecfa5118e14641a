"""The ``predict`` command's one writer: every task's results into the stage folder, in the task's format."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.results.formats import write_coco, write_csv, write_picture
from visiontasks.results.types import DetectionResult, Result, SegmentationResult
from visiontasks.runs import rank_path


class PredictionWriter(Callback):
    """Writes what ``predict`` returns into the run's ``predict/<time>/`` folder.

    Classification and localization: ``predictions.csv`` (one row per image). Detection and instance
    segmentation: ``predictions.json`` (COCO results; images without a COCO id are numbered in order
    and carry their ``file_name``). Segmentation: ``predictions/<name>.png`` class masks.

    Args:
        draw: also save each image with its prediction drawn as ``predictions/<name>_overlay.png``;
            default: only for segmentation, whose mask files are hard to read by eye.
        draw_threshold: detections scoring at least this are drawn (all are written).
        folder: the folder of the masks and drawn images, inside the stage folder.
    """

    def __init__(self, draw: bool | None = None, draw_threshold: float = 0.5, folder: str = "predictions") -> None:
        self.draw, self.draw_threshold, self.folder = draw, draw_threshold, folder
        self._reset()

    def _reset(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] | None = None  # a list once a detection came
        self.names: set[str] = set()
        self.count = 0

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        folder = rank_path(trainer, self.folder)
        for result in outputs:
            self.add(result, folder)

    def add(self, result: Result, folder: Any) -> None:
        """Keep (or, for masks, write) one image's result; draw it when asked."""
        name = self._unique(result.name)
        if isinstance(result, SegmentationResult):
            result.save(folder / f"{name}.png")
        elif isinstance(result, DetectionResult):
            self.entries = [] if self.entries is None else self.entries
            self.entries.extend(result.coco(self.count))
        else:
            self.rows.append(result.row())
        if self.draw or (self.draw is None and isinstance(result, SegmentationResult)):
            write_picture(folder / f"{name}_overlay.png", result.plot(threshold=self.draw_threshold))
        self.count += 1

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.rows:
            path = rank_path(trainer, "predictions.csv")
            write_csv(path, self.rows)
            print(f"Predictions written to {path}")
        if self.entries is not None:
            path = rank_path(trainer, "predictions.json")
            write_coco(path, self.entries)
            print(f"COCO results ({len(self.entries)} detections) written to {path}")
        if rank_path(trainer, self.folder).is_dir():
            print(f"Predicted masks or drawn images written to {rank_path(trainer, self.folder)}")

    def _unique(self, stem: str) -> str:
        """The file stem, with ``-2``, ``-3``... added when two inputs share it (a.png and a.jpg)."""
        name, count = stem, 1
        while name in self.names:
            count += 1
            name = f"{stem}-{count}"
        self.names.add(name)
        return name
