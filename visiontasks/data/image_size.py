"""``image_size: auto``: the network input size follows the user's files instead of a size tuned elsewhere.

Files that all share one size are fed as they are (no resize, metrics at full resolution); files of
several sizes are resized to their median size, rounded to a multiple of the models' stride, and the
log says so. Reading a file's size opens only its header.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

STRIDE = 32
"""Sizes are rounded to this multiple: the largest down-sampling of the ResNets, U-Nets and detector FPNs."""

MAX_FILES = 512
"""Files looked at, evenly spread over the set: enough for a median, cheap for a large set."""


def file_sizes(source: Sequence, indices: Sequence[int]) -> list[tuple[int, int]]:
    """(height, width) of up to :data:`MAX_FILES` samples: from the file headers when the source knows its
    files, else from the decoded samples (generated data)."""
    picked = np.asarray(indices)[np.linspace(0, len(indices) - 1, min(len(indices), MAX_FILES)).astype(int)]
    paths = getattr(source, "paths", None)
    if paths is not None:
        sizes = []
        for i in picked:
            with Image.open(Path(paths[i])) as image:
                sizes.append((image.height, image.width))
        return sizes
    return [tuple(source[int(i)]["image"].shape[:2]) for i in picked]


def median_size(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The median (height, width) of the files: the size the network mostly sees when nothing is resized."""
    height, width = np.median(np.asarray(sizes), axis=0)
    return int(round(height)), int(round(width))


def auto_image_size(sizes: Sequence[tuple[int, int]], stride: int = STRIDE) -> tuple[int, int] | None:
    """``None`` (keep the files' size) when they all share one, else their median rounded to ``stride``."""
    unique = sorted(set(sizes))
    if len(unique) == 1:
        log.info("image_size auto: every training image is %dx%d (HxW); no resize.", *unique[0])
        return None
    size = tuple(int(max(stride, round(v / stride) * stride)) for v in np.median(np.asarray(sizes), axis=0))
    log.info(
        "image_size auto: training images range from %dx%d to %dx%d (HxW); resizing to %dx%d, their median size "
        "rounded to a multiple of %d. Set data.init_args.image_size to choose another size.",
        *min(unique), *max(unique), *size, stride,
    )
    return size  # type: ignore[return-value]
