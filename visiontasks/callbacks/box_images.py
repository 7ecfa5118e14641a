"""Saving predicted images with their box and label drawn, for a quick look at what the model does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import Callback
from torchvision.utils import draw_bounding_boxes

from visiontasks.callbacks.pictures import original_picture
from visiontasks.data.export import BOX_COLUMNS
from visiontasks.runs import rank_path


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
        folder = rank_path(trainer, self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        for row, image, size in zip(outputs, batch["image"], batch["orig_size"]):
            picture = original_picture(row["path"], image, size)
            box = torch.tensor([[row[column] for column in BOX_COLUMNS]])
            drawn = draw_bounding_boxes(picture, box, labels=[f"{row['label']} {row['score']:.2f}"], colors="red")
            name = f"{self.count:06d}-{Path(row['path']).stem or 'image'}.png"
            Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(folder / name)
            self.count += 1

