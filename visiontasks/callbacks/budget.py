"""How long to train and how the learning rate moves, chosen from the data: the training budget.

The shipped configs were tuned on a few thousand built-in images; a user's set may be ten times smaller or larger.
A fixed epoch count trains a small set for too few optimiser steps (the schedule ends before the head has learned)
and a large one for longer than it needs. The budget asks for a number of optimiser steps instead and turns it into
epochs for the data at hand; early stopping on the task's monitor ends a run that no longer improves; the schedule
warms up and then decays by cosine to a floor, never to zero. ``trainer.max_epochs``, when given, wins.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.errors import check_option

log = logging.getLogger(__name__)

WARMUP_START = 0.1
"""The warm-up starts at this share of the peak learning rate (known before the step count is)."""


def warmup_cosine(step: int, total: float, warmup: float, floor: float) -> float:
    """The learning rate at optimiser step ``step`` of ``total`` as a share of the peak: a linear warm-up from
    ``WARMUP_START`` over the first ``warmup`` share of the steps, then a cosine from 1 to ``floor``."""
    if step == 0:  # asked while the optimiser is built, before the step count can be: the warm-up's start
        return WARMUP_START if warmup > 0 else 1.0
    if not math.isfinite(total):
        return 1.0
    total = max(1, int(total))
    ramp = round(warmup * total)
    if step < ramp:
        return WARMUP_START + (1 - WARMUP_START) * step / ramp
    progress = min(1.0, (step - ramp) / max(1, total - ramp))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _closes_epoch(trainer: pl.Trainer) -> bool:
    """Whether this validation is its epoch's last (with ``val_check_interval`` < 1 an epoch validates more often)."""
    epoch_loop = getattr(trainer.fit_loop, "epoch_loop", None)
    return epoch_loop is None or bool(epoch_loop.batch_progress.is_last_batch)


