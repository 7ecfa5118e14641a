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

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.pictures.history import HISTORY_FILE, EpochHistory, show_train_loss_every_epoch
from visiontasks.runs import stage_dir


class RunPictures(Callback):
    """Pictures of a run. Each switch turns one picture on (default) or off.

    Args:
        curves: ``metrics.csv`` and ``curves.png`` (loss and each metric per epoch, train vs val), rewritten
            every epoch; ``train/loss`` is also logged at least once per epoch, however short.
    """

    def __init__(self, curves: bool = True) -> None:
        self.curves = curves
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
