"""The command line as users meet it: help, version, config printing, run folders and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from helpers import CONFIGS, run_cli

TINY = [
    "--data.init_args.num_samples=48",
    "--data.init_args.batch_size=8",
    "--data.init_args.num_workers=0",
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
]


def run_folders() -> list[Path]:
    return sorted(p.parent for p in Path("runs").glob("*/*/checkpoints"))


def test_help_version_and_print_config(capsys):
    for args in (["--help"], ["--version"], ["fit", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(*args)
        assert exit_info.value.code == 0
    assert "visiontasks 0.1.0" in capsys.readouterr().out

    with pytest.raises(SystemExit):
        run_cli("fit", "--config", str(CONFIGS / "classification.yaml"), "--print_config")
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "visiontasks.ClassificationTask"
    assert printed["data"]["init_args"]["task"] == "classification"


def test_short_class_names_resolve():
    cli = run_cli("fit", "--model=ClassificationTask", "--model.model=lenet5", "--data=ShapesDataModule",
                  "--data.image_size=32", "--trainer.logger=false", *TINY)  # fmt: skip
    assert type(cli.model).__name__ == "ClassificationTask"
    assert cli.model.num_classes == 3 and cli.model.class_names == ["circle", "square", "triangle"]


def test_run_folder_holds_config_and_checkpoints_and_resume_last(capsys):
    config = str(CONFIGS / "classification.yaml")
    run_cli("fit", "--config", config, *TINY)
    (first,) = run_folders()
    assert (first / "config.yaml").is_file()
    assert (first / "checkpoints" / "last.ckpt").is_file()
    assert list((first / "checkpoints").glob("best-epoch*.ckpt"))
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["data"]["init_args"]["num_samples"] == 48
    hparams = torch.load(first / "checkpoints" / "last.ckpt", weights_only=False)["hyper_parameters"]
    assert hparams["num_classes"] == 3 and hparams["class_names"] == ["circle", "square", "triangle"]

    cli = run_cli("fit", "--config", config, "--ckpt_path=last", *TINY[:-3], "--trainer.max_epochs=2",
                  "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1")  # fmt: skip
    assert f"Using checkpoint {first / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out
    assert cli.trainer.current_epoch == 2  # resumed after epoch 1, trained one more


def test_ckpt_path_last_without_earlier_run_is_a_clear_error():
    with pytest.raises(SystemExit, match=r"--ckpt_path last: no checkpoint found at runs/classification/\*/checkpoints/last\.ckpt"):
        run_cli("test", "--config", str(CONFIGS / "classification.yaml"), "--ckpt_path=last", *TINY)


def test_two_process_ddp_on_cpu_writes_one_run_folder_and_evaluates_like_one_process():
    """The same YAML scales out: `python -m visiontasks` with a 2-process DDP Trainer (gloo on CPU). Validation
    over 2 processes scores each of the 7 validation images once (no padding): the same val/acc as 1 process."""
    import csv
    import os
    import subprocess
    import sys

    common = ["--config", str(CONFIGS / "lenet5.yaml"), "--trainer.accelerator=cpu", "--trainer.max_epochs=1",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=CSVLogger",
              "--data.init_args.num_samples=100", "--data.init_args.batch_size=16", "--data.init_args.num_workers=0"]  # fmt: skip
    env = dict(os.environ, WANDB_MODE="disabled")

    def run(*args: str, devices: int) -> None:
        strategy = ["--trainer.strategy=ddp"] if devices > 1 else []
        command = [sys.executable, "-m", "visiontasks", *args, *common, f"--trainer.devices={devices}", *strategy]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]

    run("fit", devices=2)
    (folder,) = run_folders()
    assert (folder / "config.yaml").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
    state = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["epoch"] == 0 and state["global_step"] == 2  # 70 training images, 2 ranks x 16 per step, last dropped

    scores = []
    for devices in (2, 1):
        run("validate", "--ckpt_path=last", devices=devices)
        with open(folder / "validate" / "csv" / "metrics.csv") as handle:
            scores.append(float(next(row for row in csv.DictReader(handle) if row.get("val/acc"))["val/acc"]))
    assert scores[0] == scores[1], scores


def test_evaluation_shards_cover_each_sample_once_without_padding():
    from visiontasks.data.sampling import ShardSampler

    shards = [list(ShardSampler(range(21), num_replicas=2, rank=rank)) for rank in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(21)) and [len(s) for s in shards] == [11, 10]
