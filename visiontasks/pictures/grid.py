"""The run folder's grid of validation predictions: each image with the model's prediction drawn on it
(class colours, boxes, masks, captions) beside what the data says."""

from __future__ import annotations

import math

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from visiontasks.pictures.truth import Truth  # noqa: E402
from visiontasks.results import Result  # noqa: E402
from visiontasks.results.draw import draw_objects, enlarge, mask_overlay  # noqa: E402

RIGHT, WRONG = "#1a7f37", "#cf222e"
READABLE = 192  # small images are enlarged to about this many pixels, so that captions and boxes can be read


def enlarged(picture: np.ndarray, result: Result, truth: Truth | None) -> tuple[np.ndarray, Result, Truth | None]:
    """A small picture, its result and its truth scaled up by a whole factor (pixels stay sharp)."""
    factor = max(1, math.ceil(READABLE / max(1, min(result.orig_size))))
    if factor == 1:
        return picture, result, truth
    grow = max(1, math.ceil(READABLE / max(1, min(picture.shape[:2]))))
    if truth is not None:
        truth = Truth(truth.labels, None if truth.boxes is None else truth.boxes * grow,
                      None if truth.masks is None or not len(truth.masks) else np.stack([enlarge(m, grow) for m in truth.masks]),
                      None if truth.mask is None else enlarge(truth.mask, grow))  # fmt: skip
    return enlarge(picture, grow), result.enlarged(factor), truth


def truth_picture(picture: np.ndarray, truth: Truth, names: list[str]) -> np.ndarray | None:
    """The ground truth drawn on the network's input picture, for tasks with boxes or masks."""
    if truth.mask is not None:
        return mask_overlay(picture, np.where(truth.mask == 255, 0, truth.mask).astype(np.uint8))
    if truth.boxes is not None:
        return draw_objects(picture, truth.boxes, truth.labels, [names[k] for k in truth.labels], truth.masks)
    return None


def _title(result: Result, truth: Truth | None, names: list[str]) -> tuple[str, str]:
    """Caption and colour of a prediction: green when the class is right, red when not."""
    classes = result.classes()
    if classes is None:
        return "prediction", "black"
    text = "pred: " + (", ".join(f"{p} {s:.2f}" for p, s in classes) or "(none)")
    if truth is None:
        return text, "black"
    right = sorted(p for p, _ in classes) == sorted(names[k] for k in truth.labels)
    return f"{truth.caption(names)}\n{text}", RIGHT if right else WRONG





CELL = 192  # pixels of a grid cell's picture (the longer side)
TEXT_LINE = 16


def _font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def tile(cells: list[tuple[np.ndarray, str, str]], columns: int) -> np.ndarray:
    """Pictures with their captions (text, colour) above them, in a grid on white (HxWx3 uint8). Drawn with
    PIL rather than matplotlib: a tenth of the time, which matters for a picture redrawn every epoch."""
    lines = max(len(text.split("\n")) for _, text, _ in cells)
    width, height = CELL + 8, CELL + 8 + lines * TEXT_LINE
    rows = math.ceil(len(cells) / columns)
    canvas = Image.new("RGB", (columns * width, rows * height), "white")
    draw, font = ImageDraw.Draw(canvas), _font()
    for k, (picture, text, colour) in enumerate(cells):
        left, top = (k % columns) * width, (k // columns) * height
        image = Image.fromarray(picture)
        scale = CELL / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.NEAREST)
        for n, line in enumerate(text.split("\n")):
            draw.text((left + width // 2, top + 4 + n * TEXT_LINE), line, fill=colour, font=font, anchor="mt")
        canvas.paste(image, (left + (width - image.width) // 2, top + 4 + lines * TEXT_LINE))
    return np.asarray(canvas)


def prediction_grid(pictures: list[np.ndarray], results: list[Result], truths: list[Truth | None],
                    names: list[str], columns: int = 4, notes: list[str] | None = None) -> np.ndarray:  # fmt: skip
    """The predictions (``Result.plot``), each beside its ground truth where the task draws one (boxes,
    masks), else captioned with the true and predicted classes (green when right, red when wrong)."""
    cells: list[tuple[np.ndarray, str, str]] = []
    for k, (picture, result, truth) in enumerate(zip(pictures, results, truths)):
        picture, result, truth = enlarged(picture, result, truth)
        drawn = truth_picture(picture, truth, names) if truth is not None else None
        if drawn is not None:
            cells.append((drawn, f"{notes[k]}\nground truth" if notes else "ground truth", "black"))
        title, colour = _title(result, truth, names)
        cells.append((result.plot(), f"{notes[k]}\n{title}" if notes else title, colour))
    columns = min(columns * (2 if len(cells) > len(results) else 1), len(cells))
    return tile(cells, columns)
