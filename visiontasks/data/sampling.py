"""Training order and augmentation that depend on the seed and the epoch only, so a resumed run repeats them.

The sampler shuffles by ``seed + epoch`` (as ``DistributedSampler`` does, one shard per process) and
hands each index over with its epoch; the dataset seeds the augmentation of that sample from
``(seed, epoch, index)``. Neither depends on the global random state, the number of data loader
workers or how often the run was stopped and resumed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler


class EpochSampler(DistributedSampler):
    """Yields ``(index, epoch)``; Lightning calls ``set_epoch`` every epoch and keeps this sampler under DDP."""

    def __init__(self, dataset: Sized, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((index, epoch) for index in super().__iter__())


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch."""
    return hash((seed, epoch, index)) % 2**32
