"""``visiontasks tune``: the search file's mistakes, every shipped search file, and small studies of tiny trials.

The studies run lenet5 on 40 shapes for one epoch of two batches (a trial takes ~2 s in the test's process);
the kill, parallel-worker and PostgreSQL tests start workers as separate processes, as users do.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import CONFIGS, FAST_TRAINER, run_cli

from visiontasks.search import SearchError, SearchSpace

ROOT = CONFIGS.parent
SEARCH = CONFIGS / "search"
TINY_TRIAL = [  # appended to `tune`: every trial is a fit of a few small batches, no pictures, a CSV logger
    "--data.init_args.num_samples=40", "--data.init_args.batch_size=4", "--data.init_args.num_workers=0",
    "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
    "--trainer.logger=CSVLogger", "--pictures.grid=0", "--pictures.overlays=0", "--pictures.filters=false",
    "--pictures.curves=false", "--pictures.top_losses=0", "--pictures.grad_cam=0", *FAST_TRAINER,
]  # fmt: skip


def tune_args(*extra: str, search: Path = SEARCH / "lenet5.yaml", config: str = "lenet5") -> list[str]:
    return ["tune", "--config", str(CONFIGS / f"{config}.yaml"), "--config", str(search), *extra, *TINY_TRIAL]


def write_search(space: dict, **settings) -> Path:
    path = Path("search.yaml")
    path.write_text(yaml.safe_dump({"tune": {**settings, "space": space}}))
    return path


def error_of(*args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        run_cli(*args)
    assert isinstance(stop.value.code, str), f"exited with {stop.value.code!r}, not an error line"
    return stop.value.code


# ----- the search file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"low": 0.1, "high": 0.01}, "search.yaml: lr: low 0.1 is above high 0.01; swap them."),
        ({"low": 0.0, "high": 0.1, "log": True}, "search.yaml: lr: a log range must stay above 0 but low is 0.0; "
                                                 "give a positive low (e.g. 0.0001) or drop log: true."),  # fmt: skip
        ({"low": 1.0e-4, "hihg": 0.1}, "search.yaml: lr: unknown range field 'hihg' (did you mean high?); a range takes low, high, log, step, type."),
        ({"low": 1.0e-4}, "search.yaml: lr: a range needs both low and high, e.g. {low: 0.001, high: 0.1}."),
        ({"low": "1e-4", "high": 0.1}, "search.yaml: lr: low '1e-4' is not a number (write 1.0e-4, not 1e-4, in YAML)."),
        ([], "search.yaml: lr: an empty list of choices; give at least one value."),
        ({"low": 1.0e-4, "high": 0.1, "log": True, "step": 0.01}, "search.yaml: lr: log and step do not go together; drop one of them."),
    ],
)
def test_a_bad_range_is_one_line_naming_the_key_and_the_fix(spec, message):
    with pytest.raises(SearchError) as error:
        SearchSpace.parse({"tune": {"space": {"lr": spec}}}, "search.yaml")
    assert str(error.value) == message


def test_ranges_give_floats_ints_and_choices():
    space = SearchSpace.parse({"tune": {"trials": 3, "space": {
        "a": {"low": 1.0e-4, "high": 1.0e-1, "log": True}, "b": {"low": 1, "high": 4}, "c": [16, 32],
        "d": {"low": 0.0, "high": 1.0, "step": 0.25}, "e": [{"class_path": "Affine"}, None]}}}, "s")  # fmt: skip
    assert space.trials == 3 and space.pruner == "median" and space.metric is None
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = [space.suggest(study.ask()) for _ in range(20)]
    assert all(1.0e-4 <= v["a"] <= 0.1 and isinstance(v["a"], float) for v in values)
    assert {v["b"] for v in values} <= {1, 2, 3, 4} and all(isinstance(v["b"], int) for v in values)
    assert {v["c"] for v in values} == {16, 32} and {v["d"] for v in values} <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert {str(v["e"]) for v in values} == {"{'class_path': 'Affine'}", "None"}  # a mapping comes back as a mapping


def test_a_key_the_config_does_not_have_names_the_close_matches():
    search = write_search({"model.init_args.optimizer.init_args.lrr": {"low": 1.0e-4, "high": 0.1}})
    message = error_of(*tune_args("--check", search=search))
    assert message == ("visiontasks: error: search.yaml: model.init_args.optimizer.init_args.lrr is not a key of the config "
                       "(did you mean model.init_args.optimizer.init_args.lr?).")  # fmt: skip


def test_a_search_file_is_needed_and_its_settings_are_checked():
    assert "tune needs one search file" in error_of("tune", "--config", str(CONFIGS / "lenet5.yaml"))
    search = write_search({"data.init_args.batch_size": [8, 16]}, pruners="median")
    assert error_of(*tune_args("--check", search=search)) == (
        "visiontasks: error: search.yaml: unknown setting tune.pruners (did you mean pruner?); "
        "a search takes trials, pruner, metric, direction, space.")  # fmt: skip
    search = write_search({"data.init_args.batch_size": [8, 16]}, pruner="medain")
    assert "tune.pruner 'medain' (did you mean median?): give median, hyperband or none." in error_of(*tune_args("--check", search=search))


def test_every_shipped_config_has_a_search_file_that_fits_it(capsys):
    configs = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    searches = sorted(p.stem for p in SEARCH.glob("*.yaml"))
    assert configs and searches == configs, "configs/search/ holds one search file per shipped config"
    for name in configs:  # parses the search file and checks every key against the config
        assert run_cli("tune", "--config", str(CONFIGS / f"{name}.yaml"), "--config", str(SEARCH / f"{name}.yaml"), "--check") is None
        printed = capsys.readouterr().out
        space = SearchSpace.from_file(SEARCH / f"{name}.yaml")
        assert f"Study {name}: {space.trials} trials" in printed and all(p.key in printed for p in space.params), printed


def test_the_metric_defaults_to_the_tasks_monitor_and_another_needs_a_direction(capsys):
    run_cli(*tune_args("--check"))
    assert "val/acc (maximize)" in capsys.readouterr().out
    message = error_of(*tune_args("--check", "--metric", "val/f1"))
    assert message.endswith("tune.metric val/f1 is not the task's monitor (val/acc); say which way is better with "
                            "tune.direction: maximize or minimize.")  # fmt: skip


def test_a_storage_that_cannot_be_opened_is_one_line():
    message = error_of(*tune_args("--storage", "sqlite:////no/such/folder/study.db"))
    assert message.startswith("visiontasks: error: --storage sqlite:////no/such/folder/study.db: cannot open this storage (")
    assert message.endswith("give a database URL Optuna opens, e.g. sqlite:///study.db or postgresql://user:password@host/database.")
