"""One schema per task kind: which targets a sample carries and how the data pipeline treats them.

Data modules name their kind by a string (``ShapesDataModule(task="detection")``); everything
that handles samples (augmentation, tensors, collation, sources, exporters, the task check at
set-up) reads the :class:`Kind` of that name instead of testing the string. A new kind is one
entry in :data:`KINDS` and the task that consumes it (the task names its kinds: ``BaseTask.kinds``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from visiontasks.errors import DataError

META_KEYS = ("path", "image_id", "orig_size", "original")
"""Per-sample facts, always batched as lists: for outputs (file, COCO id, size before resizing) and, in
evaluation, ``original``: the targets in the file's own pixels, which the metrics score predictions against."""


@dataclass(frozen=True)
class Kind:
    """What a sample of one task kind carries besides its ``image`` (HxWxC), and how it travels.

    Args:
        name: the kind's public name (``task:`` of the data modules in YAML).
        label: key of the class target: one per image, or one per object with ``per_object``.
        multi_hot: the label is a float multi-hot vector over the classes (several labels per image).
        box: key of the box target (pixel xyxy), paired with ``label``; albumentations moves it
            with the image and drops it when it leaves the view.
        mask: key of the per-pixel class mask (HxW, 255 = ignore), resampled nearest-neighbour.
        instance_masks: key of the per-object masks (NxHxW 0/1), kept or dropped with their box.
        per_object: targets are lists over a variable number of objects (collated as lists);
            otherwise there is exactly one of each per image.
        object_fields: further per-object arrays, optional in a sample, kept with their box (COCO ``iscrowd``).
    """

    name: str
    label: str | None = None
    multi_hot: bool = False
    box: str | None = None
    mask: str | None = None
    instance_masks: str | None = None
    per_object: bool = False
    object_fields: tuple[str, ...] = ()

    @property
    def single_object(self) -> bool:
        """Each image holds exactly one labelled object (classification, localization)."""
        return self.label is not None and not self.per_object and not self.multi_hot

    @property
    def dtypes(self) -> dict[str, torch.dtype]:
        """Tensor type of each target key: class indices long (multi-hot float), boxes float, masks by use."""
        types: dict[str, torch.dtype] = {}
        if self.label:
            types[self.label] = torch.float32 if self.multi_hot else torch.long
        if self.box:
            types[self.box] = torch.float32
        if self.mask:
            types[self.mask] = torch.long
        if self.instance_masks:
            types[self.instance_masks] = torch.uint8
        types.update(dict.fromkeys(self.object_fields, torch.long))
        return types

    @property
    def list_keys(self) -> frozenset[str]:
        """Batch keys kept as lists: the per-object targets (their lengths differ) and the meta keys."""
        objects = [key for key in (self.label, self.box, self.instance_masks) if key] if self.per_object else []
        return frozenset((*objects, *self.object_fields, *META_KEYS))

    @property
    def scored_in_original_pixels(self) -> bool:
        """Evaluation scores this kind's predictions against the targets in the file's pixels: masks, and
        object boxes (a resize can drop a small one). One box per image needs no copy: IoU does not change
        when both boxes are resized alike."""
        return self.mask is not None or self.per_object

    def targets(
        self,
        labels: np.ndarray,
        boxes: np.ndarray,
        masks: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        num_classes: int = 0,
    ) -> dict[str, Any]:
        """This kind's targets from an image's objects (labels N, boxes Nx4, instance masks NxHxW)
        and its class mask (HxW): all objects, the first one, or a multi-hot of their labels."""
        out: dict[str, Any] = {}
        first = slice(None) if self.per_object else 0
        if self.label:
            if self.multi_hot:
                out[self.label] = np.bincount(labels, minlength=num_classes).clip(max=1).astype(np.float32)
            else:
                out[self.label] = labels[first] if self.per_object else int(labels[0])
        if self.box:
            out[self.box] = boxes[first]
        if self.instance_masks:
            out[self.instance_masks] = masks
        if self.mask:
            out[self.mask] = mask
        return out

    def class_counts(self, sample: dict[str, Any], num_classes: int) -> np.ndarray:
        """How much of each class a sample's targets hold: its pixels for a mask, else its objects (one for a
        single label, one per listed class for multi-hot labels); 255 (ignore) and out-of-range values left out."""
        if self.mask:
            values = np.asarray(sample[self.mask]).ravel()
        elif self.multi_hot:
            return (np.asarray(sample[self.label]) > 0).astype(np.int64)[:num_classes]
        elif self.label:
            values = np.atleast_1d(np.asarray(sample[self.label])).ravel()
        else:
            return np.zeros(num_classes, np.int64)
        values = values[(values >= 0) & (values < num_classes)].astype(np.int64)
        return np.bincount(values, minlength=num_classes)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("classification", label="label"),
        Kind("multilabel", label="label", multi_hot=True),
        Kind("localization", label="label", box="box"),
        Kind("detection", label="labels", box="boxes", per_object=True, object_fields=("iscrowd",)),
        Kind(
            "instance_segmentation", label="labels", box="boxes", instance_masks="masks",
            per_object=True, object_fields=("iscrowd",),
        ),
        Kind("segmentation", mask="mask"),
    )
}

IMAGES_ONLY = Kind("images")
"""Samples without targets (a folder of images to predict on)."""


def kind_of(name: str) -> Kind:
    """The kind called ``name``; an unknown name is an error listing the close matches."""
    try:
        return KINDS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), KINDS, n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise DataError(f"unknown task kind {name!r}: {hint}choose from {', '.join(KINDS)}.") from None
