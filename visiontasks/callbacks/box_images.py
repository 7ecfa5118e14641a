"""Saving predicted images with their box and label drawn, for a quick look at what the model does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.callbacks import Callback
from torch import Tensor
from torchvision.utils import draw_bounding_boxes

from visiontasks.data.images import read_image
from visiontasks.runs import run_dir


class BoxImageWriter(Callback):
    """Draws each prediction row's box (``x_min..y_max``, original pixels) and label into ``<run>/<folder>/``.

    The original file is drawn on when it exists; otherwise (generated data) the network's input,
    resized back to the original size.
    """

    def __init__(self, folder: str = "predictions") -> None:
        self.folder = folder
        self.count = 0

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.count = 0

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        folder = run_dir(trainer) / (self.folder if trainer.world_size == 1 else f"{self.folder}-rank{trainer.global_rank}")
        folder.mkdir(parents=True, exist_ok=True)
        for row, image, size in zip(outputs, batch["image"], batch["orig_size"]):
            picture = _picture(row["path"], image, size)
            box = torch.tensor([[row["x_min"], row["y_min"], row["x_max"], row["y_max"]]])
            drawn = draw_bounding_boxes(picture, box, labels=[f"{row['label']} {row['score']:.2f}"], colors="red")
            name = f"{self.count:06d}-{Path(row['path']).stem or 'image'}.png"
            Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(folder / name)
            self.count += 1


def _picture(path: str, image: Tensor, size: tuple[int, int]) -> Tensor:
    """A 3xHxW uint8 picture at the original size: the file itself, else the resized network input."""
    if path and Path(path).is_file():
        array = read_image(path, 3)
        if array.dtype != np.uint8:  # 16-bit files are read as floats in [0, 1]
            array = (array * 255).round().astype(np.uint8)
        return torch.tensor(array).permute(2, 0, 1).contiguous()  # a copy: PIL arrays are read-only
    resized = F.interpolate(image[None].float().cpu(), size=tuple(size), mode="bilinear", align_corners=False)[0]
    return resized.expand(3, -1, -1).mul(255).round().clamp(0, 255).to(torch.uint8)
