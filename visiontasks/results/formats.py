"""The files predictions are written to, one writer per format: CSV rows, COCO results JSON, mask PNGs.

The predict command's writer and each result's ``save`` both write through these functions.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def csv_cell(value: Any) -> Any:
    """Lists are written as one cell joined with ``;``."""
    return ";".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def write_csv(path: Path, rows: Sequence[dict[str, Any]], append: bool = False) -> None:
    """``rows`` (dicts sharing their keys) as CSV; with ``append`` after the rows already in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = not (append and path.is_file() and path.stat().st_size)
    with open(path, "a" if append else "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if header:
            writer.writeheader()
        for row in rows:
            writer.writerow({key: csv_cell(value) for key, value in row.items()})


def rle(mask: np.ndarray) -> dict[str, Any]:
    """A 0/1 mask (HxW) as COCO's compressed RLE, JSON-ready."""
    from pycocotools import mask as mask_utils  # here, not at the top: start-up time of every command

    encoded = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def coco_entries(
    boxes: np.ndarray, scores: np.ndarray, category_ids: Sequence[int], image_id: int, masks: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """One image's detections as COCO result entries: xywh boxes, the data's category ids, RLE masks."""
    entries = []
    for k, (box, score, category_id) in enumerate(zip(np.asarray(boxes).tolist(), np.asarray(scores).tolist(), category_ids)):
        x_min, y_min, x_max, y_max = box
        entry = {"image_id": image_id, "category_id": int(category_id),
                 "bbox": [x_min, y_min, x_max - x_min, y_max - y_min], "score": score}  # fmt: skip
        if masks is not None:
            entry["segmentation"] = rle(masks[k])
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
