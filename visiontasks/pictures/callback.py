"""``RunPictures``: every picture of a run, in the run folder and (with W&B) in the W&B run, from rank zero.

One callback with a switch per picture; the pictures themselves are drawn by the modules beside it.
The CLI adds it to every command (options under ``pictures:`` in a config, ``--pictures.<name>`` on
the command line); in plain Python each task brings one unless the Trainer already has one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.pictures.grid import prediction_grid
from visiontasks.pictures.history import HISTORY_FILE, EpochHistory, show_train_loss_every_epoch
from visiontasks.pictures.overlays import log_overlays
from visiontasks.pictures.truth import truth_of
from visiontasks.pictures.wandb_views import wandb_run
from visiontasks.results import network_picture
from visiontasks.runs import stage_dir

GRID_FILE = "val_predictions.png"


class RunPictures(Callback):
    """Pictures of a run. Each switch turns one picture on (default) or off.

    Args:
        curves: ``metrics.csv`` and ``curves.png`` (loss and each metric per epoch, train vs val), rewritten
            every epoch; ``train/loss`` is also logged at least once per epoch, however short.
        grid: how many images of the first validation batch ``val_predictions.png`` shows each epoch,
            the prediction drawn beside the ground truth (0: none).
        overlays: how many images of the first validation batch go to W&B each epoch as ``val/examples``,
            with ground truth and prediction as two groups of boxes and masks (0: none; W&B logger only).
    """

    def __init__(self, curves: bool = True, grid: int = 8, overlays: int = 8) -> None:
        self.curves, self.grid, self.overlays = curves, grid, overlays
        self.history = EpochHistory()
        self.pending_epoch: int | None = None
        self.seconds: dict[str, float] = defaultdict(float)
        """Seconds spent on each picture in this process (``benchmarks/pictures.py`` reads them)."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    # ----- curves ---------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.curves:
            show_train_loss_every_epoch(trainer)
            self.history.start(stage_dir(trainer) / HISTORY_FILE, trainer.current_epoch)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        if self.curves:
            self.history.add_loss(outputs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.pending_epoch = trainer.current_epoch  # its metrics are complete once the task's own hook has run

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_history(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_history(trainer)

    def _write_history(self, trainer: pl.Trainer) -> None:
        if self.pending_epoch is None or not self.curves:
            return
        self.history.end_epoch(trainer, self.pending_epoch)
        self.pending_epoch = None
        if trainer.is_global_zero:
            with self.timed("curves"):
                self.history.save(stage_dir(trainer))

    # ----- validation predictions: the run folder's grid and W&B's overlays ---------------------------------
    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """The first validation batch (the same images every epoch: validation is not shuffled), rank zero only."""
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero or not batch:
            return
        run = wandb_run(trainer) if self.overlays else None
        count = max(self.grid, self.overlays if run is not None else 0)
        if count == 0:
            return
        with self.timed("predictions"):
            images = list(batch["image"])[:count]
            results = pl_module.results({k: v[:count] for k, v in batch.items()})
            truths = [truth_of(batch, i) for i in range(len(results))]
        if self.grid:
            with self.timed("grid"):
                pictures = [network_picture(image, tuple(image.shape[-2:])) for image in images[: self.grid]]
                figure = prediction_grid(pictures, results[: self.grid], truths[: self.grid], pl_module.class_names)
                folder = stage_dir(trainer)
                folder.mkdir(parents=True, exist_ok=True)
                figure.savefig(folder / GRID_FILE, dpi=100, bbox_inches="tight")
                plt.close(figure)
        if run is not None:
            with self.timed("overlays"):
                n = self.overlays
                log_overlays(run, "val/examples", images[:n], results[:n], truths[:n], pl_module.class_names, trainer.global_step)
