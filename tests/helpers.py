"""Helpers for driving the public surface from tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

RESUMABLE = [sys.executable, "-m", "visiontasks", "fit", "--config", str(CONFIGS / "lenet5.yaml"), "--data.init_args.num_samples=1500",
             "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false", "--trainer.logger=false"]  # fmt: skip
"""A fit long enough to stop mid-epoch (LeNet-5, 2 workers), for the kill, signal and resume tests."""

FAST_TRAINER = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]


def tiny(num_samples: int = 24, batch_size: int = 4, image_size: int | None = None) -> list[str]:
    """CLI overrides that shrink a shipped config to a few batches of a few small images."""
    size = [f"--data.init_args.image_size={image_size}"] if image_size else []
    return [
        f"--data.init_args.num_samples={num_samples}",
        *size,
        f"--data.init_args.batch_size={batch_size}",
        "--data.init_args.num_workers=0",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=1",
    ]


_LAST: list[Any] = []


def run_cli(*args: str):
    """Run ``python -m visiontasks ARGS`` in-process, as a user would, and return the CLI object."""
    from visiontasks.cli import main

    sys.argv = ["visiontasks"]  # pytest's own arguments are not the CLI's
    cli = main([*args, *FAST_TRAINER] if args[0] in ("fit", "validate", "test", "predict", "export") else list(args))
    _LAST[:] = [cli]
    return cli


def newest_run() -> Path:
    """The folder the last CLI call wrote into: the run folder after ``fit``, its ``test/``... folder after ``test``."""
    return _LAST[0].run.stage_dir


def fit_validate_test(config: str, args: list[str], metric: str) -> tuple[Path, Any]:
    """Fit a shipped config, validate and test its ``last.ckpt``; return the checkpoint and the test CLI.

    Checks the run folder holds the checkpoint and that ``val/<metric>`` is a score in [0, 1].
    """
    run_cli("fit", "--config", config, *args)
    checkpoint = newest_run() / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    validated = run_cli("validate", "--config", config, f"--ckpt_path={checkpoint}", *args)
    assert 0 <= float(validated.trainer.callback_metrics[f"val/{metric}"]) <= 1
    return checkpoint, run_cli("test", "--config", config, f"--ckpt_path={checkpoint}", *args)


def remove_checkpoints(folder: Path) -> None:
    """Delete the checkpoints a test left: pytest keeps its last three runs' folders, and a full run's
    checkpoints (detectors, 2-process runs) are about 8 GB."""
    for checkpoint in Path(folder).rglob("*.ckpt"):
        checkpoint.unlink()
