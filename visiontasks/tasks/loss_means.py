"""Validation and test losses as the mean over all images of all processes, logged when the epoch ends."""

from __future__ import annotations

import pytorch_lightning as pl
import torch.distributed as dist
from torch import Tensor
from torchmetrics import MeanMetric


class LossMeans:
    """This epoch's mean of each ``{stage}/{name}`` loss, weighted by batch size.

    torchmetrics ``MeanMetric``s rather than Lightning's own ``sync_dist`` mean, which divides the summed batch
    sizes as integers under gloo (21 images on 2 processes count as 20).
    """

    def __init__(self) -> None:
        self.means: dict[str, MeanMetric] = {}  # "val/loss" ...

    def update(self, key: str, value: Tensor, batch_size: int) -> None:
        if key not in self.means:
            self.means[key] = MeanMetric().to(value.device)
        self.means[key].update(value.detach().float(), batch_size)

    def log(self, task: pl.LightningModule, stage: str) -> None:
        """Log (and forget) the means of ``stage``; every process computes, and so syncs, the same keys in the
        same order, also those only another process has seen."""
        keys = sorted(key for key in self.means if key.startswith(f"{stage}/"))
        if task.trainer.world_size > 1:
            found: list[list[str]] = [[] for _ in range(task.trainer.world_size)]
            dist.all_gather_object(found, keys)
            keys = sorted(set().union(*found))
        for key in keys:
            mean = self.means.pop(key, None) or MeanMetric().to(task.device)
            task.log(key, mean.compute(), prog_bar=key == f"{stage}/loss", sync_dist=True)  # synced already
