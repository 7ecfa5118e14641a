"""The files predictions are written to, one writer per format: CSV rows, COCO results JSON, mask PNGs.

The predict command's writer and each result's ``save`` both write through these functions; the formats
themselves (CSV rows, COCO boxes, RLE) are defined once, in :mod:`visiontasks.data.formats`.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visiontasks.data.formats import rle_encode, write_csv, xyxy_to_xywh
from visiontasks.data.images import LARGE_PIXELS

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
    """A drawn picture (HxWx3 uint8) as an image file; a large one as a PNG written a band of rows at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png" and picture.shape[0] * picture.shape[1] > LARGE_PIXELS:
        write_png_rows(path, picture)
    else:
        Image.fromarray(picture).save(path)


def write_png_rows(path: Path, picture: np.ndarray, rows: int = 64) -> None:
    """An HxWx3 uint8 picture (any strides: a rotated view too) as an RGB PNG, ``rows`` rows at a time: PIL would
    first copy all of it at 4 bytes a pixel. Each row is PNG's "Up" filter of the row above, then deflated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = picture.shape[:2]
    deflate = zlib.compressobj(6)
    above = np.zeros((1, width * 3), np.uint8)
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for top in range(0, height, rows):
            band = np.ascontiguousarray(picture[top : top + rows], dtype=np.uint8).reshape(-1, width * 3)
            filtered = np.empty((len(band), width * 3 + 1), np.uint8)
            filtered[:, 0] = 2  # the "Up" filter: each byte minus the byte above, modulo 256 (uint8 arithmetic)
            filtered[:, 1:] = band - np.concatenate([above, band[:-1]])
            above = band[-1:].copy()
            file.write(chunk(b"IDAT", deflate.compress(filtered.tobytes())))
        file.write(chunk(b"IDAT", deflate.flush()) + chunk(b"IEND", b""))
