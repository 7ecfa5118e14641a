"""Helpers for driving the public surface from tests."""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

FAST_TRAINER = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]


def run_cli(*args: str):
    """Run ``python -m visiontasks ARGS`` in-process, as a user would, and return the CLI object."""
    import sys

    from visiontasks.cli import main

    sys.argv = ["visiontasks"]  # pytest's own arguments are not the CLI's
    return main([*args, *FAST_TRAINER] if args[0] in ("fit", "validate", "test", "predict") else list(args))
