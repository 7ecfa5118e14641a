"""Saving predicted images with their box and label drawn, for a quick look at what the model does."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from PIL import Image
from torchvision.utils import draw_bounding_boxes

from visiontasks.callbacks.ordered import OrderedWriter, numbered_name, output_path
from visiontasks.callbacks.pictures import original_picture
from visiontasks.data.export import BOX_COLUMNS


class BoxImageWriter(OrderedWriter):
    """Draws each prediction row's box (``x_min..y_max``, original pixels) and label into ``<run>/<folder>/``,
    as ``<index in the predict set>-<file stem>.png`` (each process draws its own images).

    The original file is drawn on when it exists; otherwise (generated data) the network's input,
    resized back to the original size.
    """

    def __init__(self, folder: str = "predictions") -> None:
        super().__init__()
        self.folder = folder

    def items(self, trainer: pl.Trainer, outputs: Any, batch: Any, indices: list[int]) -> list[Any]:
        folder = output_path(trainer, self.folder)
        folder.mkdir(exist_ok=True)
        for index, row, image, size in zip(indices, outputs, batch["image"], batch["orig_size"]):
            picture = original_picture(row["path"], image, size)
            box = torch.tensor([[row[column] for column in BOX_COLUMNS]])
            drawn = draw_bounding_boxes(picture, box, labels=[f"{row['label']} {row['score']:.2f}"], colors="red")
            Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(folder / numbered_name(index, row["path"]))
        return []
