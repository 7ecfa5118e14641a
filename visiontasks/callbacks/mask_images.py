"""Writing predicted class masks as PNG files, one per input, at the input's original size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image

from visiontasks.callbacks.ordered import OrderedWriter, dataset_stems, output_path
from visiontasks.callbacks.pictures import original_picture
from visiontasks.pictures.draw import mask_overlay as overlay


class MaskPngWriter(OrderedWriter):
    """Saves each prediction's ``mask`` as ``<run>/<folder>/<stem>.png``: a grey-scale PNG whose pixel
    values are class indices (open it with any image library and compare to the class list).

    With ``overlays`` a ``<stem>_overlay.png`` beside it shows the input with the classes coloured. Stems shared
    by several inputs (a.png and a.jpg) get ``-2``, ``-3``... in the data's order; each process writes its own images.
    """

    def __init__(self, folder: str = "predictions", overlays: bool = True, alpha: float = 0.5) -> None:
        super().__init__()
        self.folder, self.overlays, self.alpha = folder, overlays, alpha
        self.stems: list[str] | None = None

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_epoch_start(trainer, pl_module)
        self.stems = dataset_stems(trainer)

    def items(self, trainer: pl.Trainer, outputs: Any, batch: Any, indices: list[int]) -> list[Any]:
        folder = output_path(trainer, self.folder)
        folder.mkdir(exist_ok=True)
        for index, row, image in zip(indices, outputs, batch["image"]):
            name = self.stems[index] if self.stems is not None else Path(row["path"]).stem or f"{index:06d}-image"
            Image.fromarray(row["mask"]).save(folder / f"{name}.png")
            if self.overlays:
                picture = original_picture(row["path"], image, row["mask"].shape).permute(1, 2, 0).numpy()
                Image.fromarray(overlay(picture, row["mask"], self.alpha)).save(folder / f"{name}_overlay.png")
        return list(indices)

    def write(self, trainer: pl.Trainer, items: list[Any]) -> None:
        if items:
            print(f"Predicted masks written to {output_path(trainer, self.folder)}")
