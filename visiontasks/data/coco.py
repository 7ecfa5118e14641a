"""COCO JSON data (what labelling tools export): detection, instance segmentation or one-object localization."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.coco_json import CocoImage, categories, coco_images, read_coco
from visiontasks.data.formats import rle_decode
from visiontasks.data.images import read_image
from visiontasks.errors import DataError
from visiontasks.kinds import Kind

log = logging.getLogger(__name__)

CocoTask = Literal["detection", "instance_segmentation", "localization"]


class CocoSource(Sequence):
    """Samples of one COCO file, read on demand: image, boxes, labels, crowd flags (and masks)."""

    def __init__(self, records: Sequence[CocoImage], kind: Kind, channels: int) -> None:
        self.records, self.kind, self.channels = list(records), kind, channels
        if kind.single_object:
            self.labels = [int(r.labels[0]) for r in self.records]  # lets the base stratify the splits

    def __len__(self) -> int:
        return len(self.records)

    @property
    def paths(self) -> list[Path]:
        return [record.path for record in self.records]

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.records[i]
        image = read_image(record.path, self.channels)
        if image.shape[:2] != (record.height, record.width):
            raise DataError(f"{record.path}: the image changed size since set-up; re-run.")
        sample: dict[str, Any] = {"image": image, "path": str(record.path), "image_id": record.image_id}
        masks = None
        if self.kind.instance_masks:
            found = [rle_decode(s, record.height, record.width) for s in record.segmentations]
            masks = np.stack(found) if found else np.zeros((0, record.height, record.width), np.uint8)
        if self.kind.per_object:
            sample["iscrowd"] = record.iscrowd  # crowd regions: not trained on, ignored by the mAP
        return sample | self.kind.targets(record.labels, record.boxes, masks)


class CocoDataModule(VisionDataModule):
    """Images plus COCO JSON annotations, one file per split or one file split by the seed.

    Labels are contiguous (0 .. num_classes - 1, in category-id order) and map back to the
    file's category ids through ``category_ids``, which predictions and results JSONs use.
    Crowd annotations (``iscrowd: 1``) are not trained on and are ignored regions in the mAP,
    as COCO does. Boxes sticking out of their image are clipped, empty ones dropped (logged).

    Args:
        train_json: the training annotations (or the only file: it is then split by the seed).
        images: folder the training ``file_name`` entries are relative to (default: the JSON's folder).
        val_json: optional validation annotations.
        val_images: their image folder (default: ``images``).
        test_json: optional test annotations.
        test_images: their image folder (default: ``images``).
        task: ``detection`` (boxes), ``instance_segmentation`` (boxes + masks from polygons or
            RLE) or ``localization`` (one label and box per image).
        keep_empty_images: images without annotations stay in, as negatives.
        several_objects: for localization, images with several boxes are an ``error`` (naming
            them), or keep their ``largest`` box.
        **kwargs: the shared options of :class:`VisionDataModule` (batch size, transforms, splits...).
    """

    def __init__(
        self,
        train_json: str,
        images: str | None = None,
        val_json: str | None = None,
        val_images: str | None = None,
        test_json: str | None = None,
        test_images: str | None = None,
        task: CocoTask = "detection",
        keep_empty_images: bool = True,
        several_objects: Literal["error", "largest"] = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.keep_empty_images = keep_empty_images
        self.several_objects = several_objects
        files = {"train": (train_json, images), "val": (val_json, val_images), "test": (test_json, test_images)}
        self.files = {
            split: (Path(json_file), Path(folder or images or Path(json_file).parent))
            for split, (json_file, folder) in files.items()
            if json_file is not None
        }
        self.cocos = {split: read_coco(json_file) for split, (json_file, _) in self.files.items()}
        train_categories = categories(self.cocos["train"])
        if not train_categories:
            raise DataError(f"{train_json}: the file lists no categories.")
        for split, coco in self.cocos.items():
            unknown = sorted(set(categories(coco)) - set(train_categories))
            if unknown:
                raise DataError(
                    f"{self.files[split][0]}: categories {unknown} (id, name) differ from {train_json}'s "
                    f"{train_categories}; every split needs the training file's categories."
                )
        self.category_ids = [category_id for category_id, _ in train_categories]
        self.class_names = [name for _, name in train_categories]

    @property
    def label_of_category(self) -> dict[int, int]:
        """COCO category id -> contiguous label (the inverse of ``category_ids``)."""
        return {category_id: label for label, category_id in enumerate(self.category_ids)}

    def _records(self, split: str) -> list[CocoImage]:
        json_file, folder = self.files[split]
        records = coco_images(
            self.cocos[split], json_file, folder, self.label_of_category, self.kind.instance_masks is not None
        )
        if self.kind.single_object:
            return self._single_objects(records, json_file)
        if not self.keep_empty_images:
            empty = sum(len(r.labels) == 0 for r in records)
            records = [r for r in records if len(r.labels)]
            log.info("%s: %d images without annotations left out (keep_empty_images: false).", json_file, empty)
        return records

    def _single_objects(self, records: list[CocoImage], json_file: Path) -> list[CocoImage]:
        """One box per image: crowd regions are no object; images with none are left out (logged)."""
        for record in records:
            record.keep(record.iscrowd == 0)
        several = [r for r in records if len(r.labels) > 1]
        if several and self.several_objects == "error":
            names = ", ".join(r.path.name for r in several[:5])
            raise DataError(
                f"{json_file}: {len(several)} images have several boxes ({names}{', ...' if len(several) > 5 else ''}); "
                "localization needs one object per image. Set several_objects: largest to keep the largest box, "
                "or use task: detection."
            )
        for record in several:
            areas = (record.boxes[:, 2] - record.boxes[:, 0]) * (record.boxes[:, 3] - record.boxes[:, 1])
            record.keep([int(areas.argmax())])
        kept = [r for r in records if len(r.labels) == 1]
        if len(kept) < len(records):
            log.warning("%s: %d images without a box left out of localization.", json_file, len(records) - len(kept))
        return kept

    def make_sources(self) -> dict[str, Source]:
        sources = {split: CocoSource(self._records(split), self.kind, self.in_channels) for split in self.files}
        return sources if len(sources) > 1 else {"all": sources["train"]}
