"""Seeded, stratified index splits: the same seed gives the same split on every machine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def split_off(
    indices: np.ndarray, fraction: float, seed: int, labels: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (kept, taken) with ``fraction`` taken, per class when labels are given."""
    if not 0 <= fraction < 1:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    if labels is None:
        groups = [indices]
    else:
        label_array = np.asarray(labels)[indices]
        groups = [indices[label_array == value] for value in np.unique(label_array)]
    kept, taken = [], []
    for group in groups:
        group = rng.permutation(group)
        count = int(round(len(group) * fraction))
        if fraction > 0 and count == 0 and len(group) > 1:
            count = 1
        taken.append(group[:count])
        kept.append(group[count:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(taken))
