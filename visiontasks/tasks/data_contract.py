"""What a task needs of its data, checked at set-up so that a mismatch is one clear line, not a failed first step.

Also the one map from a sample kind to the task that consumes it, filled from each task's ``kinds``.
"""

from __future__ import annotations

import typing
from typing import Any

import pytorch_lightning as pl

from visiontasks.errors import DataError

TASK_OF_KIND: dict[str, type[pl.LightningModule]] = {}
"""The task that consumes each sample kind: the first task defined with the kind in its ``kinds``."""


def register_kinds(task: type[pl.LightningModule]) -> None:
    """Record ``task`` as the task of the kinds it names itself (``kinds`` in its own class body)."""
    for kind in task.__dict__.get("kinds", ()):
        TASK_OF_KIND.setdefault(kind, task)


def check_kind(task: Any, datamodule: Any) -> None:
    """Data of another kind would fail in the first step (a missing key): say so, and what fits, now."""
    kind = getattr(datamodule, "task", None)
    if kind is None or not task.kinds or kind in task.kinds:
        return
    name, data = type(task).__name__, type(datamodule).__name__
    choices = typing.get_args(typing.get_type_hints(type(datamodule).__init__).get("task"))  # its Literal
    fits = [k for k in task.kinds if k in choices]
    fix = f"set data.init_args.task: {fits[0]}" if fits else f"give it {' or '.join(task.kinds)} data"
    raise DataError(
        f"{name} trains on {' or '.join(task.kinds)} data, but {data} gives {kind} samples: "
        f"{fix}, or use {TASK_OF_KIND[kind].__name__} for {kind} data."
    )


def check_data(task: Any, datamodule: Any) -> None:
    """The data's kind, classes, labels per image and channels agree with the task's."""
    check_kind(task, datamodule)
    expected = getattr(datamodule, "num_classes", None)
    if expected and expected != task.num_classes:
        raise DataError(
            f"The task has num_classes={task.num_classes} but the data has {expected} classes "
            f"{getattr(datamodule, 'class_names', '')}: drop num_classes from the task (the CLI links it) "
            "or make the two agree."
        )
    multilabel = getattr(datamodule, "multilabel", None)
    if multilabel is not None and "multilabel" in task.hparams and multilabel != task.hparams.multilabel:
        kind = "several labels per image" if multilabel else "one label per image"
        raise DataError(
            f"The data has {kind} but the task has multilabel={task.hparams.multilabel}: "
            f"set --model.init_args.multilabel {str(multilabel).lower()} (multilabel: {str(multilabel).lower()} in the config)."
        )
    channels = getattr(datamodule, "in_channels", None)
    if channels and channels != task.hparams.in_channels:
        raise DataError(f"The task has in_channels={task.hparams.in_channels} but the data gives {channels}.")
