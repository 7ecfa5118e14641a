"""Writing detections as a COCO results JSON (what COCO's tools and leaderboards read), optionally drawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.callbacks import Callback
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from visiontasks.callbacks.pictures import original_picture
from visiontasks.results.formats import coco_entries
from visiontasks.runs import rank_path


def coco_results(prediction: dict[str, Any], image_id: int) -> list[dict[str, Any]]:
    """One image's detections as COCO result entries: original category ids, xywh boxes, RLE masks."""
    masks = prediction.get("masks")
    return coco_entries(prediction["boxes"].numpy(), prediction["scores"].numpy(), prediction["category_ids"], image_id,
                        None if masks is None else masks.numpy())  # fmt: skip


class CocoResultsWriter(Callback):
    """Writes every prediction to ``<run>/<filename>`` as a COCO results list, and with ``draw``
    saves the images with boxes (and masks) scoring at least ``draw_threshold`` into ``<run>/<folder>/``.

    Images without a COCO ``image_id`` (a predict folder) are numbered in order and carry their ``file_name``.
    """

    def __init__(
        self, filename: str = "predictions.json", draw: bool = False, draw_threshold: float = 0.5, folder: str = "predictions"
    ) -> None:
        self.filename, self.draw, self.draw_threshold, self.folder = filename, draw, draw_threshold, folder
        self.results: list[dict[str, Any]] = []
        self.count = 0

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.results, self.count = [], 0

    def on_predict_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        for prediction, image in zip(outputs, batch["image"]):
            image_id = prediction.get("image_id")
            entries = coco_results(prediction, self.count if image_id is None else int(image_id))
            if image_id is None:
                for entry in entries:
                    entry["file_name"] = Path(prediction["path"]).name
            self.results.extend(entries)
            if self.draw:
                self._save_drawn(trainer, prediction, image)
            self.count += 1

    def _save_drawn(self, trainer: pl.Trainer, prediction: dict[str, Any], image: Any) -> None:
        keep = prediction["scores"] >= self.draw_threshold
        picture = original_picture(prediction["path"], image, prediction["orig_size"])
        if "masks" in prediction and keep.any():
            picture = draw_segmentation_masks(picture, prediction["masks"][keep].bool(), alpha=0.4)
        labels = [f"{name} {score:.2f}" for name, score, k in zip(prediction["class_names"], prediction["scores"].tolist(), keep) if k]
        drawn = draw_bounding_boxes(picture, prediction["boxes"][keep], labels=labels, colors="red")
        folder = rank_path(trainer, self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.count:06d}-{Path(prediction['path']).stem or 'image'}.png"
        Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(folder / name)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = rank_path(trainer, self.filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.results))
        print(f"COCO results ({len(self.results)} detections) written to {path}")
