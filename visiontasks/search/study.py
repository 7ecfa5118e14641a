"""The study and its storage: where trials are recorded, so a study resumes and many workers share it.

The default storage is an SQLite file in the study folder (``runs/<experiment>/tune-<study>/study.db``);
``--storage`` takes any database URL Optuna's RDB storage opens (``postgresql://...``, ``mysql://...``)
for workers on several machines. Every worker beats a heartbeat into its running trial: a trial whose
worker was killed is marked failed at the next start (at once when the worker ran on this machine, after
the grace period when it ran elsewhere), and never counts as finished.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from visiontasks.search.space import SearchError, close_matches

HEARTBEAT_S = 10  # a running trial's heartbeat
GRACE_S = 60  # a trial silent this long, of a worker on another machine, is failed
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
WORKER = "worker"  # user attribute: host:pid of the process running the trial
FINGERPRINT = "visiontasks_config"  # study user attribute: what the study optimises


def default_storage(study_dir: Path) -> str:
    return f"sqlite:///{study_dir / 'study.db'}"


def _driver(url: str) -> str:
    """``postgresql://`` through psycopg 3 when psycopg2 (SQLAlchemy's default driver) is not installed."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def open_storage(url: str, heartbeat: bool = False) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url`` (SQLite waits for a lock instead of failing when workers write at once)."""
    engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    beats = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S} if heartbeat else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(_driver(url), engine_kwargs=engine, **beats)
    except Exception as error:  # noqa: BLE001 - SQLAlchemy and the drivers raise many types
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise SearchError(
            f"--storage {url}: cannot open this storage ({reason}); give a database URL Optuna opens, "
            "e.g. sqlite:///study.db or postgresql://user:password@host/database."
        ) from None


PRUNER_DEFAULTS = {"median": {"n_startup_trials": 3, "n_warmup_steps": 1}, "hyperband": {"min_resource": 1}}


def make_pruner(spec: Any, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """An Optuna pruner by name: ``median`` (stop a trial below the median of earlier trials at the same validation
    round), ``hyperband``, ``percentile``, ``threshold``, ``successive_halving`` or ``none``; a mapping
    ``{name: median, n_startup_trials: 5}`` passes the pruner's own options."""
    options = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = str(options.pop("name", "median")).lower()
    if name in ("none", "no", "false"):
        return optuna.pruners.NopPruner()
    names = {"median", "hyperband", "percentile", "threshold", "successive_halving"}
    if name not in names:
        raise SearchError(f"tune.pruner {name!r}{close_matches(name, names)}: give median, hyperband or none "
                          "(or percentile, threshold, successive_halving).")  # fmt: skip
    options = {**PRUNER_DEFAULTS.get(name, {}), **options}
    if name == "hyperband" and max_epochs and max_epochs > 0:
        options.setdefault("max_resource", max_epochs)
    pruner = getattr(optuna.pruners, "".join(part.title() for part in name.split("_")) + "Pruner")
    try:
        return pruner(**options)
    except (TypeError, ValueError) as error:
        raise SearchError(f"tune.pruner {name}: {error}; see Optuna's {pruner.__name__} for its options.") from None


def fingerprint(config: dict[str, Any], space: dict[str, Any], metric: str, direction: str) -> str:
    """What a study optimises: the resolved base config, the space and the metric, as a short hash."""
    text = json.dumps({"config": config, "space": space, "metric": metric, "direction": direction}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_study(name: str, storage: optuna.storages.BaseStorage, url: str, direction: str, pruner: optuna.pruners.BasePruner,
               stamp: str, described: str, seed: int | None = None) -> optuna.Study:  # fmt: skip
    """The study ``name`` in ``storage``, made when new; one made for another config or space is refused."""
    sampler = optuna.samplers.TPESampler(constant_liar=True, seed=seed)  # constant liar: parallel workers propose other values
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)  # fmt: skip
    found = study.user_attrs.get(FINGERPRINT)
    if found is None:
        study.set_user_attr(FINGERPRINT, stamp)
        study.set_user_attr("described", described)
    elif found != stamp:
        raise SearchError(
            f"study {name!r} in {url} was made for another config, search space or metric "
            f"({study.user_attrs.get('described', 'unknown')}); name a new study with --study NAME, "
            "or run the same config and search file again to continue it."
        )
    if study.direction.name.lower() != direction:
        raise SearchError(f"study {name!r} in {url} goes the other way ({study.direction.name.lower()}); name a new study with --study NAME.")
    return study


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Mark failed the running trials whose worker is gone: at once for a worker of this machine whose process has
    ended, by Optuna's heartbeat for the others. Returns the numbers of the trials marked."""
    host = socket.gethostname()
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER, "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            marked.append(trial.number)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    marked += sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    return marked


def count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
