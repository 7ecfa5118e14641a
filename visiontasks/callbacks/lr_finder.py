"""``--lr_find true``: Lightning's learning-rate range test before training, its suggestion as the peak learning rate.

Lightning's ``LearningRateFinder`` sets the rate through an ``lr`` attribute; a task's optimiser comes from the
config (``optimizer: {init_args: {lr: ...}}``), so the suggestion goes straight into the optimiser and its
schedule instead. The loss-against-rate curve is saved in the run folder as ``lr_find.png``. A resumed run keeps
the rate it found when it started (it is in the optimiser's state) and does not search again.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateFinder

log = logging.getLogger(__name__)


class LearningRateSearch(LearningRateFinder):
    """Find the peak learning rate with Lightning's range test (``num_training_steps`` steps from ``min_lr`` to
    ``max_lr``) when a run starts from scratch, and train with it."""

    def __init__(self, min_lr: float = 1e-6, max_lr: float = 1.0, num_training_steps: int = 100) -> None:
        super().__init__(min_lr=min_lr, max_lr=max_lr, num_training_steps=num_training_steps, update_attr=False)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.ckpt_path is not None:  # resumed: the optimiser's state holds the rate found at the start
            return
        epochs, trainer.fit_loop.max_epochs = trainer.fit_loop.max_epochs, -1  # the search's steps, over epochs if need be
        try:
            self.lr_find(trainer, pl_module)
        finally:
            trainer.fit_loop.max_epochs = epochs
        found = self.optimal_lr.suggestion() if self.optimal_lr is not None else None
        if found is None:
            log.warning("Learning-rate search: no suggestion (too few steps or a flat loss); the config's rate is kept.")
            return
        for config in trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [found] * len(config.scheduler.base_lrs)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["initial_lr"] = found
                group["lr"] = found
        for config in trainer.lr_scheduler_configs:  # the schedule's value at this step
            for group, factor in zip(config.scheduler.optimizer.param_groups, getattr(config.scheduler, "lr_lambdas", [])):
                group["lr"] = found * factor(config.scheduler.last_epoch)
        if trainer.is_global_zero:
            from visiontasks.runs import run_dir

            path = run_dir(trainer) / "lr_find.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            figure = self.optimal_lr.plot(suggest=True)
            figure.savefig(path, dpi=100)
            import matplotlib.pyplot as plt

            plt.close(figure)
            log.info(f"Learning-rate search: peak lr {found:.3g} (loss against lr in {path}).")
