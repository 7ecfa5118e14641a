"""The ground truth of one image of a batch, in the network input's pixels, as the pictures draw it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor


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


def truth_of(batch: dict[str, Any], i: int) -> Truth | None:
    """The ground truth of image ``i``, from whichever of the batch's target keys its kind has."""
    if "boxes" in batch:
        masks = _array(batch["masks"][i]) if "masks" in batch else None
        return Truth(_array(batch["labels"][i]).astype(int).tolist(), _array(batch["boxes"][i]).reshape(-1, 4), masks)
    if "mask" in batch:
        mask = _array(batch["mask"][i])
        return Truth(sorted(int(k) for k in np.unique(mask) if k != 255), mask=mask)
    if "label" not in batch:
        return None
    label = _array(batch["label"][i])
    labels = np.flatnonzero(label > 0.5).tolist() if label.ndim else [int(label)]  # multi-hot, else one index
    boxes = _array(batch["box"][i]).reshape(1, 4) if "box" in batch else None
    return Truth(labels, boxes)
