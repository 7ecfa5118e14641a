"""Test-time augmentation: predict on flipped and rescaled copies of the images too, and average.

Each view is a transform that cannot change the label (the user chooses which: a mirrored digit may be
another digit, a mirrored cell is the same cell). Class probabilities (softmax, or sigmoid for multi-label)
are averaged over the original and every view; for per-pixel outputs each view's probabilities are first
mapped back onto the original pixels (flipped back, resized back). The average is returned as
log-probabilities (logits for multi-label), so everything downstream of a model's logits takes it as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from visiontasks.errors import DataError

TTAName = Literal["hflip", "vflip", "scale_up", "scale_down"]
VIEWS: dict[str, tuple[tuple[int, ...], float]] = {  # name: (flipped dims from the end, scale)
    "hflip": ((-1,), 1.0),
    "vflip": ((-2,), 1.0),
    "scale_up": ((), 1.25),
    "scale_down": ((), 0.8),
}
DEFAULT = ("hflip",)


def tta_views(option: bool | Sequence[str] | None) -> tuple[str, ...]:
    """The views a ``tta`` option names: ``true`` the horizontal flip, a list those named, ``false`` none."""
    if option is True:
        return DEFAULT
    if not option:
        return ()
    unknown = [name for name in option if name not in VIEWS]
    if unknown:
        raise DataError(f"tta: unknown view {unknown[0]!r}; choose from {', '.join(VIEWS)} (or tta: true for hflip).")
    return tuple(option)


def _scaled_size(size: Sequence[int], scale: float, multiple: int) -> tuple[int, int]:
    return tuple(max(multiple, round(s * scale / multiple) * multiple) for s in size)  # type: ignore[return-value]


def averaged(
    forward: Callable[[Tensor], Tensor], images: Tensor, views: Sequence[str], per_pixel: bool, multilabel: bool = False
) -> Tensor:
    """``forward``'s class scores of ``images`` averaged with those of each view, as log-probabilities (logits for
    ``multilabel``). ``per_pixel``: the scores are maps (B x C x H x W), mapped back to the input's pixels; rescaled
    inputs are then kept a multiple of 32 pixels (what encoder-decoder networks divide by)."""

    def probabilities(scores: Tensor) -> Tensor:
        return scores.float().sigmoid() if multilabel else scores.float().softmax(dim=1)

    total = probabilities(forward(images))
    size = tuple(images.shape[-2:])
    for name in views:
        dims, scale = VIEWS[name]
        view = images.flip(dims) if dims else images
        if scale != 1.0:
            scaled = _scaled_size(size, scale, 32 if per_pixel else 1)
            view = F.interpolate(view, size=scaled, mode="bilinear", align_corners=False)
        probs = probabilities(forward(view))
        if per_pixel:
            if probs.shape[-2:] != size:
                probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
            probs = probs.flip(dims) if dims else probs
        total = total + probs
    mean = (total / (len(views) + 1)).clamp(1e-7, 1 - 1e-7 if multilabel else 1.0)
    return torch.logit(mean) if multilabel else mean.log()
