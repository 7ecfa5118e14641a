"""``class_weights`` of the tasks: an explicit list, or ``auto`` from the training split the task is trained on.

A task builds its losses from :func:`loss_weights`; with ``auto`` those are ones until set-up, when
:func:`use_training_class_weights` counts the training split's labels (objects, pixels) and builds the
losses again with their inverse frequency (logged, with the counts).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from visiontasks.data.balance import class_weights, training_table
from visiontasks.kinds import kind_of


def loss_weights(task: Any) -> Tensor | None:
    """The per-class loss weights ``task.hparams.class_weights`` asks for (``None``: unweighted)."""
    table, kind = getattr(task, "training_table", None), getattr(task, "training_kind", None) or kind_of(task.kinds[0])
    weights = class_weights(task.hparams.get("class_weights"), task.num_classes, table, kind, task.class_names)
    return None if weights is None else torch.tensor(weights, dtype=torch.float32)


def use_training_class_weights(task: Any, datamodule: Any) -> None:
    """``class_weights: auto``: weigh the losses by the inverse class frequency of ``datamodule``'s training split."""
    datasets = getattr(datamodule, "datasets", {})
    if task.hparams.get("class_weights") != "auto" or "train" not in datasets:
        return
    dataset = datasets["train"]
    task.training_table, task.training_kind = training_table(dataset, task.num_classes), dataset.kind
    task.configure_losses()
