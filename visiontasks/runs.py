"""Where a run's files go: one folder holding config.yaml, checkpoints/, reports and predictions."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder that holds this run's ``checkpoints/``: the logger's run folder, else the root dir.

    Follows the rule ModelCheckpoint uses (``save_dir/name/version``), so every file of a run
    lands next to its checkpoints.
    """
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.dirpath is not None:
        return Path(checkpoint.dirpath).parent
    if trainer.loggers:
        logger = trainer.loggers[0]
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version
    return Path(trainer.default_root_dir)


def rank_path(trainer: pl.Trainer, name: str) -> Path:
    """``<run>/<name>`` for one process; ``<run>/rank<N>-<name>`` per process in a multi-process predict."""
    return run_dir(trainer) / (name if trainer.world_size == 1 else f"rank{trainer.global_rank}-{name}")


def latest_checkpoint(trainer: pl.Trainer, kind: str) -> Path | None:
    """Newest ``last.ckpt`` (``kind="last"``) or ``best-*.ckpt`` among this config's runs.

    A new process starts a new run folder, so ``--ckpt_path last`` looks across the sibling
    run folders for the newest one rather than in the (empty) folder of the run just created.
    """
    pattern = "last*.ckpt" if kind == "last" else "best*.ckpt"
    if trainer.loggers:
        logger = trainer.loggers[0]
        runs = Path(logger.save_dir or trainer.default_root_dir) / str(logger.name)
        found = list(runs.glob(f"*/checkpoints/{pattern}"))
    else:
        found = list(Path(trainer.default_root_dir).glob(f"checkpoints/{pattern}"))
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