class TrainingBudget(Callback):
    """Epochs from the data, early stopping on the task's monitor, and the warm-up/cosine-to-a-floor schedule.

    The number of epochs is chosen when training starts from scratch, when ``trainer.max_epochs`` is not given
    (the CLI passes ``-1``): ``ceil(min_steps / steps per epoch)``, at least ``min_epochs``, at most ``max_epochs``.
    The choice is kept in the checkpoint, so a resumed run trains as long as it would have uninterrupted.

    Args:
        min_steps: optimiser steps to train at least (small data sets get more epochs).
        min_epochs: epochs to train at least (large data sets reach ``min_steps`` in fewer).
        max_epochs: epochs to train at most.
        patience: stop after this many validations without a better value of the task's monitor (``val/acc``,
            ``val/miou``, ...); ``null`` never stops early.
        warmup: share of the steps over which the learning rate rises from a tenth of its peak to the peak.
        lr_floor: share of the peak learning rate the cosine ends at (never zero: a late-learning head still learns).
        extend: when the chosen epochs end while the monitor is still rising (its best of the last fifth of the
            epochs, at least 2, beats the best before by at least this much), train half as many epochs again, up to
            ``max_epochs``, and look again at their end. For monitors where higher is better (``val/acc``,
            ``val/miou``, ``val/map``); ``null`` never extends. A small or hard set gets the steps it needs without
            the shipped config training the built-in shapes longer.
        extend_lr: the learning rate of the added epochs: ``stretch`` stretches the cosine to the new end, which
            raises the rate again (to ~0.3 of the peak): the monitor dips for a few epochs, then climbs past where
            it was; ``floor`` keeps the floor rate the cosine ended at: no dip, but it learns slowly and stops
            sooner (measured on the digits: docs/training.md).
    """

    def __init__(
        self,
        min_steps: int = 1000,
        min_epochs: int = 1,
        max_epochs: int = 200,
        patience: int | None = 10,
        warmup: float = 0.03,
        lr_floor: float = 0.05,
        extend: float | None = 0.01,
        extend_lr: Literal["stretch", "floor"] = "stretch",
    ) -> None:
        check_option(0 <= warmup < 1, "--budget.warmup", warmup, "a share of the steps: give a number in [0, 1), e.g. 0.03.")
        check_option(0 <= lr_floor <= 1, "--budget.lr_floor", lr_floor, "a share of the peak learning rate: give a number in [0, 1].")
        check_option(min_steps >= 0, "--budget.min_steps", min_steps, "give 0 or more training steps.")
        check_option(min_epochs >= 1, "--budget.min_epochs", min_epochs, "give 1 or more epochs.")
        check_option(max_epochs >= min_epochs, "--budget.max_epochs", max_epochs, f"give at least min_epochs ({min_epochs}).")
        check_option(patience is None or patience >= 1, "--budget.patience", patience,
                     "give 1 or more validations without improvement, or null (never stop early).")  # fmt: skip
        check_option(extend is None or extend > 0, "--budget.extend", extend,
                     "a gain of the monitor, e.g. 0.01, or null (never train past the chosen epochs).")  # fmt: skip
        self.min_steps, self.min_epochs, self.max_epochs = min_steps, min_epochs, max_epochs
        self.patience, self.warmup, self.lr_floor, self.extend = patience, warmup, lr_floor, extend
        self.extend_lr = extend_lr
        self.extended_at: int | None = None  # the optimiser step the latest extension began at; kept in the checkpoint
        self.epochs: int | None = None  # chosen; kept in the checkpoint
        self.best: float | None = None
        self.wait = 0
        self.history: list[tuple[int, float]] = []  # (epoch, the monitor at its last validation), for extend

    def lr_factor(self, step: int, total: float) -> float:
        if self.extend_lr == "floor" and self.extended_at is not None and step >= self.extended_at:
            return self.lr_floor
        return warmup_cosine(step, total, self.warmup, self.lr_floor)

    # ----- epochs --------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Chosen once the fit loop has made its training loader (and a resumed run has restored its place in the
        epoch): a loader made earlier only to count would take the data module's mid-epoch resume position."""
        steps, images, batch = self._steps_per_epoch(trainer)
        if trainer.max_epochs != -1 or trainer.max_steps != -1:
            given = f"trainer.max_epochs={trainer.max_epochs}" if trainer.max_epochs != -1 else f"trainer.max_steps={trainer.max_steps}"
            why = f"{given} given (the budget's min_steps {self.min_steps} apply when it is not)"
        elif self.epochs is not None:
            why = "as chosen when the run started (resumed)"
        else:
            wanted = math.ceil(self.min_steps / max(1, steps))
            self.epochs = min(self.max_epochs, max(self.min_epochs, wanted))
            if self.epochs == wanted:
                why = f"min_steps {self.min_steps} need {wanted} epochs"
            elif self.epochs == self.min_epochs:
                why = f"min_epochs {self.min_epochs} (min_steps {self.min_steps} need {wanted})"
            else:
                why = f"max_epochs {self.max_epochs} (min_steps {self.min_steps} would need {wanted})"
        if self.epochs is not None and trainer.max_epochs == -1 and trainer.max_steps == -1:
            trainer.fit_loop.max_epochs = self.epochs
        epochs = trainer.max_epochs
        stop = (f"; stops after {self.patience} epochs without a better {getattr(pl_module, 'monitor', 'val/loss')}"
                if self.patience is not None else "")  # fmt: skip
        if trainer.is_global_zero:
            log.info(
                f"Training budget: {images} training images, batch {batch}, {steps} steps an epoch, {epochs} epochs "
                f"({steps * epochs if epochs != -1 else 'unbounded'} steps): {why}{stop}; lr warm-up {self.warmup:.0%} "
                f"of the steps, cosine to {self.lr_floor:g} of the peak."
            )

    @staticmethod
    def _steps_per_epoch(trainer: pl.Trainer) -> tuple[int, int, int]:
        """Optimiser steps an epoch, training images and images a step, from the fit loop's training loader."""
        loader = trainer.train_dataloader
        batches = trainer.num_training_batches  # after limit_train_batches
        if not math.isfinite(batches):  # an iterable without a length: counted as one step an epoch, so min/max_epochs decide
            return 1, 0, getattr(loader, "batch_size", None) or 1
        batches = int(batches)
        steps = math.ceil(batches / trainer.accumulate_grad_batches)
        images = len(loader.dataset) if hasattr(loader, "dataset") and hasattr(loader.dataset, "__len__") else batches
        batch = (loader.batch_size or 1) * trainer.world_size * trainer.accumulate_grad_batches
        return steps, images, batch

    # ----- early stopping and extension --------------------------------------------------------------
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        monitor = getattr(pl_module, "monitor", "val/loss")
        value = trainer.callback_metrics.get(monitor)
        if value is None:
            return
        value = float(value)  # the same on every process: the monitor is synced
        epoch = trainer.current_epoch
        if self.history and self.history[-1][0] == epoch:  # val_check_interval < 1: the epoch's latest value counts
            self.history[-1] = (epoch, value)
        else:
            self.history.append((epoch, value))
        if _closes_epoch(trainer):
            self._extend_if_rising(trainer, pl_module, monitor)
        if self.patience is None:
            return
        better = self.best is None or (value > self.best if getattr(pl_module, "monitor_mode", "min") == "max" else value < self.best)
        if better:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.info(f"Early stop: {monitor} has not improved on {self.best:.4f} for {self.wait} epochs (patience {self.patience}).")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A last epoch without a validation (``check_val_every_n_epoch`` > 1) looks at the validations it had."""
        if not self.history or self.history[-1][0] != trainer.current_epoch:
            self._extend_if_rising(trainer, pl_module, getattr(pl_module, "monitor", "val/loss"))

    # ----- extension ---------------------------------------------------------------------------------
    def _extend_if_rising(self, trainer: pl.Trainer, pl_module: pl.LightningModule, monitor: str) -> None:
        """At the end of the chosen epochs, half as many again while the monitor still rises (see ``extend``). Runs
        before the epoch's checkpoint is written (Lightning calls checkpoint callbacks last), so a resume keeps it.
        The window is counted in epochs, whatever the number of validations in them."""
        if (self.extend is None or self.epochs is None or trainer.fit_loop.max_epochs != self.epochs
                or trainer.current_epoch + 1 != self.epochs or self.epochs >= self.max_epochs
                or getattr(pl_module, "monitor_mode", "min") != "max"):  # fmt: skip
            return
        window = max(2, round(0.2 * self.epochs))
        recent = [value for epoch, value in self.history if epoch >= self.epochs - window]
        before = [value for epoch, value in self.history if epoch < self.epochs - window]
        if not recent or not before:
            return
        gain = max(recent) - max(before)
        if gain < self.extend:
            return
        if self.extend_lr == "floor" and self.lr_floor == 0:
            if trainer.is_global_zero:
                log.info(f"Training budget not extended although {monitor} rose by {gain:.4f}: the added epochs would "
                         "train at the floor rate, 0 (budget.lr_floor); set budget.extend_lr: stretch or a floor above 0.")
            return
        self.epochs = min(self.max_epochs, self.epochs + math.ceil(self.epochs / 2))
        self.extended_at = trainer.global_step
        trainer.fit_loop.max_epochs = self.epochs
        trainer.should_stop = False
        if trainer.is_global_zero:
            log.info(f"Training budget extended to {self.epochs} epochs: {monitor} rose by {gain:.4f} over the last "
                     f"{window} epochs (extend {self.extend:g}); " + (f"the learning rate stays at the floor ({self.lr_floor:g} of the peak)."
                     if self.extend_lr == "floor" else f"the cosine now ends at epoch {self.epochs}."))

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best": self.best, "wait": self.wait, "history": self.history,
                "extended_at": self.extended_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs, self.best, self.wait = state_dict["epochs"], state_dict["best"], state_dict["wait"]
        self.extended_at = state_dict.get("extended_at")
        history = state_dict.get("history", [])  # older checkpoints: one value an epoch
        self.history = [tuple(item) if isinstance(item, (list, tuple)) else (epoch, item) for epoch, item in enumerate(history)]
