"""EMA: an exponential moving average of the weights, validated, checkpointed and kept at the end.

Lightning's ``WeightAveraging`` swaps the average in for every validation and writes it as the checkpoint's
``state_dict`` (the weights being trained stay in ``current_model_state`` for resume), so the best checkpoint holds
the averaged weights whose metrics chose it. The decay ramps up as in timm and Ultralytics, ``min(decay, (1 + n) /
(10 + n))`` after ``n`` updates: early averages do not drag along the random start.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.callbacks import WeightAveraging


def ramped_ema(decay: float) -> Any:
    """An ``AveragedModel`` ``multi_avg_fn``: every tensor ``ema += (1 - d) * (current - ema)`` at once."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor | int) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - d)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():  # counters (batch norm's num_batches_tracked) follow the model
                a.copy_(c)

    return update


class EMA(WeightAveraging):
    """Exponential moving average of the weights (and batch-norm statistics), updated every optimiser step.

    Args:
        decay: the average's decay once ramped up; 0.999 averages over roughly the last thousand steps.
    """

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__(use_buffers=True, multi_avg_fn=ramped_ema(decay))
        self.decay = decay
