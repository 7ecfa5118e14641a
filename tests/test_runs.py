"""One experiment, one place: run folders per config, outputs beside the model, last.ckpt, exact resume,
a non-finite loss that stops training, and loading that never runs code from a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import CONFIGS, run_cli, tiny

LENET = str(CONFIGS / "lenet5.yaml")
SMALL = tiny(num_samples=48, batch_size=8)


def only_run(experiment: str) -> Path:
    (run,) = Path("runs", experiment).iterdir()
    return run


def test_each_config_tests_with_its_own_best_checkpoint_and_writes_beside_it(capsys):
    run_cli("fit", "--config", LENET, *SMALL)
    run_cli("fit", "--config", str(CONFIGS / "classification.yaml"), *SMALL, "--data.init_args.image_size=32")
    for experiment in ("lenet5", "classification"):
        run = only_run(experiment)
        trained_config = (run / "config.yaml").read_text()
        cli = run_cli("test", "--config", str(CONFIGS / f"{experiment}.yaml"), "--ckpt_path=best", *SMALL)
        assert f"Using checkpoint {run}/checkpoints/best-epoch000.ckpt" in capsys.readouterr().out
        assert cli.run.path == run.resolve() and cli.run.stage_dir == run.resolve() / "test"
        assert "macro avg" in (run / "test" / "test_report.txt").read_text()
        assert (run / "test" / "config.yaml").is_file() and (run / "config.yaml").read_text() == trained_config

    photos = Path("photos")
    photos.mkdir()
    from PIL import Image

    Image.new("L", (20, 30), 128).save(photos / "a.png")
    run_cli("predict", "--config", LENET, "--ckpt_path=last", f"--data.init_args.predict_dir={photos}", *SMALL)
    (predicted,) = (only_run("lenet5") / "predict").glob("*/predictions.csv")
    assert "a.png" in predicted.read_text()
    run_cli("validate", "--config", LENET, "--ckpt_path=last", *SMALL)
    assert (only_run("lenet5") / "validate" / "config.yaml").is_file()
    assert sorted(p.name for p in Path("runs").iterdir()) == ["classification", "lenet5"]  # nothing else was made


def test_last_checkpoint_holds_the_final_epoch_and_runs_in_one_process_stay_apart():
    args = [*SMALL[:-4], "--trainer.max_epochs=3", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
    run_cli("fit", "--config", LENET, *args)
    run_cli("fit", "--config", LENET, *args, "--data.init_args.seed=1")  # a second run from the same notebook
    first, second = sorted(Path("runs/lenet5").iterdir())
    for run, seed in ((first, 0), (second, 1)):
        last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        assert last["epoch"] == 2 and last["global_step"] == 6  # not the epoch of the best checkpoint
        assert yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]["seed"] == seed


def test_experiment_name_and_runs_dir_can_be_chosen():
    cli = run_cli("fit", "--config", LENET, *SMALL, "--experiment=digits", "--runs_dir=elsewhere", "--trainer.logger=false")
    assert cli.run.path.parent == Path("elsewhere/digits") and (cli.run.path / "checkpoints" / "last.ckpt").is_file()
    assert run_cli("test", "--config", LENET, *SMALL, "--experiment=digits", "--runs_dir=elsewhere",
                   "--ckpt_path=last").run.path == cli.run.path.resolve()  # fmt: skip


def test_missing_or_foreign_checkpoints_are_one_clear_line():
    with pytest.raises(SystemExit, match=r"^visiontasks: error: --ckpt_path nothere\.ckpt: checkpoint file not found\.$"):
        run_cli("test", "--config", LENET, "--ckpt_path=nothere.ckpt", *SMALL)
    with pytest.raises(SystemExit, match=r"no checkpoint found at runs/unet/\*/checkpoints/best\*\.ckpt"):
        run_cli("test", "--config", str(CONFIGS / "unet.yaml"), "--ckpt_path=best", *SMALL)
    run_cli("fit", "--config", LENET, *SMALL)
    checkpoint = only_run("lenet5") / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit, match=r"last\.ckpt: this checkpoint is of a ClassificationTask, but the config builds a SegmentationTask"):
        run_cli("test", "--config", str(CONFIGS / "unet.yaml"), f"--ckpt_path={checkpoint}", *SMALL)
    with pytest.raises(SystemExit, match=r"last\.ckpt: the checkpoint has num_classes=3 but the config and data give 2"):
        run_cli("test", "--config", LENET, f"--ckpt_path={checkpoint}", "--data.init_args.shapes=[circle,square]", *SMALL)
    Path("notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(SystemExit, match=r"notes\.ckpt: the checkpoint is damaged \(truncated or not a checkpoint"):
        run_cli("test", "--config", LENET, "--ckpt_path=notes.ckpt", *SMALL)


class Payload:
    """Unpickling this creates a file: what a malicious weights file would do."""

    def __reduce__(self):
        return Path.touch, (Path("pwned").absolute(),)


def test_files_with_pickled_code_are_refused_and_run_nothing():
    torch.save({"conv.weight": torch.zeros(1), "extra": Payload()}, "evil.pth")
    with pytest.raises(SystemExit, match=r"evil\.pth: refused, the file holds pickled Python objects"):
        run_cli("fit", "--config", LENET, *SMALL, "--model.init_args.weights=evil.pth", "--trainer.logger=false")
    torch.save({"state_dict": {}, "extra": Payload()}, "evil.ckpt")
    with pytest.raises(SystemExit, match=r"evil\.ckpt: not a checkpoint that can be loaded safely"):
        run_cli("test", "--config", LENET, "--ckpt_path=evil.ckpt", *SMALL)
    assert not Path("pwned").exists()


def test_non_finite_loss_stops_at_once_and_keeps_the_last_good_checkpoint():
    """Epoch 0 trains at a sane rate; from epoch 1 the rate is 1e30 times higher and the loss diverges: the message
    names that epoch and epoch 0's last.ckpt, which holds finite weights."""
    exploding = ["--model.init_args.lr_scheduler=torch.optim.lr_scheduler.ExponentialLR",
                 "--model.init_args.lr_scheduler.init_args.gamma=1e30"]  # fmt: skip
    args = [*SMALL[:-4], "--trainer.max_epochs=4", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
            *exploding, "--trainer.logger=false"]  # fmt: skip
    with pytest.raises(SystemExit, match=r"train/loss is (nan|inf) at epoch [1-3], step \d+ \(batch \d+\): training stopped") as stop:
        run_cli("fit", "--config", LENET, *args)
    last = only_run("lenet5") / "checkpoints" / "last.ckpt"
    assert f"the last good checkpoint is {last.resolve()}" in str(stop.value)
    saved = torch.load(last, weights_only=True)
    assert saved["epoch"] < 3 and saved["state_dict"]  # the epochs before the divergence
    broken = [name for name, w in saved["state_dict"].items() if w.is_floating_point() and not torch.isfinite(w).all()]
    assert not broken, f"{last.name} of epoch {saved['epoch']} holds non-finite weights ({', '.join(broken[:3])})"


