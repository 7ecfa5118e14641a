"""The callback that tells a trial's progress to the study and stops the fit when the pruner says so.

Written for ``pytorch_lightning``: optuna-integration's ``PyTorchLightningPruningCallback`` subclasses
``lightning.pytorch.Callback``, which this package's ``pytorch_lightning.Trainer`` refuses as a callback
of another package. The trial is found in the storage by its id, so the fit may run in this process, in a
child process, or on several DDP processes: only rank zero talks to the study; its verdict is broadcast and
every rank stops at the same epoch.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from visiontasks.search.space import SearchError
from visiontasks.search.study import make_pruner, open_storage

PRUNED_AT = "pruned_at"  # trial user attribute: the validation round the pruner stopped it at
FATAL = "fatal"  # trial user attribute: a mistake that stops the whole study (a metric never logged)


class TrialPruning(Callback):
    """Reports ``metric`` after every validation round to trial ``trial_id`` of ``study`` in ``storage`` and stops
    the fit when the study's pruner (``median``, ``hyperband``, ``none``) judges the trial hopeless.

    Args:
        storage: the study's storage URL.
        study: the study's name.
        trial_id: the trial's id in the storage.
        metric: the logged value to report (``val/acc``...).
        pruner: the study's pruner, as in the search file.
        max_epochs: the fit's epochs (Hyperband's largest budget).
    """

    def __init__(self, storage: str, study: str, trial_id: int, metric: str, pruner: Any = "median",
                 max_epochs: int | None = None) -> None:  # fmt: skip
        self.storage, self.study_name, self.trial_id, self.metric = storage, study, trial_id, metric
        self.pruner, self.max_epochs = pruner, max_epochs
        self.rounds = 0
        self._trial: optuna.Trial | None = None
        self._finished = False

    def _open_trial(self) -> optuna.Trial | None:
        """The running trial; ``None`` when it has finished (a fit of a trial's config.yaml, run again by hand)."""
        if self._trial is None and not self._finished:
            study = optuna.load_study(study_name=self.study_name, storage=open_storage(self.storage),
                                      pruner=make_pruner(self.pruner, self.max_epochs))  # fmt: skip
            trial = optuna.Trial(study, self.trial_id)
            if study.get_trials(deepcopy=False)[trial.number].state != optuna.trial.TrialState.RUNNING:
                print(f"Trial {trial.number} of study {self.study_name} has finished: this fit reports nothing to it.")
                self._finished = True
                return None
            self._trial = trial
        return self._trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.rounds += 1
        verdict = self._report(trainer, pl_module) if trainer.is_global_zero else ""
        verdict = trainer.strategy.broadcast(verdict, src=0)
        if verdict == "prune":
            trainer.should_stop = True
        elif verdict:
            raise SearchError(verdict)

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        trial = self._open_trial()
        if trial is None:
            return ""
        if self.metric not in trainer.callback_metrics:
            logged = sorted(k for k in trainer.callback_metrics if not k.startswith("train/")) or sorted(trainer.callback_metrics)
            message = (f"tune metric {self.metric}: {type(pl_module).__name__} logs no such value "
                       f"(it logs {', '.join(logged) or 'nothing'}); set tune.metric (or --metric) to one of them.")  # fmt: skip
            trial.set_user_attr(FATAL, message)
            return message
        value = float(trainer.callback_metrics[self.metric])
        trial.report(value if math.isfinite(value) else math.nan, step=self.rounds)
        if trial.should_prune():
            trial.set_user_attr(PRUNED_AT, self.rounds)
            print(f"Trial {trial.number} pruned after validation round {self.rounds} ({self.metric} {value:.4g}).")
            return "prune"
        return ""
