"""Per-step seeding: a seeded run repeats each training step's random numbers, resumed or not."""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch


def seed_step(task: pl.LightningModule, batch_idx: int) -> None:
    """Seeded runs draw each step's random numbers (dropout, the detector's sampling) from a seed made of
    the run's seed, the epoch, the batch and the rank, so a run resumed from ``last.ckpt`` repeats them."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is not None:
        step_seed = hash((int(seed), task.current_epoch, batch_idx, task.global_rank)) % 2**63
        # the generators this process draws from; torch.manual_seed (every device kind) costs ~5 ms a step
        torch.default_generator.manual_seed(step_seed)
        if task.device.type == "cuda":
            torch.cuda.manual_seed(step_seed)
