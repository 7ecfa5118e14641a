"""Drawing predictions on pictures (HxWx3 uint8 numpy): one colour per class, captions, boxes, masks.

Every picture of a prediction (``Result.plot``, the predict writer, run-folder plots, W&B overlays)
is drawn here, so a class has the same colour everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import draw_bounding_boxes


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


PALETTE = voc_palette()


def class_colour(label: int) -> tuple[int, int, int]:
    """The colour of object class ``label`` (0-based; class masks use :func:`mask_overlay`, where 0 is background)."""
    return tuple(int(v) for v in PALETTE[(label % 255) + 1])  # type: ignore[return-value]


ROWS_AT_ONCE = 64
"""Rows blended per step: a 12000 px photo is tinted in 8-bit bands of 2 MB, never as a full-size float image."""


def _tint(picture: np.ndarray, where: np.ndarray, colours: np.ndarray, alpha: float) -> None:
    """Blend ``colours`` (HxWx3, or one RGB triple) into ``picture`` (HxWx3 uint8) where ``where`` holds, in place."""
    if where.any():
        colour = colours[where] if colours.ndim == 3 else colours
        blended = picture[where].astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
        picture[where] = blended.round().astype(np.uint8)


def mask_overlay(picture: np.ndarray, mask: np.ndarray, alpha: float = 0.5, *, in_place: bool = False) -> np.ndarray:
    """``picture`` with every non-background pixel (class != 0) of ``mask`` (HxW) tinted by its class colour;
    ``in_place``: drawn on ``picture`` itself (uint8), else on a copy."""
    drawn = picture if in_place else np.array(picture, dtype=np.uint8)
    for top in range(0, mask.shape[0], ROWS_AT_ONCE):
        rows = slice(top, top + ROWS_AT_ONCE)
        _tint(drawn[rows], mask[rows] != 0, PALETTE[mask[rows]], alpha)
    return drawn


def _tensor(picture: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1)


def draw_objects(
    picture: np.ndarray,
    boxes: np.ndarray,
    labels: Sequence[int],
    captions: Sequence[str],
    masks: np.ndarray | None = None,
    alpha: float = 0.4,
    *,
    in_place: bool = False,
) -> np.ndarray:
    """``picture`` with boxes (Nx4 xyxy pixels), their captions and, given, instance masks (NxHxW) in class colours;
    ``in_place``: the masks drawn on ``picture`` itself (uint8), else on a copy."""
    colours = [class_colour(int(label)) for label in labels]
    drawn = picture if in_place else np.array(picture, dtype=np.uint8)
    if masks is not None and len(masks):
        for top in range(0, drawn.shape[0], ROWS_AT_ONCE):
            rows = slice(top, top + ROWS_AT_ONCE)
            for mask, colour in zip(masks, colours):
                _tint(drawn[rows], np.asarray(mask[rows]).astype(bool), np.asarray(colour, np.float32), alpha)
    if len(boxes):
        drawn = draw_bounding_boxes(_tensor(drawn), torch.as_tensor(np.asarray(boxes, dtype=np.float32)), labels=list(captions),
                                    colors=colours, width=max(1, min(picture.shape[:2]) // 150)).permute(1, 2, 0).numpy()  # fmt: skip
    return drawn


def draw_caption(picture: np.ndarray, text: str, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """``picture`` with ``text`` written at its top-left on a dark strip (a class label and its score)."""
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((2, 1), text)
    draw.rectangle((0, 0, right + 2, bottom + 1), fill=(0, 0, 0))
    draw.text((2, 1), text, fill=colour)
    return np.asarray(image).copy()


def enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel of the first two axes repeated ``factor`` times (an HxW or HxWxC picture, or a mask)."""
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask (HxW) at ``size`` (nearest neighbour), as uint8."""
    if mask.shape == tuple(size):
        return mask.astype(np.uint8)
    tensor = torch.as_tensor(mask.astype(np.float32))[None, None]
    return torch.nn.functional.interpolate(tensor, size=tuple(size), mode="nearest")[0, 0].numpy().astype(np.uint8)


def instance_map(masks: np.ndarray, labels: list[int], size: tuple[int, int]) -> np.ndarray:
    """Instance masks as one class map: 0 background, ``label + 1`` where an object is (later objects on top)."""
    found = np.zeros(size, dtype=np.uint8)
    for mask, label in zip(masks, labels):
        found[resized_mask(np.asarray(mask), size) > 0] = label + 1
    return found
