"""The ground truth of one image of a batch, in the network input's pixels, as the pictures draw it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from visiontasks.kinds import Kind


@dataclass
class Truth:
    """What the data says about one image: ``labels`` (class indices), ``boxes`` (Nx4 xyxy), ``masks``
    (NxHxW instance masks) or ``mask`` (HxW class indices, 255 = ignore); each only where the task has it."""

    labels: list[int]
    boxes: np.ndarray | None = None
    masks: np.ndarray | None = None
    mask: np.ndarray | None = None

    def caption(self, names: list[str]) -> str:
        return "true: " + (", ".join(names[k] for k in self.labels) or "(none)")


def _array(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)


def truth_of(batch: dict[str, Any], i: int, kind: Kind) -> Truth | None:
    """The ground truth of image ``i``, from the target keys of the batch's ``kind`` (``None`` without targets)."""

    def has(key: str | None) -> bool:
        return key is not None and key in batch

    if kind.per_object and has(kind.box):
        masks = _array(batch[kind.instance_masks][i]) if has(kind.instance_masks) else None
        return Truth(_array(batch[kind.label][i]).astype(int).tolist(), _array(batch[kind.box][i]).reshape(-1, 4), masks)
    if has(kind.mask):
        mask = _array(batch[kind.mask][i])
        return Truth(sorted(int(k) for k in np.unique(mask) if k != 255), mask=mask)
    if not has(kind.label):
        return None
    label = _array(batch[kind.label][i])
    labels = np.flatnonzero(label > 0.5).tolist() if label.ndim else [int(label)]  # multi-hot, else one index
    boxes = _array(batch[kind.box][i]).reshape(1, 4) if has(kind.box) else None
    return Truth(labels, boxes)
