"""Writing predicted class masks as PNG files, one per input, at the input's original size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.callbacks import Callback

from visiontasks.callbacks.pictures import original_picture
from visiontasks.runs import rank_path


def voc_palette(count: int = 256) -> np.ndarray:
    """The Pascal VOC colour map (``count`` x 3 uint8): class 1 red, 2 green, 3 olive, 4 blue, ..."""
    palette = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value, colour = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = colour
    return palette


def overlay(picture: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``picture`` (HxWx3 uint8) with every non-background pixel (class != 0) tinted by its class colour."""
    colours = voc_palette()[mask]
    blended = (1 - alpha) * picture + alpha * colours
    return np.where((mask != 0)[..., None], blended, picture).round().astype(np.uint8)


class MaskPngWriter(Callback):
    """Saves each prediction's ``mask`` as ``<run>/<folder>/<stem>.png``: a grey-scale PNG whose pixel
    values are class indices (open it with any image library and compare to the class list).

    With ``overlays`` a ``<stem>_overlay.png`` beside it shows the input with the classes coloured.
    """

    def __init__(self, folder: str = "predictions", overlays: bool = True, alpha: float = 0.5) -> None:
        self.folder, self.overlays, self.alpha = folder, overlays, alpha
        self.names: set[str] = set()

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.names = set()

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        folder = rank_path(trainer, self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        for row, image in zip(outputs, batch["image"]):
            name = self._unique(Path(row["path"]).stem or "image")
            Image.fromarray(row["mask"]).save(folder / f"{name}.png")
            if self.overlays:
                picture = original_picture(row["path"], image, row["mask"].shape).permute(1, 2, 0).numpy()
                Image.fromarray(overlay(picture, row["mask"], self.alpha)).save(folder / f"{name}_overlay.png")

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.names:
            print(f"Predicted masks written to {rank_path(trainer, self.folder)}")

    def _unique(self, stem: str) -> str:
        """The file stem, with ``-2``, ``-3``... added when two inputs share it (a.png and a.jpg)."""
        name, count = stem, 1
        while name in self.names:
            count += 1
            name = f"{stem}-{count}"
        self.names.add(name)
        return name
