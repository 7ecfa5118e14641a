"""Writing a data module's splits to disk in the real formats, as examples to copy.

Each task gets the layout its real-data module reads: class folders + CSV for classification,
CSV with box columns for localization, images + COCO JSON for detection and instance
segmentation, images + index-PNG masks for segmentation.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from visiontasks.data.base import VisionDataModule

BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")


def save_image(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def split_samples(datamodule: VisionDataModule) -> Iterator[tuple[str, Iterator[tuple[int, dict[str, Any]]]]]:
    """(split name, (index, raw sample) pairs) for train, val and test, untransformed."""
    for split, (source, indices) in datamodule.split_sources().items():
        yield split, ((int(i), source[int(i)]) for i in indices)


def _export_labelled(datamodule: VisionDataModule, root: Path) -> None:
    """Class folders ``root/<split>/<class>/`` plus ``root/<split>.csv`` naming the same files."""
    with_box = datamodule.task == "localization"
    for split, samples in split_samples(datamodule):
        rows = []
        for i, sample in samples:
            name = datamodule.class_names[sample["label"]]
            relative = Path(split) / name / f"{i:06d}.png"
            save_image(sample["image"], root / relative)
            row = {"image": relative.as_posix(), "label": name}
            if with_box:
                row.update(zip(BOX_COLUMNS, (int(round(v)) for v in sample["box"])))
            rows.append(row)
        with open(root / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "label", *(BOX_COLUMNS if with_box else ())])
            writer.writeheader()
            writer.writerows(rows)


EXPORTERS: dict[str, Callable[[VisionDataModule, Path], None]] = {
    "classification": _export_labelled,
    "localization": _export_labelled,
}


def export_splits(datamodule: VisionDataModule, root: Path) -> Path:
    try:
        exporter = EXPORTERS[datamodule.task]
    except KeyError:
        raise ValueError(f"no on-disk format for task {datamodule.task!r}; known: {sorted(EXPORTERS)}") from None
    root.mkdir(parents=True, exist_ok=True)
    exporter(datamodule, root)
    return root
