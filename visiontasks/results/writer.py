"""The ``predict`` command's one writer: every task's results into the stage folder, in the task's format.

However many processes predict, the files are those of one process: rank zero gathers the rows and COCO
entries and writes them once, in the data's order; masks and drawn pictures are written by the process
that predicted them, named as one process names them (see :class:`~visiontasks.results.ordered.OrderedWriter`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from visiontasks.results.formats import write_coco, write_csv, write_picture
from visiontasks.results.ordered import OrderedWriter, dataset_stems, output_path
from visiontasks.results.types import Result


class PredictionWriter(OrderedWriter):
    """Writes what ``predict`` returns into the run's ``predict/<time>/`` folder.

    Every task: ``predictions.csv`` (one row per image: its ``path``, the prediction, and ``output``: the
    files written for it, so ``a.jpg`` and ``a.png`` are told apart). Detection and instance segmentation
    also write ``predictions.json`` (COCO results, each entry naming its ``file_name``); the other tasks
    write the CSV's rows as ``predictions.json``. Segmentation: ``predictions/<name>.png`` class masks.

    Args:
        draw: also save each image with its prediction drawn as ``predictions/<name>_overlay.png``;
            default: only for segmentation, whose mask files are hard to read by eye.
        draw_threshold: detections scoring at least this are drawn (all are written).
        folder: the folder of the masks and drawn images, inside the stage folder.
    """

    def __init__(self, draw: bool | None = None, draw_threshold: float = 0.5, folder: str = "predictions") -> None:
        super().__init__()
        self.draw, self.draw_threshold, self.folder = draw, draw_threshold, folder
        self.stems: list[str] | None = None
        self.names: set[str] = set()

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_epoch_start(trainer, pl_module)
        self.stems, self.names = dataset_stems(trainer), set()

    def items(self, trainer: pl.Trainer, outputs: Any, batch: Any, indices: list[int]) -> list[Any]:
        folder = output_path(trainer, self.folder)
        return [self.add(result, folder, index) for index, result in zip(indices, outputs)]

    def add(self, result: Result, folder: Path, index: int) -> dict[str, Any]:
        """Write one image's mask and drawing now; its row (naming what was written) and COCO entries come back."""
        name = self.stems[index] if self.stems is not None else self._unique(result.name)
        kept = result.entry(folder, name, index)
        if self.draw or (self.draw is None and result.drawn_by_default):
            kept["files"].append(folder / f"{name}_overlay.png")
            write_picture(kept["files"][-1], result.plot(threshold=self.draw_threshold))
        kept["row"]["output"] = [str(path.relative_to(folder.parent)) for path in kept.pop("files")]
        return kept

    def write(self, trainer: pl.Trainer, items: list[Any]) -> None:
        rows = [item["row"] for item in items]
        path = output_path(trainer, "predictions.csv")
        write_csv(path, rows)
        print(f"Predictions written to {path}")
        path = output_path(trainer, "predictions.json")
        if any(item["coco"] is not None for item in items):
            entries = [entry for item in items for entry in item["coco"] or []]
            write_coco(path, entries)
            print(f"COCO results ({len(entries)} detections) written to {path}")
        else:
            path.write_text(json.dumps(rows, default=float))
        if output_path(trainer, self.folder).is_dir():
            print(f"Predicted masks or drawn images written to {output_path(trainer, self.folder)}")

    def _unique(self, stem: str) -> str:
        """The file stem, with ``-2``, ``-3``... added when two inputs share it (a.png and a.jpg), for data sets
        that do not list their files (one process only: their names are unique in practice)."""
        name, count = stem, 1
        while name in self.names:
            count += 1
            name = f"{stem}-{count}"
        self.names.add(name)
        return name
