"""``python -m visiontasks tune --config CONFIG --config SEARCH [--trials N] [--storage URL] [--study NAME]``.

An Optuna study over the keys of a search file (see :mod:`visiontasks.search.space`). Each trial is an
ordinary ``fit`` of the config with the trial's values, in its own run folder inside the experiment:
``runs/<experiment>/tune-<study>/trial-007/`` (config.yaml, checkpoints, metrics.csv, pictures; with
W&B one run per trial, grouped by the study). Every other argument (``--trainer.max_epochs 3``,
``--data.init_args.root ...``) goes to every trial's ``fit``.

Running the same command again continues the study: finished trials stay finished, a trial whose worker
was killed is marked failed, and trials run until the number asked have finished. Several workers with
the same storage (the study folder's SQLite file, or ``--storage`` for a database server) share the study.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import yaml

from visiontasks.search import outputs, pruning, study as studies
from visiontasks.search.space import SearchError, SearchSpace, as_yaml, overrides

FitCommand = Callable[[list[str]], Any]
"""Runs ``fit`` with these arguments in this process (the CLI's; the search does not import the CLI)."""
FAILURES_IN_A_ROW = 3  # trials failing one after the other stop the worker: the config, not the values, is wrong


class TrialFailed(Exception):
    """A trial's fit failed; the study goes on with the next trial."""


def parser() -> argparse.ArgumentParser:
    tune = argparse.ArgumentParser(
        prog="visiontasks tune", allow_abbrev=False,
        description="Search the values of a search file's keys with an Optuna study; each trial is a fit of the config. "
                    "Arguments it does not know go to every trial's fit (e.g. --trainer.max_epochs 3).",
    )  # fmt: skip
    tune.add_argument("--config", action="append", default=[], help="The config, and the search file (a `tune:` section).")
    tune.add_argument("--trials", type=int, help="Finished trials the study should hold (default: the search file's).")
    tune.add_argument("--storage", help="Optuna storage URL shared by the workers (default: sqlite in the study folder).")
    tune.add_argument("--study", help="The study's name (default: the experiment's).")
    tune.add_argument("--pruner", help="median, hyperband or none (default: the search file's, else median).")
    tune.add_argument("--metric", help="The logged value to optimise (default: the task's monitor, e.g. val/acc).")
    tune.add_argument("--seed", type=int, help="The sampler's seed (default: the search file's, else none).")
    tune.add_argument("--check", action="store_true", help="Check the search file against the config, print the study, run nothing.")
    return tune


def split_configs(paths: list[str]) -> tuple[list[str], list[str]]:
    """The config files and the search files (those with a ``tune:`` section) among ``--config`` files."""
    configs, searches = [], []
    for path in paths:
        try:
            content = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            content = None  # the fit command says what is wrong with it
        (searches if SearchSpace.is_search_file(content) else configs).append(path)
    return configs, searches


@contextlib.contextmanager
def own_words() -> Iterator[None]:
    """``sys.argv`` without the tune command's words while a fit runs in this process: the fit's are all in its
    arguments (LightningCLI warns when both are given)."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        yield
    finally:
        sys.argv = argv


def resolve(fit: FitCommand, fit_args: list[str]) -> dict[str, Any]:
    """The whole config a ``fit`` with ``fit_args`` would run (its ``--print_config``)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), own_words():
        try:
            fit([*fit_args, "--print_config"])
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise
    return yaml.safe_load(printed.getvalue())


def task_monitor(config: dict[str, Any]) -> tuple[str, str]:
    """The task's monitored metric and its direction (``val/acc``, ``maximize``): each task class states them."""
    class_path = config["model"]["class_path"]
    module, _, name = class_path.rpartition(".")
    task = getattr(__import__(module, fromlist=[name]), name)
    return task.monitor, "maximize" if task.monitor_mode == "max" else "minimize"


def own_processes(trainer: dict[str, Any]) -> bool:
    """Whether a trial's fit starts several processes (DDP): then it runs as a child process, as Lightning's
    launcher starts the command it runs again on every rank."""
    strategy = str(trainer.get("strategy") or "auto")
    if (trainer.get("num_nodes") or 1) > 1 or any(word in strategy for word in ("ddp", "fsdp", "deepspeed")):
        return True
    devices = trainer.get("devices", "auto")
    if isinstance(devices, str) and devices not in ("auto", "-1"):
        devices = [d for d in devices.split(",") if d.strip()] if "," in devices else int(devices)
    if isinstance(devices, list):
        return len(devices) > 1
    if devices in ("auto", -1, "-1") and trainer.get("accelerator") != "cpu":
        import torch

        return torch.cuda.device_count() > 1
    return isinstance(devices, int) and devices > 1


