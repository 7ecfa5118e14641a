"""Writing a data module's splits to disk in the real formats, as examples to copy.

Each kind gets the layout its real-data module reads, chosen by what its samples carry: class
folders + CSV for one object per image (box columns when it has a box), images + COCO JSON for
objects with boxes (and instance masks), images + index-PNG masks for per-pixel classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from visiontasks.data.formats import (
    BOX_COLUMNS,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    rle_area,
    rle_encode,
    write_csv,
    xyxy_to_xywh,
)
from visiontasks.kinds import Kind

if TYPE_CHECKING:
    from visiontasks.data.datamodule import VisionDataModule


def save_image(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def split_samples(datamodule: VisionDataModule) -> Iterator[tuple[str, Iterator[tuple[int, dict[str, Any]]]]]:
    """(split name, (index, raw sample) pairs) for train, val and test, untransformed."""
    for split, (source, indices) in datamodule.split_sources().items():
        yield split, ((int(i), source[int(i)]) for i in indices)


def _export_labelled(datamodule: VisionDataModule, root: Path) -> None:
    """Class folders ``root/<split>/<class>/`` plus ``root/<split>.csv`` naming the same files."""
    kind = datamodule.kind
    with_box = kind.box is not None
    for split, samples in split_samples(datamodule):
        rows = []
        for i, sample in samples:
            name = datamodule.class_names[sample[kind.label]]
            relative = Path(split) / name / f"{i:06d}.png"
            save_image(sample["image"], root / relative)
            row = {IMAGE_COLUMN: relative.as_posix(), LABEL_COLUMN: name}
            if with_box:
                row.update(zip(BOX_COLUMNS, (int(round(v)) for v in sample[kind.box])))
            rows.append(row)
        write_csv(root / f"{split}.csv", rows)


def _export_masks(datamodule: VisionDataModule, root: Path) -> None:
    """``root/images/<split>/<i>.png`` with index-PNG masks (pixel = class number) at ``root/masks/<split>/<i>.png``."""
    key = datamodule.kind.mask
    for split, samples in split_samples(datamodule):
        for i, sample in samples:
            save_image(sample["image"], root / "images" / split / f"{i:06d}.png")
            save_image(sample[key][..., None], root / "masks" / split / f"{i:06d}.png")


def _export_coco(datamodule: VisionDataModule, root: Path) -> None:
    """``root/images/<split>/<i>.png`` plus ``root/<split>.json`` in COCO format (category ids from 1;
    instance masks as compressed RLE, exact to the pixel); ``file_name`` is relative to ``root``."""
    kind = datamodule.kind
    categories = [{"id": n + 1, "name": name} for n, name in enumerate(datamodule.class_names)]
    for split, samples in split_samples(datamodule):
        images, annotations = [], []
        for i, sample in samples:
            relative = Path("images") / split / f"{i:06d}.png"
            save_image(sample["image"], root / relative)
            height, width = sample["image"].shape[:2]
            images.append({"id": i, "file_name": relative.as_posix(), "height": height, "width": width})
            masks = sample[kind.instance_masks] if kind.instance_masks else None
            for k, (box, label) in enumerate(zip(sample[kind.box], sample[kind.label])):
                x_min, y_min, x_max, y_max = (float(v) for v in box)
                annotation = {"id": len(annotations) + 1, "image_id": i, "category_id": int(label) + 1,
                              "bbox": xyxy_to_xywh([x_min, y_min, x_max, y_max]),
                              "area": (x_max - x_min) * (y_max - y_min), "iscrowd": 0}  # fmt: skip
                if masks is not None:
                    rle = rle_encode(masks[k])
                    annotation["area"] = rle_area(rle)
                    annotation["segmentation"] = rle
                annotations.append(annotation)
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (root / f"{split}.json").write_text(json.dumps(coco))


def exporter_for(kind: Kind) -> Callable[[VisionDataModule, Path], None]:
    """The on-disk format that holds what ``kind``'s samples carry."""
    if kind.mask:
        return _export_masks
    if kind.per_object and kind.box:
        return _export_coco
    if kind.single_object:
        return _export_labelled
    raise ValueError(f"no on-disk format for task {kind.name!r} yet (several labels per image)")


def export_splits(datamodule: VisionDataModule, root: Path) -> Path:
    exporter = exporter_for(datamodule.kind)
    root.mkdir(parents=True, exist_ok=True)
    exporter(datamodule, root)
    return root
