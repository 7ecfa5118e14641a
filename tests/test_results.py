"""Typed results draw themselves in class colours and save themselves in their task's format."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from visiontasks.data import images
from visiontasks.results import formats
from visiontasks.results.draw import class_colour
from visiontasks.results import ClassificationResult, DetectionResult, LocalizationResult, SegmentationResult

NAMES = ["circle", "square", "triangle"]
GREY = np.full((40, 60, 3), 128, np.uint8)


def test_classification_and_localization_rows_append_to_one_csv(tmp_path):
    first = ClassificationResult(path="a.png", orig_size=(40, 60), class_names=NAMES, picture=GREY,
                                 label="square", score=0.9, top_k=[("square", 0.9), ("circle", 0.05)])  # fmt: skip
    second = ClassificationResult(path="b.png", orig_size=(40, 60), class_names=NAMES, picture=GREY, label="circle", score=0.6)
    assert first.save(tmp_path) == second.save(tmp_path) == tmp_path / "predictions.csv"
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert [(r["path"], r["label"], r["top_k"]) for r in rows] == [("a.png", "square", "square:0.9000;circle:0.0500"), ("b.png", "circle", "")]
    assert (first.plot() != GREY).any() and first.plot().shape == GREY.shape

    box = LocalizationResult(orig_size=(40, 60), class_names=NAMES, picture=GREY, label="triangle", score=0.8, box=(5, 6, 30, 20))
    box.save(tmp_path / "boxes.csv")
    assert next(csv.DictReader(open(tmp_path / "boxes.csv")))["x_max"] == "30.0"
    drawn = box.plot()
    assert tuple(drawn[10, 5]) == class_colour(2)  # the box's left edge in the triangle's colour


def test_detection_saves_coco_results_and_draws_above_threshold(tmp_path):
    masks = np.zeros((2, 40, 60), np.uint8)
    masks[0, 5:10, 5:10] = 1
    found = DetectionResult(path="photos/x.jpg", orig_size=(40, 60), class_names=NAMES, picture=GREY,
                            boxes=np.array([[5, 5, 10, 10], [20, 20, 30, 30]], np.float32), labels=np.array([0, 2]),
                            scores=np.array([0.9, 0.3], np.float32), category_ids=[7, 8, 9], masks=masks)  # fmt: skip
    found.save(tmp_path)
    found.save(tmp_path)
    entries = json.loads((tmp_path / "predictions.json").read_text())
    assert len(entries) == 4 and entries[1]["category_id"] == 9 and entries[0]["file_name"] == "x.jpg"
    assert entries[0]["bbox"] == [5.0, 5.0, 5.0, 5.0]
    assert mask_utils.decode(entries[0]["segmentation"]).sum() == 25
    assert (found.plot(threshold=0.5)[25, 20:31] == GREY[25, 20:31]).all()  # the low-scoring object is not drawn
    assert (found.plot(threshold=0.0)[25, 20:31] != GREY[25, 20:31]).any()


def test_segmentation_saves_an_index_png_and_tints_classes(tmp_path):
    mask = (np.arange(60)[None].repeat(40, 0) // 20).astype(np.uint8)
    result = SegmentationResult(path="in/a.jpg", orig_size=(40, 60), class_names=["bg", *NAMES], picture=GREY, mask=mask)
    assert result.save(tmp_path) == tmp_path / "a.png"
    assert (np.asarray(Image.open(tmp_path / "a.png")) == mask).all()
    drawn = result.plot()
    assert (drawn[:, :20] == GREY[:, :20]).all() and (drawn[:, 20:] != GREY[:, 20:]).any()
    assert result.row() == {"path": "in/a.jpg", "bg": 800, "circle": 800, "square": 800, "triangle": 0}


def test_a_result_without_picture_reads_its_file(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(GREY[..., 0]).save(path)  # a grey-scale file is drawn on in RGB
    result = ClassificationResult(path=str(path), orig_size=(40, 60), label="circle", score=1.0)
    assert result.image().shape == (40, 60, 3) and Path(result.path).is_file()


# ----- large images: read, drawn and written with bounded memory (the paths run on tiny files here) -----
@pytest.fixture
def all_large(monkeypatch):
    """Every image counts as large, so the bounded-memory paths run on tiny files."""
    monkeypatch.setattr(images, "LARGE_PIXELS", 0)
    monkeypatch.setattr(formats, "LARGE_PIXELS", 0)


def exif_photo(path: Path, mode: str, orientation: int, seed: int = 0) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels = np.random.default_rng(seed).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_large_picture_is_decoded_straight_to_rgb_and_upright_as_pil_reads_it(tmp_path, all_large, monkeypatch, orientation):
    import cv2

    decoded = []
    monkeypatch.setattr(cv2, "imread", lambda *args, real=cv2.imread: decoded.append(args[0]) or real(*args))
    for mode in ("RGB", "L"):
        path = tmp_path / f"{mode}.png"
        exif_photo(path, mode, orientation, seed=orientation)
        with images.open_image(path) as image:
            expected = np.asarray(image.convert("RGB"))
        picture = images.read_picture(path)
        assert decoded[-1] == str(path)  # OpenCV read it, not PIL
        assert picture.shape == expected.shape and (picture == expected).all()
        assert images.upright_size(path) == expected.shape[:2]
        picture[0, 0] = 0  # a new array: drawn on in place


def test_a_large_png_is_written_a_band_at_a_time_as_pil_reads_it_back(tmp_path, all_large):
    pixels = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    turned = np.rot90(pixels)  # a view, as a rotated photo's picture is
    formats.write_png_rows(tmp_path / "a.png", turned, rows=4)
    assert (np.asarray(Image.open(tmp_path / "a.png")) == turned).all()
    formats.write_picture(tmp_path / "b.png", pixels)  # LARGE_PIXELS 0: this writer, not PIL's
    assert (np.asarray(Image.open(tmp_path / "b.png")) == pixels).all()
    data, rest = b"", (tmp_path / "b.png").read_bytes()[8:]
    while rest:  # the rows PNG holds: every one of them filtered by "Up" (2), as this writer filters
        length, kind = int.from_bytes(rest[:4], "big"), rest[4:8]
        data, rest = data + (rest[8 : 8 + length] if kind == b"IDAT" else b""), rest[12 + length :]
    assert set(np.frombuffer(zlib.decompress(data), np.uint8).reshape(37, 53 * 3 + 1)[:, 0]) == {2}


def test_drawing_a_large_photo_keeps_the_callers_picture_and_draws_on_the_read_one(tmp_path, all_large):
    path = tmp_path / "photo.png"
    exif_photo(path, "RGB", 6)  # stored 53 x 37, upright 37 x 53
    mask = np.zeros((53, 37), np.uint8)
    mask[:, 20:] = 1
    from_file = SegmentationResult(path=str(path), orig_size=(53, 37), class_names=["bg", "thing"], mask=mask)
    drawn = from_file.plot()
    upright = images.read_picture(path)
    assert (drawn[:, :20] == upright[:, :20]).all() and (drawn[:, 20:] != upright[:, 20:]).any()
    given = upright.copy()
    kept = SegmentationResult(path=str(path), orig_size=(53, 37), class_names=["bg", "thing"], mask=mask, picture=given)
    assert (kept.plot() == drawn).all() and (given == upright).all()  # the caller's picture is left as it was
