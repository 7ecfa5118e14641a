"""Validation images with the model's predictions drawn on, sent to W&B as overlays (rank zero only).

Works from each task's ``predict_step`` rows, so every task gets overlays without code of its own:
a caption for labels, W&B boxes for ``boxes`` / ``x_min..y_max``, a W&B mask for ``mask``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import WandbLogger
from torch import Tensor

from visiontasks.data.export import BOX_COLUMNS


def _boxes(row: dict[str, Any], scale: tuple[float, float]) -> list[tuple[list[float], int, float]]:
    """(xyxy in the displayed image's pixels, class index or -1, score) of a prediction row."""
    if "boxes" in row:
        labels = row.get("labels", torch.zeros(len(row["boxes"]), dtype=torch.long))
        scores = row.get("scores", torch.ones(len(row["boxes"])))
        found = [(b, int(c), float(s)) for b, c, s in zip(torch.as_tensor(row["boxes"]).tolist(), labels, scores)]
    elif all(k in row for k in BOX_COLUMNS):
        found = [([row[k] for k in BOX_COLUMNS], -1, float(row.get("score", 1.0)))]
    else:
        return []
    sy, sx = scale
    return [([b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], c, s) for b, c, s in found]


def overlay_arguments(image: Tensor, row: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    """Keyword arguments of ``wandb.Image`` for one image (CxHxW in [0, 1]) and its prediction row."""
    pixels = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    height, width = pixels.shape[:2]
    original = row.get("orig_size") or (height, width)
    labels = dict(enumerate(class_names))
    arguments: dict[str, Any] = {"data_or_path": pixels[..., 0] if pixels.shape[2] == 1 else pixels}
    if "label" in row:
        arguments["caption"] = f"{row['label']} ({row.get('score', '')})"
    boxes = _boxes(row, (height / original[0], width / original[1]))
    if boxes:
        named = row.get("label") if isinstance(row.get("label"), str) else None
        index = class_names.index(named) if named in class_names else 0
        arguments["boxes"] = {"predictions": {"class_labels": labels, "box_data": [
            {"position": {"minX": b[0], "minY": b[1], "maxX": b[2], "maxY": b[3]}, "domain": "pixel",
             "class_id": c if c >= 0 else index, "scores": {"score": s},
             "box_caption": f"{class_names[c if c >= 0 else index]} {s:.2f}"}
            for b, c, s in boxes
        ]}}  # fmt: skip
    if "mask" in row:
        mask = torch.as_tensor(np.asarray(row["mask"]))[None, None].float()
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

        rows = pl_module.predict_step(batch)[: self.max_images]
        images = [wandb.Image(**overlay_arguments(image, row, pl_module.class_names)) for image, row in zip(batch["image"], rows)]
        loggers[0].log_image(key="val/examples", images=images, step=trainer.global_step)
