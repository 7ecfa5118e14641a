"""One collate for every task: stack what has one shape, keep variable-size targets as lists."""

from __future__ import annotations

from typing import Any

import torch

LIST_KEYS = frozenset({"boxes", "labels", "masks", "iscrowd", "path", "image_id", "orig_size"})


def collate(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Batch dict from sample dicts; ``None`` samples (skipped in training) are dropped."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return {}
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        same_shape = all(isinstance(v, torch.Tensor) and v.shape == values[0].shape for v in values)
        batch[key] = torch.stack(values) if same_shape and key not in LIST_KEYS else values
    return batch
