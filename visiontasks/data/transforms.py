"""Albumentations pipelines built from YAML, applied jointly to an image and its targets.

A pipeline is the user's list of transforms followed by the module's resize. Boxes travel as
``pascal_voc`` (pixel xyxy) with their labels and an index, so an instance mask is dropped with
its box; the semantic mask follows spatial transforms with nearest-neighbour resampling.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from visiontasks.errors import DataError
from visiontasks.kinds import Kind

if TYPE_CHECKING:  # albumentations (with OpenCV and pydantic) is imported when a pipeline is built: start-up time
    import albumentations as A

TransformSpec = Any
"""A transform object, a class name (``"HorizontalFlip"``) or ``{class_path, init_args}``."""


def _resolve_transform(spec: TransformSpec) -> A.BasicTransform:
    import albumentations as A

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
    kind: Kind,
    min_visibility: float = 0.0,
) -> A.Compose:
    """The user's transforms, then the resize; boxes are tracked when the ``kind`` has them."""
    import albumentations as A

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
        if kind.box
        else None
    )
    # albumentations keeps its own random generator: seed it from torch so that `seed_everything`
    # makes the augmentation repeatable too (data loader workers reseed it, see `seed_augmentation`).
    with warnings.catch_warnings():  # a pipeline without a spatial step has nothing to do to the boxes: fine
        warnings.filterwarnings("ignore", message="Got processor for bboxes, but no transform to process it")
        return A.Compose(steps, bbox_params=bbox_params, seed=torch.initial_seed() % 2**32)


FIXED_TRANSFORMS = ("Resize", "CenterCrop", "Crop", "Normalize", "ToFloat", "FromFloat", "PadIfNeeded", "LongestMaxSize",
                    "SmallestMaxSize")  # fmt: skip
"""Albumentations transforms whose output depends on their input only (with ``p: 1`` and the options below)."""


def is_deterministic(pipeline: A.Compose) -> bool:
    """Every step of ``pipeline`` always runs and draws no random numbers, so a sample comes out the same every epoch
    (the resize alone, or fixed crops, pads and normalisation; anything else, or a nested group, counts as random)."""
    if getattr(pipeline, "p", 1.0) < 1:
        return False
    for step in pipeline.transforms:
        name = type(step).__name__
        if name not in FIXED_TRANSFORMS or getattr(step, "p", 0.0) < 1:
            return False
        if name == "PadIfNeeded" and getattr(step, "position", "center") == "random":
            return False
        if name in ("LongestMaxSize", "SmallestMaxSize") and not isinstance(getattr(step, "max_size", None), (int, type(None))):
            return False  # a list of sizes: one drawn at random per call
    return True


def pipeline_to_dict(pipeline: A.Compose) -> dict[str, Any]:
    """A pipeline as albumentations' serialised form (kept in checkpoints)."""
    import albumentations as A

    return A.to_dict(pipeline)


def pipeline_from_dict(serialised: dict[str, Any]) -> A.Compose:
    """The pipeline :func:`pipeline_to_dict` wrote."""
    import albumentations as A

    with warnings.catch_warnings():  # as in build_pipeline
        warnings.filterwarnings("ignore", message="Got processor for bboxes, but no transform to process it")
        return A.from_dict(serialised)


def seed_augmentation(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own augmentation stream (torch seeds it per worker)."""
    import albumentations as A

    dataset = torch.utils.data.get_worker_info().dataset
    pipeline = getattr(dataset, "pipeline", None)
    if isinstance(pipeline, A.BaseCompose):
        pipeline.set_random_seed(torch.initial_seed() % 2**32)


def apply_pipeline(pipeline: A.Compose, sample: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """Run ``pipeline`` over the image and the targets ``kind`` says the sample has.

    A single-object box (localization) comes back as ``None`` when the transform moved it out
    of view, so the caller can decide whether that is an error or a skipped sample.
    """
    inputs: dict[str, Any] = {"image": sample["image"]}
    if kind.mask:
        inputs["mask"] = sample[kind.mask]
    if kind.box:
        inputs["bboxes"] = np.asarray(sample[kind.box], dtype=np.float32).reshape(-1, 4)
        inputs["labels"] = np.asarray(sample[kind.label], dtype=np.int64).reshape(-1)
        inputs["box_index"] = np.arange(len(inputs["bboxes"]))
    if kind.instance_masks and len(sample[kind.instance_masks]):
        inputs["masks"] = sample[kind.instance_masks]
    out = pipeline(**inputs)

    result = dict(sample, image=out["image"])
    if kind.mask:
        result[kind.mask] = out["mask"]
    if kind.box:
        kept = np.asarray(out["box_index"], dtype=np.int64)
        out_boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        if not kind.per_object:
            result[kind.box] = out_boxes[0] if len(out_boxes) else None
        else:
            result[kind.box] = out_boxes
            result[kind.label] = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
            for key in kind.object_fields:  # e.g. COCO crowd flags stay with their boxes
                if key in sample:
                    result[key] = np.asarray(sample[key], dtype=np.int64).reshape(-1)[kept]
    if kind.instance_masks:
        height, width = out["image"].shape[:2]
        given = sample[kind.instance_masks]
        masks = np.asarray(out["masks"]) if len(given) else np.zeros((0, height, width), np.uint8)
        result[kind.instance_masks] = masks[kept] if len(masks) else masks.reshape(0, height, width)
    return result


def to_tensors(sample: dict[str, Any], kind: Kind, uint8_images: bool = False) -> dict[str, Any]:
    """Numpy sample to the batch convention: float CxHxW image in [0, 1], targets typed by ``kind``.

    With ``uint8_images`` an 8-bit image stays uint8 (:func:`images_to_float` scales it later, on the device).
    """
    image = torch.tensor(sample["image"].transpose(2, 0, 1))  # a copy: the sample's array may be read-only or cached
    out: dict[str, Any] = dict(sample)
    out["image"] = image if uint8_images and image.dtype == torch.uint8 else images_to_float(image)
    for key, dtype in kind.dtypes.items():
        if sample.get(key) is not None:
            value = np.asarray(sample[key])  # flipped masks are strided views torch cannot take as they are
            out[key] = torch.as_tensor(np.ascontiguousarray(value) if value.ndim else value, dtype=dtype)
    if kind.box and kind.per_object:
        out[kind.box] = out[kind.box].reshape(-1, 4)
    return out


def images_to_float(images: Any) -> Any:
    """uint8 images (a tensor or a list of them) as float32 in [0, 1]; float images unchanged."""
    if isinstance(images, list):
        return [images_to_float(image) for image in images]
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images.to(torch.float32) if isinstance(images, torch.Tensor) and images.dtype != torch.float32 else images
