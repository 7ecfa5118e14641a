"""Validation overlays for W&B: each image with its ground truth and the model's prediction as two groups of
W&B boxes and masks (class names, scores), which W&B's viewer turns on and off one class at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from visiontasks.pictures.truth import Truth
from visiontasks.results import Result
from visiontasks.results.draw import instance_map


def _box_data(boxes: np.ndarray, labels: list[int], names: list[str], scores: list[float] | None = None) -> list[dict]:
    data = []
    for k, (box, label) in enumerate(zip(np.asarray(boxes, dtype=float).tolist(), labels)):
        entry = {"position": {"minX": box[0], "minY": box[1], "maxX": box[2], "maxY": box[3]}, "domain": "pixel",
                 "class_id": int(label), "box_caption": names[int(label)]}  # fmt: skip
        if scores is not None:
            entry["scores"] = {"score": float(scores[k])}
            entry["box_caption"] += f" {scores[k]:.2f}"
        data.append(entry)
    return data


def overlay_arguments(image: Tensor, result: Result, class_names: list[str], truth: Truth | None = None) -> dict[str, Any]:
    """Keyword arguments of ``wandb.Image`` for one image (CxHxW in [0, 1], the network's input), its result
    (in the original image's pixels, scaled here to the input's) and its ground truth (in the input's pixels)."""
    pixels = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    size = pixels.shape[:2]
    original = result.orig_size or size
    names = list(class_names)
    arguments: dict[str, Any] = {"data_or_path": pixels[..., 0] if pixels.shape[2] == 1 else pixels}
    summary = result.summary()
    if summary is not None:
        arguments["caption"] = summary
        if truth is not None:
            arguments["caption"] = f"{truth.caption(names)} | pred: {arguments['caption']}"
    boxes: dict[str, Any] = {}
    found = result.objects()
    if found is not None:
        scale = np.array([size[1] / original[1], size[0] / original[0]] * 2)
        boxes["predictions"] = {"box_data": _box_data(found[0] * scale, found[1], names, found[2])}
    if truth is not None and truth.boxes is not None:
        boxes["ground_truth"] = {"box_data": _box_data(truth.boxes, truth.labels, names)}
    if boxes:
        arguments["boxes"] = {group: value | {"class_labels": dict(enumerate(names))} for group, value in boxes.items()}
    masks: dict[str, Any] = {}
    predicted = result.class_map(size)
    if predicted is not None and not predicted[1]:  # class indices, 0 the first class (background)
        masks["predictions"] = predicted[0]
        if truth is not None and truth.mask is not None:
            masks["ground_truth"] = truth.mask.astype(np.uint8)  # 255 (ignore) shows as its own value
        mask_names = dict(enumerate(names))
    elif predicted is not None:  # objects' masks: 0 background, label + 1 an object
        masks["predictions"] = predicted[0]
        if truth is not None and truth.masks is not None:
            masks["ground_truth"] = instance_map(truth.masks, truth.labels, size)
        mask_names = {0: "background", **{k + 1: name for k, name in enumerate(names)}}
    if masks:
        arguments["masks"] = {group: {"mask_data": data, "class_labels": mask_names} for group, data in masks.items()}
    return arguments


def log_overlays(run: Any, key: str, images: Tensor, results: list[Result], truths: list[Truth | None],
                 class_names: list[str], step: int) -> None:  # fmt: skip
    """Log the overlays of a batch's first images under ``key`` in the W&B run ``run`` (rank zero's).

    Straight through ``run.log``: the logger's ``log_image`` would build the images again from their
    pixels and keep only the captions, losing the boxes and masks."""
    import wandb

    pictures = [wandb.Image(**overlay_arguments(image, result, class_names, truth))
                for image, result, truth in zip(images, results, truths)]  # fmt: skip
    run.log({key: pictures, "trainer/global_step": step})
