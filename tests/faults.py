"""A callback that fails one rank of a multi-process run on purpose, for the tests of failures across processes."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.errors import DataError


class FailOnRank(Callback):
    """Raises a DataError at the first batch of ``stage`` (fit, validate, test, predict) on rank ``rank`` only,
    as an unreadable file in that rank's shard would."""

    def __init__(self, stage: str = "predict", rank: int = 1) -> None:
        self.stage, self.rank = stage, rank

    def _maybe_fail(self, trainer: pl.Trainer) -> None:
        if trainer.state.fn == self.stage and trainer.global_rank == self.rank and not trainer.sanity_checking:
            raise DataError(f"broken.png: cannot be decoded (failure injected on rank {self.rank})")

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._maybe_fail(trainer)

    def on_validation_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._maybe_fail(trainer)

    def on_test_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._maybe_fail(trainer)

    def on_predict_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._maybe_fail(trainer)


class StopAfterEpoch(Callback):
    """Ends a fit after epoch ``epoch`` as an interruption would (its ``last.ckpt`` written), for resume tests."""

    def __init__(self, epoch: int = 0) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True