class Tune:
    """One worker of a study: runs trials until the study has as many finished as asked, then writes the outputs."""

    def __init__(self, args: list[str], fit: FitCommand) -> None:
        options, rest = parser().parse_known_args(args)
        configs, searches = split_configs(options.config)
        if len(searches) != 1:
            raise SearchError(
                "tune needs one search file (a `tune:` section with a `space:`) beside the config, e.g. "
                "--config configs/lenet5.yaml --config configs/search/lenet5.yaml" + (f"; got {len(searches)}" if searches else "")
            )  # fmt: skip
        if not configs:
            raise SearchError(f"tune needs the config to search around before the search file: --config CONFIG --config {searches[0]}.")
        self.fit = fit
        self.space = SearchSpace.from_file(searches[0])
        self.fit_args = [arg for path in configs for arg in ("--config", path)] + rest
        self.config = resolve(fit, self.fit_args)
        self.space.check_keys(self.config)
        monitor, direction = task_monitor(self.config)
        self.metric = options.metric or self.space.metric or monitor
        self.direction = self.space.direction or (direction if self.metric == monitor else None)
        if self.direction is None:
            raise SearchError(f"{self.space.source}: tune.metric {self.metric} is not the task's monitor ({monitor}); "
                              "say which way is better with tune.direction: maximize or minimize.")  # fmt: skip
        self.trials = options.trials or self.space.trials
        if self.trials < 1:
            raise SearchError(f"--trials {self.trials}: give at least 1.")
        self.experiment = self.config.get("experiment") or Path(configs[0]).stem
        self.name = options.study or self.experiment
        self.folder = Path(self.config.get("runs_dir") or "runs") / self.experiment / f"tune-{self.name}"
        self.url = options.storage or studies.default_storage(self.folder)
        self.pruner = options.pruner or self.space.pruner
        self.seed = options.seed if options.seed is not None else self.space.seed
        self.max_epochs = (self.config.get("trainer") or {}).get("max_epochs")
        studies.make_pruner(self.pruner, self.max_epochs)  # a misspelt pruner fails here, before any trial
        self.in_child = own_processes(self.config.get("trainer") or {})
        self.described = f"{' '.join(configs)} with {self.space.source}, {self.metric} ({self.direction})"
        self.check_only = options.check
        self.study: optuna.Study | None = None
        self.last_number = -1  # the trial this worker ran last

    def summary(self) -> str:
        keys = "\n".join(f"  {p.key}: {p.choices if p.choices is not None else (p.low, p.high)}" for p in self.space.params)
        return (f"Study {self.name}: {self.trials} trials of {self.described}, pruner {self.pruner}, "
                f"trials in {self.folder}/trial-NNN, storage {self.url}\n{keys}")  # fmt: skip

    def open(self) -> optuna.Study:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = studies.fingerprint(self.config, {p.key: vars(p) for p in self.space.params}, self.metric, self.direction)
        self.study = studies.open_study(self.name, studies.open_storage(self.url, heartbeat=True), self.url, self.direction,
                                        studies.make_pruner(self.pruner, self.max_epochs), stamp, self.described, self.seed)  # fmt: skip
        return self.study

    # ----- one trial --------------------------------------------------------------------------------
    def objective(self, trial: optuna.Trial) -> float:
        self.last_number = trial.number
        trial.set_user_attr(studies.WORKER, studies.this_worker())
        values = self.space.suggest(trial)
        run_id = f"trial-{trial.number:03d}"
        trial.set_user_attr("run", str(self.folder / run_id))
        trial.set_user_attr("metric", self.metric)
        print(f"Trial {trial.number} of study {self.name}: " + ", ".join(f"{k}={v}" for k, v in values.items()), flush=True)
        reporter = {"class_path": f"{pruning.__name__}.TrialPruning", "init_args": {
            "storage": self.url, "study": self.name, "trial_id": trial._trial_id,  # the storage's id, as the callback loads it
            "metric": self.metric, "pruner": self.pruner, "max_epochs": self.max_epochs}}  # fmt: skip
        args = [*self.fit_args, *overrides(self.config, values), f"--runs_dir={self.folder.parent}",
                f"--experiment={self.folder.name}", f"--run_id={run_id}", f"--trainer.callbacks+={as_yaml(reporter)}"]  # fmt: skip
        failure = None
        try:
            self.run_fit(args)
        except TrialFailed as error:
            failure = error
        done = self.study.get_trials(deepcopy=False)[trial.number]
        if done.user_attrs.get(pruning.FATAL):  # a mistake of the study, not of this trial's values
            raise SearchError(done.user_attrs[pruning.FATAL])
        if failure is not None:
            trial.set_user_attr("error", str(failure)[-500:])
            raise failure
        if pruning.PRUNED_AT in done.user_attrs:
            raise optuna.TrialPruned()
        scores = [v for v in done.intermediate_values.values() if math.isfinite(v)]
        if not scores:
            raise TrialFailed(f"trial {trial.number} logged no finite {self.metric} (see {self.folder / run_id})")
        return max(scores) if self.direction == "maximize" else min(scores)

    def run_fit(self, args: list[str]) -> None:
        if self.in_child:
            done = subprocess.run([sys.executable, "-m", "visiontasks", "fit", *args], env=dict(os.environ))
            if done.returncode:
                raise TrialFailed(f"its fit exited with code {done.returncode} (its output is above)")
            return
        try:
            with own_words():
                self.fit(args)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise TrialFailed(str(stop.code)) from None
        except (KeyboardInterrupt, SearchError):
            raise
        except Exception as error:  # noqa: BLE001 - any failure of one trial's fit: the study goes on
            raise TrialFailed(f"{type(error).__name__}: {error}") from error

    # ----- the study ----------------------------------------------------------------------------------
    def run(self) -> optuna.Study | None:
        print(self.summary(), flush=True)
        if self.check_only:
            return None
        self.open()
        failures = 0
        while True:
            dead = studies.fail_dead_trials(self.study)
            if dead:
                print(f"Marked failed: trial(s) {', '.join(map(str, dead))} of study {self.name}, whose worker has gone.")
            finished = studies.count(self.study, studies.FINISHED)
            running = studies.count(self.study, (optuna.trial.TrialState.RUNNING,))
            if finished + running >= self.trials:
                break
            print(f"Study {self.name} ({self.url}): {finished} of {self.trials} trials finished, {running} running.", flush=True)
            self.study.optimize(self.objective, n_trials=1, catch=(TrialFailed,))
            last = self.study.get_trials(deepcopy=False)[self.last_number]
            failures = failures + 1 if last.state == optuna.trial.TrialState.FAIL else 0
            if failures >= FAILURES_IN_A_ROW:
                raise SearchError(f"{failures} trials in a row failed, the last ({last.user_attrs.get('run')}) with: "
                                  f"{last.user_attrs.get('error', '?')}; fix the config or the ranges.")  # fmt: skip
        self.write_outputs()
        return self.study

    def write_outputs(self) -> None:
        outputs.write_trials_csv(self.study, self.folder / "trials.csv")
        best = outputs.write_best(self.study, self.space, self.config, self.experiment, self.folder / "best.yaml")
        outputs.write_pictures(self.study, self.folder)
        finished = studies.count(self.study, studies.FINISHED)
        pruned = studies.count(self.study, (optuna.trial.TrialState.PRUNED,))
        if best is None:
            print(f"Study {self.name}: no trial completed yet; trials in {self.folder / 'trials.csv'}.")
            return
        trial = self.study.best_trial
        print(f"Study {self.name}: {finished} trials finished ({pruned} pruned); best trial {trial.number}: "
              f"{self.metric} {trial.value:.4f}, {trial.user_attrs.get('run')}. Config: {best}")  # fmt: skip


def tune(args: list[str], fit: FitCommand) -> optuna.Study | None:
    """Run the ``tune`` command with ``args`` (the words after ``tune``); ``fit`` runs one trial's fit."""
    if any(arg in ("-h", "--help") for arg in args):
        parser().print_help()
        raise SystemExit(0)
    return Tune(args, fit).run()
