"""Image files with one label each (and optionally one box): the source behind folders and CSVs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from visiontasks.data.cache import should_cache
from visiontasks.data.images import check_images, read_image
from visiontasks.errors import DataError


class LabelledFiles(Sequence):
    """Samples ``{image, label[, box], path}`` read from disk on demand.

    ``labels`` holds a class index per image, or a multi-hot row per image for multi-label data; ``groups``
    (optional) the group of each image (a patient, a scan, a video), which cross-validation keeps in one fold.
    """

    def __init__(
        self, paths: Sequence[Path], labels: Sequence[int] | np.ndarray, channels: int, boxes: np.ndarray | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self.paths, self.labels, self.channels, self.boxes = list(paths), list(labels), channels, boxes
        self.groups = None if groups is None else list(groups)
        self.decoded: list[np.ndarray] | None = None
        """The images :meth:`check` decoded and kept for a cache to take over (``None``: read from disk)."""

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "image": self.decoded[i] if self.decoded is not None else read_image(self.paths[i], self.channels),
            "label": self.labels[i],
            "path": str(self.paths[i]),
            "image_id": i,
        }
        if self.boxes is not None:
            sample["box"] = self.boxes[i]
        return sample

    def check(self, where: Sequence[str] | None = None, keep: bool | str = False) -> LabelledFiles:
        """Decode every image and test every box against its image; ``where`` names rows in errors.

        ``keep``: hold the decoded images (in :attr:`decoded`) for the in-memory cache made next, which then
        decodes nothing again; ``auto``: only when they fit (as ``cache_images: auto`` decides)."""
        if keep == "auto":
            keep = should_cache(self, "auto")
        if keep:
            with ThreadPoolExecutor(max_workers=8) as pool:  # PIL decodes without the GIL
                self.decoded = list(pool.map(functools.partial(read_image, channels=self.channels), self.paths))
            sizes = [image.shape[:2] for image in self.decoded]
        else:
            sizes = check_images(self.paths)
        if self.boxes is not None:
            for i, ((height, width), box) in enumerate(zip(sizes, self.boxes)):
                x_min, y_min, x_max, y_max = box
                origin = where[i] if where else str(self.paths[i])
                if not (np.isfinite(box).all() and x_max > x_min and y_max > y_min):
                    raise DataError(f"{origin}: box {box.tolist()} is empty or inverted; need x_min < x_max and y_min < y_max.")
                if x_min < 0 or y_min < 0 or x_max > width or y_max > height:
                    raise DataError(
                        f"{origin}: box {box.tolist()} lies outside the {width}x{height} image {self.paths[i]}; "
                        "boxes are pixel xyxy within the image."
                    )
        return self
