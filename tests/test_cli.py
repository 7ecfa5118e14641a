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
