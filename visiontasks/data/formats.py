"""The on-disk formats, read and written through this one module: CSV columns and rows, COCO boxes, RLE masks.

The data readers (CSV, COCO), the exporter of a data module's splits and the predictions' writers
(:mod:`visiontasks.results.formats`) all use these, so a format is defined once.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_COLUMN, LABEL_COLUMN = "image", "label"
"""The CSV columns of an image's path (relative to the CSV) and its label(s)."""
BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")
"""The CSV columns of a box, in pixels (xyxy)."""


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


def xyxy_to_xywh(box: Sequence[float]) -> list[float]:
    """A pixel box (x_min, y_min, x_max, y_max) as COCO's ``bbox`` [x, y, width, height]."""
    x_min, y_min, x_max, y_max = box
    return [x_min, y_min, x_max - x_min, y_max - y_min]


def xywh_to_xyxy(bbox: Sequence[float]) -> list[float]:
    """COCO's ``bbox`` [x, y, width, height] as a pixel box (x_min, y_min, x_max, y_max)."""
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A 0/1 mask (HxW) as COCO's compressed RLE, JSON-ready (``counts`` as text)."""
    from pycocotools import mask as mask_utils  # here, not at the top: start-up time of every command

    encoded = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": encoded["size"], "counts": encoded["counts"].decode("ascii")}


def rle_area(rle: dict[str, Any]) -> float:
    """The pixels an RLE mask covers."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(rle))


def rle_decode(segmentation: Any, height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1 mask of COCO polygons, uncompressed RLE (crowds) or compressed RLE."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle)