RESUMABLE = [sys.executable, "-m", "visiontasks", "fit", "--config", LENET, "--data.init_args.num_samples=1500",
             "--budget.min_steps=80", "--trainer.callbacks+=visiontasks.EMA", "--trainer.enable_progress_bar=false",
             "--trainer.logger=false"]  # fmt: skip
"""Three epochs of 29 steps, chosen by the training budget, with the weights' moving average (both kept for resume)."""


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory) -> Path:
    """The last checkpoint of the run never stopped, for both kill tests (checkpointing does not change training)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    env = dict(os.environ, WANDB_MODE="disabled")
    subprocess.run([*RESUMABLE, "--experiment=whole"], env=env, check=True, capture_output=True, timeout=600, cwd=folder)
    (run,) = (folder / "runs" / "whole").iterdir()
    return run / "checkpoints" / "last.ckpt"


@pytest.mark.slow
@pytest.mark.xdist_group("resume")  # one test process runs the uninterrupted run once (conftest.py)
@pytest.mark.parametrize("every_n_steps", [None, 7], ids=["epoch-checkpoints", "step-checkpoints"])
def test_a_run_killed_mid_epoch_and_resumed_ends_as_the_uninterrupted_run(every_n_steps, uninterrupted_run):
    """SIGKILL during an epoch, then `fit --ckpt_path last`: the same weights as a run never stopped (LeNet-5, 2
    workers). With a StepCheckpoint the resumed run goes on mid-epoch from the step checkpoint."""
    command = list(RESUMABLE)
    if every_n_steps:
        command += ["--trainer.callbacks+=visiontasks.StepCheckpoint", f"--trainer.callbacks.every_n_train_steps={every_n_steps}"]
    env = dict(os.environ, WANDB_MODE="disabled")

    killed = subprocess.Popen([*command, "--experiment=killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, state = time.time() + 600, None
    while time.time() < deadline and killed.poll() is None:  # kill in epoch 1, or at a step checkpoint in epoch 0
        saved = list(Path("runs/killed").glob("*/checkpoints/last.ckpt"))
        try:
            state = torch.load(saved[0], weights_only=True) if saved else None
        except (RuntimeError, EOFError):  # caught while being written
            state = None
        if state and (state["global_step"] >= 2 * every_n_steps if every_n_steps else state["epoch"] == 0):
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert state is not None and state["epoch"] < 2, "the run ended before it could be killed"
    if every_n_steps:  # a mid-epoch checkpoint: the data module kept how far the epoch had gone
        assert 0 < state["ShapesDataModule"]["batches_done"] < state["ShapesDataModule"]["batches"]

    resumed = subprocess.run([*command, "--experiment=killed", "--ckpt_path=last"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(list(Path("runs/killed").iterdir())) == 1  # the same run folder went on
    whole = torch.load(uninterrupted_run, weights_only=True)
    again = torch.load(only_run("killed") / "checkpoints" / "last.ckpt", weights_only=True)
    assert (whole["epoch"], whole["global_step"]) == (again["epoch"], again["global_step"])
    for name, value in whole["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][name], value, rtol=0, atol=1e-6)


def test_a_command_that_fails_before_writing_leaves_no_empty_run_folder():
    with pytest.raises(SystemExit, match=r"unknown classification model 'lenet6': did you mean lenet5"):
        run_cli("fit", "--config", LENET, *SMALL, "--model.init_args.model=lenet6")
    assert not Path("runs").exists() or not any(Path("runs").rglob("*")), sorted(Path("runs").rglob("*"))
    run_cli("fit", "--config", LENET, *SMALL, "--trainer.max_steps=1")  # the same command, spelt right, makes its run
    assert (only_run("lenet5") / "checkpoints" / "last.ckpt").is_file()
