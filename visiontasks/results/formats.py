"""The files predictions are written to, one writer per format: CSV rows, COCO results JSON, mask PNGs.

The predict command's writer and each result's ``save`` both write through these functions; the formats
themselves (CSV rows, COCO boxes, RLE) are defined once, in :mod:`visiontasks.data.formats`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visiontasks.data.formats import rle_encode, write_csv, xyxy_to_xywh

__all__ = ["coco_entries", "write_coco", "write_csv", "write_mask_png", "write_picture"]


def coco_entries(
    boxes: np.ndarray, scores: np.ndarray, category_ids: Sequence[int], image_id: int, masks: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """One image's detections as COCO result entries: xywh boxes, the data's category ids, RLE masks."""
    entries = []
    for k, (box, score, category_id) in enumerate(zip(np.asarray(boxes).tolist(), np.asarray(scores).tolist(), category_ids)):
        entry = {"image_id": image_id, "category_id": int(category_id), "bbox": xyxy_to_xywh(box), "score": score}
        if masks is not None:
            entry["segmentation"] = rle_encode(masks[k])
        entries.append(entry)
    return entries


def write_coco(path: Path, entries: Sequence[dict[str, Any]], append: bool = False) -> None:
    """COCO results (a JSON list of detections); with ``append`` added to the list already in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    found = json.loads(path.read_text()) if append and path.is_file() else []
    path.write_text(json.dumps([*found, *entries]))


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """A class mask as a grey-scale PNG whose pixel values are the class indices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(path)


def write_picture(path: Path, picture: np.ndarray) -> None:
    """A drawn picture (HxWx3 uint8) as an image file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)
