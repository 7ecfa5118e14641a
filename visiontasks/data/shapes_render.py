"""Seeded drawing of synthetic shape images with every target the five tasks need.

Kept apart from the data module so the generator can be used (and tested) on its own: one call
renders one image from ``(seed, index)``, so samples are identical in every worker and process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "cross", "star")


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = [(x * r / math.sqrt(2) * 1.25, y * r / math.sqrt(2) * 1.25) for x, y in corners]
    elif shape == "triangle":
        pts = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif shape == "cross":
        w = r / 3
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((rad * math.cos(a), rad * math.sin(a)))
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}")
    ca, sa = math.cos(angle), math.sin(angle)
    return [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in pts]


def _shape_mask(shape: str, size: tuple[int, int], cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    canvas = Image.new("L", (size[1], size[0]), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=1)
    return np.asarray(canvas, dtype=np.uint8)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field plus pixel noise: texture that a classifier must look past."""
    base = rng.uniform(40, 215, size=3)
    coarse = rng.normal(0, 25, size=(4, 4, 3))
    field = np.asarray(
        Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
        dtype=np.float32,
    )
    noise = rng.normal(0, 8, size=(height, width, 3))
    return base + (field - 128) + noise


def _luminance(colour: np.ndarray) -> float:
    return float(colour @ np.array([0.299, 0.587, 0.114]))


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour that differs from the background in hue AND brightness, so grayscale keeps the shape."""
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - mean).sum() > 150 and abs(_luminance(colour) - _luminance(mean)) > 70:
            return colour
    return np.full(3, 255.0 if _luminance(mean) < 128 else 0.0)


def _boxes_overlap(a: tuple[float, ...], b: tuple[float, ...], margin: float = 1.0) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


def render_shapes(
    seed: int,
    index: int,
    image_size: tuple[int, int],
    shapes: Sequence[str],
    labels: Sequence[int],
    channels: int = 3,
    size_range: tuple[float, float] = (0.1, 0.22),
    centre_jitter: float | None = None,
) -> dict[str, np.ndarray]:
    """Draw one non-overlapping shape per entry of ``labels`` (indices into ``shapes``).

    ``size_range`` bounds each shape's radius as a fraction of the image's shorter side;
    ``centre_jitter`` keeps centres within that fraction of the image centre (else anywhere inside).

    Returns ``image`` (HxWxC uint8), ``labels`` (N), ``boxes`` (Nx4 xyxy pixels, tight around the
    drawn pixels), ``masks`` (NxHxW uint8) and ``mask`` (HxW, 0 = background, class + 1 inside).
    """
    rng = np.random.default_rng([seed, index])
    height, width = image_size
    image = _background(rng, height, width)
    short = min(height, width)
    drawn, boxes, masks = [], [], []
    placed: list[tuple[float, ...]] = []
    for label in labels:
        for _attempt in range(50):
            r = rng.uniform(*size_range) * short
            if centre_jitter is None:
                cx, cy = rng.uniform(r + 1, width - r - 1), rng.uniform(r + 1, height - r - 1)
            else:
                cx, cy = (np.array([width, height]) * (0.5 + rng.uniform(-centre_jitter, centre_jitter, 2))).tolist()
                cx, cy = float(np.clip(cx, r + 1, width - r - 1)), float(np.clip(cy, r + 1, height - r - 1))
            box = (cx - r, cy - r, cx + r, cy + r)
            if not any(_boxes_overlap(box, other) for other in placed):
                break
        else:
            break
        m = _shape_mask(shapes[label], (height, width), cx, cy, r, rng.uniform(-0.3, 0.3))
        if m.sum() < 4:
            continue
        placed.append(box)
        colour = _contrasting_colour(rng, image)
        shade = rng.uniform(0.85, 1.15)
        image = np.where(m[..., None] > 0, colour * shade + rng.normal(0, 6, size=image.shape), image)
        ys, xs = np.nonzero(m)
        drawn.append(int(label))
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        masks.append(m)
    pixels = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.5))
    image_array = np.asarray(pixels.convert("L") if channels == 1 else pixels)
    if channels == 1:
        image_array = image_array[..., None]
    semantic = np.zeros((height, width), dtype=np.uint8)
    for label, m in zip(drawn, masks):
        semantic[m > 0] = label + 1
    return {
        "image": np.ascontiguousarray(image_array),
        "labels": np.asarray(drawn, dtype=np.int64),
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "masks": np.stack(masks) if masks else np.zeros((0, height, width), dtype=np.uint8),
        "mask": semantic,
    }
