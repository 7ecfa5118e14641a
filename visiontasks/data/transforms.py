"""Albumentations pipelines built from YAML, applied jointly to an image and its targets.

A pipeline is the user's list of transforms followed by the module's resize. Boxes travel as
``pascal_voc`` (pixel xyxy) with their labels and an index, so an instance mask is dropped with
its box; the semantic mask follows spatial transforms with nearest-neighbour resampling.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import albumentations as A
import numpy as np
import torch

from visiontasks.errors import DataError

TransformSpec = Any
"""A transform object, a class name (``"HorizontalFlip"``) or ``{class_path, init_args}``."""


def _resolve_transform(spec: TransformSpec) -> A.BasicTransform:
    if isinstance(spec, (A.BasicTransform, A.BaseCompose)):
        return spec
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise DataError(
            f"Cannot build a transform from {spec!r}: give {{class_path: HorizontalFlip, init_args: {{p: 0.5}}}}"
        )
    path = spec["class_path"]
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name or "albumentations"), class_name)
    except (ImportError, AttributeError) as error:
        raise DataError(f"Unknown transform {path!r}: not found in {module_name or 'albumentations'}") from error
    args = dict(spec.get("init_args") or {})
    if "transforms" in args:  # OneOf / SomeOf / Sequential hold transforms of their own
        args["transforms"] = [_resolve_transform(t) for t in args["transforms"]]
    try:
        with warnings.catch_warnings():  # albumentations only warns about unknown arguments, then ignores them
            warnings.filterwarnings("error", message=".*are not valid for transform")
            return cls(**args)
    except (TypeError, ValueError, UserWarning) as error:  # pydantic's ValidationError is a ValueError
        reason = " ".join(str(error).split())
        raise DataError(f"Transform {path!r} with init_args {args}: {reason}") from error


def as_size(image_size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``64`` or ``[h, w]`` as ``(h, w)``."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def build_pipeline(
    transforms: list[TransformSpec] | None,
    image_size: tuple[int, int] | None,
    with_boxes: bool,
    min_visibility: float = 0.0,
) -> A.Compose:
    steps = [_resolve_transform(t) for t in transforms or []]
    if image_size is not None:
        steps.append(A.Resize(*image_size))
    bbox_params = (
        A.BboxParams(
            format="pascal_voc",
            label_fields=["labels", "box_index"],
            min_visibility=min_visibility,
            clip=True,
            min_width=1,
            min_height=1,
        )
        if with_boxes
        else None
    )
    # albumentations keeps its own random generator: seed it from torch so that `seed_everything`
    # makes the augmentation repeatable too (data loader workers reseed it, see `seed_augmentation`).
    return A.Compose(steps, bbox_params=bbox_params, seed=torch.initial_seed() % 2**32)


def seed_augmentation(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own augmentation stream (torch seeds it per worker)."""
    dataset = torch.utils.data.get_worker_info().dataset
    pipeline = getattr(dataset, "pipeline", None)
    if isinstance(pipeline, A.BaseCompose):
        pipeline.set_random_seed(torch.initial_seed() % 2**32)


def apply_pipeline(pipeline: A.Compose, sample: dict[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` over the image and whichever targets the sample has.

    A single-object ``box`` (localization) comes back as ``None`` when the transform moved it out
    of view, so the caller can decide whether that is an error or a skipped sample.
    """
    inputs: dict[str, Any] = {"image": sample["image"]}
    if "mask" in sample:
        inputs["mask"] = sample["mask"]
    if "box" in sample:
        boxes, labels = sample["box"][None], np.asarray([sample["label"]])
    else:
        boxes, labels = sample.get("boxes"), sample.get("labels")
    if boxes is not None:
        inputs["bboxes"] = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        inputs["labels"] = np.asarray(labels, dtype=np.int64)
        inputs["box_index"] = np.arange(len(inputs["bboxes"]))
    if "masks" in sample and len(sample["masks"]):
        inputs["masks"] = sample["masks"]
    out = pipeline(**inputs)

    result = dict(sample, image=out["image"])
    if "mask" in sample:
        result["mask"] = out["mask"]
    if boxes is not None:
        kept = np.asarray(out["box_index"], dtype=np.int64)
        out_boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        if "box" in sample:
            result["box"] = out_boxes[0] if len(out_boxes) else None
        else:
            result["boxes"] = out_boxes
            result["labels"] = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
            if "iscrowd" in sample:  # COCO crowd flags stay with their boxes
                result["iscrowd"] = np.asarray(sample["iscrowd"], dtype=np.int64).reshape(-1)[kept]
    if "masks" in sample:
        height, width = out["image"].shape[:2]
        masks = np.asarray(out["masks"]) if len(sample["masks"]) else np.zeros((0, height, width), np.uint8)
        result["masks"] = masks[kept] if len(masks) else masks.reshape(0, height, width)
    return result


def to_tensors(sample: dict[str, Any]) -> dict[str, Any]:
    """Numpy sample to the batch convention: float CxHxW image in [0, 1], long labels and masks."""
    image = sample["image"]
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    out: dict[str, Any] = dict(sample)
    out["image"] = torch.tensor(image.transpose(2, 0, 1), dtype=torch.float32).div_(scale)
    if "label" in sample:
        label = np.asarray(sample["label"])
        out["label"] = torch.as_tensor(label, dtype=torch.float32 if label.ndim else torch.long)
    if sample.get("box") is not None:
        out["box"] = torch.as_tensor(sample["box"], dtype=torch.float32)
    if "boxes" in sample:
        out["boxes"] = torch.as_tensor(sample["boxes"], dtype=torch.float32).reshape(-1, 4)
        out["labels"] = torch.as_tensor(sample["labels"], dtype=torch.long)
    if "masks" in sample:
        out["masks"] = torch.as_tensor(np.ascontiguousarray(sample["masks"]), dtype=torch.uint8)
    if "iscrowd" in sample:
        out["iscrowd"] = torch.as_tensor(sample["iscrowd"], dtype=torch.long)
    if "mask" in sample:
        out["mask"] = torch.as_tensor(np.ascontiguousarray(sample["mask"]), dtype=torch.long)
    return out
