"""Decoded samples kept in memory (as Ultralytics' ``cache=ram``), so files are decoded once, not every epoch.

Small image sets (a few thousand PNGs) spend most of an epoch decoding files; kept decoded they
train several times faster. Samples are decoded in threads at set-up, before the loader's worker
processes start, which then share the arrays with the main process (copy-on-write: each read hands
out a copy, so the transforms never write into the cache).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

AUTO_LIMIT_BYTES = 4 * 2**30
"""``cache_images: auto`` keeps a set in memory up to this size (and a quarter of the free memory)."""


def free_memory() -> int:
    """Bytes of memory available now (Linux); 0 where unknown, so ``auto`` does not cache."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def sample_bytes(sample: dict[str, Any]) -> int:
    return sum(value.nbytes for value in sample.values() if isinstance(value, np.ndarray))


def should_cache(source: Sequence, setting: bool | str) -> bool:
    """``True``/``False`` as given; ``auto``: when the source reads files and its decoded samples (estimated
    from the first one) fit within :data:`AUTO_LIMIT_BYTES` and a quarter of the free memory."""
    if setting != "auto":
        return bool(setting)
    if getattr(source, "paths", None) is None or len(source) == 0:
        return False  # generated samples (the shapes): nothing to decode
    return sample_bytes(source[0]) * len(source) <= memory_limit()


def memory_limit() -> int:
    """Bytes a cache may hold: :data:`AUTO_LIMIT_BYTES`, at most a quarter of the free memory."""
    return min(AUTO_LIMIT_BYTES, free_memory() // 4)


class CachedSource(Sequence):
    """Every sample of ``source`` decoded once, in threads; each read returns copies of its arrays."""

    def __init__(self, source: Sequence, threads: int = 8) -> None:
        self.source = source
        if getattr(source, "decoded", None) is not None:  # its set-up check decoded them: reads from memory
            self.samples = [source[i] for i in range(len(source))]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:  # PIL decodes without the GIL
                self.samples = list(pool.map(source.__getitem__, range(len(source))))
        log.info("Cached %d decoded samples in memory (%.0f MB).", len(self.samples),
                 sum(map(sample_bytes, self.samples)) / 2**20)  # fmt: skip

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in self.samples[i].items()}

    def __getattr__(self, name: str) -> Any:  # labels, paths, ... of the source
        if name in ("source", "samples"):
            raise AttributeError(name)
        return getattr(self.source, name)
