"""One collate for every task: stack what has one shape, keep variable-size targets as lists."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch

from visiontasks.kinds import META_KEYS


def collate(
    samples: list[dict[str, Any] | None] | dict[str, Any], list_keys: Collection[str] = META_KEYS
) -> dict[str, Any]:
    """Batch dict from sample dicts; ``None`` samples (skipped in training) are dropped.

    ``list_keys`` (a kind's ``list_keys``: per-object targets and meta keys) stay lists even
    when their shapes happen to agree; any other key is stacked when its tensors share a shape.
    A batch dict already built (a dataset's ``__getitems__`` made it with this function) is returned as it is.
    """
    if isinstance(samples, dict):
        return samples
    samples = [s for s in samples if s is not None]
    if not samples:
        return {}
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        same_shape = all(isinstance(v, torch.Tensor) and v.shape == values[0].shape for v in values)
        batch[key] = torch.stack(values) if same_shape and key not in list_keys else values
    return batch


def original_targets(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with its targets in the files' own pixels (lists, one entry per image) when it carries
    them (evaluation with a resize), else the batch as it is; predictions must be at the same size."""
    originals = batch.get("original")
    if not originals:
        return batch
    return batch | {key: [original[key] for original in originals] for key in originals[0]}
