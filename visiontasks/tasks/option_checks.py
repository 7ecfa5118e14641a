"""The task options that a library checks only when training starts, checked when the task is made."""

from __future__ import annotations

import math

import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from visiontasks.errors import OptionError, check_option


def check_optimizer(factory: OptimizerCallable) -> None:
    """Build the optimiser once on a probe parameter, so a bad learning rate (negative, zero, NaN) or other argument
    is one line naming the option now, not a traceback when training starts (with a run folder made)."""
    option = "--model.init_args.optimizer.init_args"
    try:
        groups = factory([nn.Parameter(torch.zeros(1))]).param_groups
    except (ValueError, TypeError) as error:
        raise OptionError(f"{option}: {error}; fix the optimizer's arguments.") from None
    for group in groups:
        lr = group.get("lr")
        lr = float(lr) if isinstance(lr, (int, float, Tensor)) else None
        check_option(lr is None or (math.isfinite(lr) and lr > 0), f"{option}.lr", lr, "the learning rate must be a positive number, e.g. 0.001.")
