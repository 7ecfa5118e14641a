"""Predict writers that give the same files from one process or many: one table, on rank zero, in the data's order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from visiontasks.runs import stage_dir


def unique_names(stems: Sequence[str]) -> list[str]:
    """File stems made unique in order: ``a``, ``a-2``, ``a-3``... (``image`` for a sample without a file)."""
    taken: set[str] = set()
    names = []
    for stem in stems:
        stem = stem or "image"
        name, count = stem, 1
        while name in taken:
            count += 1
            name = f"{stem}-{count}"
        taken.add(name)
        names.append(name)
    return names


def gather_to_rank_zero(items: list[Any], world_size: int, is_global_zero: bool) -> list[Any] | None:
    """Every process's ``items`` (one list per rank, in rank order) on rank zero; ``None`` on the other ranks."""
    if world_size == 1:
        return [items]
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * world_size if is_global_zero else None
    dist.gather_object(items, gathered, dst=0)
    return gathered


class OrderedWriter(BasePredictionWriter):
    """Keeps ``(dataset index, item)`` pairs of every predicted image; at the epoch's end rank zero receives all
    processes' pairs and writes them, sorted by index: the file one process would have written.

    Subclasses say what to keep of a batch (``items``) and how to write the sorted items (``write``); per-image
    files they may write at once, named by the dataset index (:meth:`name`), from the rank that predicted them.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self.kept: list[tuple[int, Any]] = []
        self.seen = 0

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.kept, self.seen = [], 0

    def items(self, trainer: pl.Trainer, outputs: Any, batch: Any, indices: list[int]) -> list[Any]:
        """What to keep of each image of the batch (and per-image files to write now)."""
        return list(outputs)

    def write(self, trainer: pl.Trainer, items: list[Any]) -> None:
        """Write the items of the whole predict set, in the data's order (rank zero only)."""

    def write_on_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any, batch_indices: Sequence[int] | None,
        batch: Any, batch_idx: int, dataloader_idx: int,
    ) -> None:  # fmt: skip
        count = len(prediction)
        indices = list(batch_indices) if batch_indices else list(range(self.seen, self.seen + count))
        self.seen += count
        self.kept.extend(zip(indices, self.items(trainer, prediction, batch, indices)))

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        gathered = gather_to_rank_zero(self.kept, trainer.world_size, trainer.is_global_zero)
        self.kept = []
        if gathered is not None:
            pairs = sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])
            self.write(trainer, [item for _, item in pairs])


def dataset_stems(trainer: pl.Trainer) -> list[str] | None:
    """The unique file stem of every sample of the predict set, by dataset index, when the data set knows its
    files; ``None`` for other data sets (generated samples: their names are unique already)."""
    dataset = getattr(trainer.predict_dataloaders, "dataset", None)
    paths, indices = getattr(getattr(dataset, "source", None), "paths", None), getattr(dataset, "indices", None)
    if paths is None or indices is None:
        return None
    return unique_names([Path(str(paths[i])).stem for i in indices])


def output_path(trainer: pl.Trainer, name: str) -> Path:
    """``<stage dir>/<name>``, its folder made."""
    path = stage_dir(trainer) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
