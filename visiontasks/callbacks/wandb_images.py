"""Validation images with the model's predictions drawn on, sent to W&B as overlays (rank zero only).

Works from each task's typed results, so every task gets overlays without code of its own:
a caption for labels, W&B boxes for boxes, a W&B mask for class masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger
from torch import Tensor

from visiontasks.results import ClassificationResult, DetectionResult, LocalizationResult, Result, SegmentationResult


def _boxes(result: Result, scale: tuple[float, float]) -> list[tuple[list[float], int, float]]:
    """(xyxy in the displayed image's pixels, class index, score) of each object of a result."""
    if isinstance(result, DetectionResult):
        found = [(list(b), int(c), float(s)) for b, c, s in zip(np.asarray(result.boxes).tolist(), result.labels, result.scores)]
    elif isinstance(result, LocalizationResult):
        index = result.class_names.index(result.label) if result.label in result.class_names else 0
        found = [(list(result.box), index, float(result.score))]
    else:
        return []
    sy, sx = scale
    return [([b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], c, s) for b, c, s in found]


def overlay_arguments(image: Tensor, result: Result, class_names: list[str]) -> dict[str, Any]:
    """Keyword arguments of ``wandb.Image`` for one image (CxHxW in [0, 1], the network's input) and its result."""
    pixels = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    height, width = pixels.shape[:2]
    original = result.orig_size or (height, width)
    labels = dict(enumerate(class_names))
    arguments: dict[str, Any] = {"data_or_path": pixels[..., 0] if pixels.shape[2] == 1 else pixels}
    if isinstance(result, (ClassificationResult, LocalizationResult)):
        arguments["caption"] = f"{result.label} ({result.score})"
    boxes = _boxes(result, (height / original[0], width / original[1]))
    if boxes:
        arguments["boxes"] = {"predictions": {"class_labels": labels, "box_data": [
            {"position": {"minX": b[0], "minY": b[1], "maxX": b[2], "maxY": b[3]}, "domain": "pixel",
             "class_id": c, "scores": {"score": s}, "box_caption": f"{class_names[c]} {s:.2f}"}
            for b, c, s in boxes
        ]}}  # fmt: skip
    if isinstance(result, SegmentationResult):
        mask = torch.as_tensor(np.asarray(result.mask))[None, None].float()
        mask = torch.nn.functional.interpolate(mask, size=(height, width), mode="nearest")[0, 0]
        arguments["masks"] = {"predictions": {"mask_data": mask.to(torch.uint8).numpy(), "class_labels": labels}}
    return arguments


class WandbImageLogger(Callback):
    """Logs the first validation batch as ``val/examples`` each epoch when a WandbLogger is in use."""

    def __init__(self, max_images: int = 8) -> None:
        self.max_images = max_images

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if batch_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero or not loggers:
            return
        import wandb

        rows = pl_module.results(batch)[: self.max_images]
        images = [wandb.Image(**overlay_arguments(image, row, pl_module.class_names)) for image, row in zip(batch["image"], rows)]
        loggers[0].log_image(key="val/examples", images=images, step=trainer.global_step)
