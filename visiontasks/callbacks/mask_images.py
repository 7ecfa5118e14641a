"""Writing predicted class masks as PNG files, one per input, at the input's original size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.callbacks import Callback

from visiontasks.callbacks.pictures import original_picture
from visiontasks.pictures.draw import mask_overlay as overlay
from visiontasks.runs import rank_path


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
