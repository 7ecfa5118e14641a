"""Writing detections as a COCO results JSON (what COCO's tools and leaderboards read), optionally drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from visiontasks.callbacks.ordered import OrderedWriter, numbered_name, output_path
from visiontasks.callbacks.pictures import original_picture
from visiontasks.results.formats import coco_entries, write_coco


def coco_results(prediction: dict[str, Any], image_id: int) -> list[dict[str, Any]]:
    """One image's detections as COCO result entries: original category ids, xywh boxes, RLE masks."""
    masks = prediction.get("masks")
    return coco_entries(prediction["boxes"].numpy(), prediction["scores"].numpy(), prediction["category_ids"], image_id,
                        None if masks is None else masks.numpy())  # fmt: skip


class CocoResultsWriter(OrderedWriter):
    """Writes every prediction to ``<run>/<filename>`` as a COCO results list (once, by rank zero, in the data's
    order), and with ``draw`` saves the images with boxes (and masks) scoring at least ``draw_threshold`` into
    ``<run>/<folder>/`` (each process draws its own images).

    Images without a COCO ``image_id`` (a predict folder) are numbered in order and carry their ``file_name``.
    """

    def __init__(
        self, filename: str = "predictions.json", draw: bool = False, draw_threshold: float = 0.5, folder: str = "predictions"
    ) -> None:
        super().__init__()
        self.filename, self.draw, self.draw_threshold, self.folder = filename, draw, draw_threshold, folder

    def items(self, trainer: pl.Trainer, outputs: Any, batch: Any, indices: list[int]) -> list[Any]:
        per_image = []
        for index, prediction, image in zip(indices, outputs, batch["image"]):
            image_id = prediction.get("image_id")
            entries = coco_results(prediction, index if image_id is None else int(image_id))
            if image_id is None:
                for entry in entries:
                    entry["file_name"] = Path(prediction["path"]).name
            per_image.append(entries)
            if self.draw:
                self._save_drawn(trainer, prediction, image, index)
        return per_image

    def _save_drawn(self, trainer: pl.Trainer, prediction: dict[str, Any], image: Any, index: int) -> None:
        keep = prediction["scores"] >= self.draw_threshold
        picture = original_picture(prediction["path"], image, prediction["orig_size"])
        if "masks" in prediction and keep.any():
            picture = draw_segmentation_masks(picture, prediction["masks"][keep].bool(), alpha=0.4)
        labels = [f"{name} {score:.2f}" for name, score, k in zip(prediction["class_names"], prediction["scores"].tolist(), keep) if k]
        drawn = draw_bounding_boxes(picture, prediction["boxes"][keep], labels=labels, colors="red")
        folder = output_path(trainer, self.folder)
        folder.mkdir(exist_ok=True)
        Image.fromarray(drawn.permute(1, 2, 0).numpy()).save(folder / numbered_name(index, prediction["path"]))

    def write(self, trainer: pl.Trainer, items: list[Any]) -> None:
        results = [entry for entries in items for entry in entries]
        path = output_path(trainer, self.filename)
        write_coco(path, results)
        print(f"COCO results ({len(results)} detections) written to {path}")
