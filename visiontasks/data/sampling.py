"""Training order and augmentation that depend on the seed and the epoch only, so a resumed run repeats them.

The sampler shuffles by ``seed + epoch`` (as ``DistributedSampler`` does, one shard per process) and
hands each index over with its epoch; balanced, it draws the epoch's indices with replacement by per-sample
weights from the same seeded generator, then shards them alike; the dataset seeds the augmentation of that sample from
``(seed, epoch, index)``. Neither depends on the global random state, the number of data loader
workers or how often the run was stopped and resumed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence, Sized

import torch
from torch.utils.data import DistributedSampler


class EpochSampler(DistributedSampler):
    """Yields ``(index, epoch)``; Lightning calls ``set_epoch`` every epoch and keeps this sampler under DDP.

    ``skip`` leaves out the first samples of the next pass: those a run stopped mid-epoch had already trained on.
    ``weights`` (one per sample): draw the epoch's samples with replacement, sample ``i`` with chance in
    proportion to ``weights[i]`` (the balanced sampler), instead of a permutation.
    """

    def __init__(
        self, dataset: Sized, seed: int, num_replicas: int = 1, rank: int = 0, skip: int = 0,
        weights: Sequence[float] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)  # type: ignore[arg-type]
        self.skip = skip
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch, skip, self.skip = self.epoch, self.skip, 0
        order = super().__iter__() if self.weights is None else self._drawn()
        return ((index, epoch) for index in itertools.islice(order, skip, None))

    def _drawn(self) -> Iterator[int]:
        """This process's shard of the epoch's weighted draw (every process draws the same, then takes its slice)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator)
        return iter(drawn[self.rank : self.total_size : self.num_replicas].tolist())


class ShardSampler(DistributedSampler):
    """Evaluation across processes: each takes every ``num_replicas``-th sample, none twice and none padded,
    so the metrics torchmetrics gathers from uneven shards equal those of one process."""

    def __init__(self, dataset: Sized, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch."""
    return hash((seed, epoch, index)) % 2**32
