"""COCO JSON data: the shapes export round trip, masks, crowds, category ids, negatives, bad boxes and bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from helpers import COCO_IMAGE_SIZE, edit_coco, write_coco
from pycocotools import mask as mask_utils

from visiontasks import CocoDataModule, DataError, ShapesDataModule
from visiontasks.data.transforms import apply_pipeline, build_pipeline
from visiontasks.kinds import KINDS
from visiontasks.metrics import detection_metrics

SIZE = COCO_IMAGE_SIZE


def records(data: CocoDataModule) -> dict[int, dict]:
    """Every raw sample of the module by image id."""
    source = data.make_sources()["all"]
    return {sample["image_id"]: sample for sample in (source[i] for i in range(len(source)))}


def test_shapes_export_round_trips_through_the_coco_module(tmp_path):
    shapes = ShapesDataModule(task="instance_segmentation", num_samples=20, image_size=48, max_objects=3)
    root = shapes.export(tmp_path / "coco")
    assert sorted(p.name for p in root.iterdir()) == ["images", "test.json", "train.json", "val.json"]
    coco = CocoDataModule(train_json=str(root / "train.json"), val_json=str(root / "val.json"),
                          test_json=str(root / "test.json"), task="instance_segmentation")  # fmt: skip
    assert coco.class_names == shapes.class_names and coco.category_ids == [1, 2, 3]
    read = coco.split_sources()
    for split, (source, indices) in shapes.split_sources().items():
        loaded, loaded_indices = read[split]
        assert len(loaded_indices) == len(indices) > 0
        for i, k in zip(indices, loaded_indices):
            original, sample = source[int(i)], loaded[int(k)]
            assert sample["image_id"] == int(i)
            np.testing.assert_array_equal(sample["image"], original["image"])  # PNG: lossless
            np.testing.assert_allclose(sample["boxes"], original["boxes"])
            np.testing.assert_array_equal(sample["labels"], original["labels"])
            np.testing.assert_array_equal(sample["masks"], original["masks"])  # RLE: exact to the pixel
            assert (sample["iscrowd"] == 0).all()

    coco.setup("fit")  # and on through the pipeline into a batch: variable-size targets stay lists
    batch = next(iter(coco.train_dataloader()))
    assert isinstance(batch["boxes"], list) and batch["image"].shape[1:] == (3, 48, 48)
    assert all(m.shape[0] == len(b) and m.shape[1:] == (48, 48) for m, b in zip(batch["masks"], batch["boxes"]))


def test_polygon_rle_and_crowd_annotations(tmp_path):
    square = np.zeros(SIZE, np.uint8)
    square[5:15, 20:32] = 1
    compressed = mask_utils.encode(np.asfortranarray(square))
    crowd = np.zeros(SIZE, np.uint8)
    crowd[20:28, 2:10] = 1
    uncompressed = {"size": list(SIZE), "counts": [int(c) for c in _run_lengths(crowd)]}
    path = write_coco(tmp_path, [
        {"bbox": [2, 2, 10, 10], "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},  # a polygon (a square)
        {"bbox": [20, 5, 12, 10], "segmentation": {"size": list(SIZE), "counts": compressed["counts"].decode()},
         "category_id": 2},
        {"bbox": [2, 20, 8, 8], "segmentation": uncompressed, "iscrowd": 1},
    ])  # fmt: skip
    sample = records(CocoDataModule(train_json=str(path), task="instance_segmentation"))[1]
    np.testing.assert_array_equal(sample["labels"], [0, 1, 0])
    np.testing.assert_array_equal(sample["iscrowd"], [0, 0, 1])
    np.testing.assert_array_equal(sample["masks"][1], square)
    np.testing.assert_array_equal(sample["masks"][2], crowd)
    polygon = sample["masks"][0]
    assert polygon[3:12, 3:12].all() and polygon.sum() == pytest.approx(100, abs=25) and not polygon[15:].any()


def _run_lengths(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts (column-major, starting with zeros)."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [len(flat)]])
    counts = np.diff(bounds).tolist()
    return counts if flat[0] == 0 else [0, *counts]


def test_crowd_regions_are_ignored_by_the_map_as_in_coco():
    """A detection inside a crowd region is neither a hit nor a false positive; missing a crowd costs nothing."""
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]]), "labels": torch.tensor([0, 0])}
    found = {"boxes": torch.tensor([[0.0, 0, 10, 10], [22, 22, 30, 30]]), "scores": torch.tensor([0.6, 0.9]),
             "labels": torch.tensor([0, 0])}  # fmt: skip
    values = {}
    for crowd in (False, True):
        metric = detection_metrics()["map"]
        metric.update([found], [dict(target, iscrowd=torch.tensor([0, int(crowd)]))])
        values[crowd] = float(metric.compute()["map"])
    assert values[True] == pytest.approx(1.0) and values[False] < 0.5


def test_non_contiguous_category_ids_map_to_labels_and_back(tmp_path):
    path = write_coco(tmp_path, [{"bbox": [1, 1, 5, 5], "category_id": 42}, {"bbox": [9, 9, 5, 5], "category_id": 7}],
                      categories=((42, "zebra"), (7, "cat"), (90, "owl")))  # fmt: skip
    data = CocoDataModule(train_json=str(path))
    assert data.category_ids == [7, 42, 90] and data.class_names == ["cat", "zebra", "owl"]
    assert data.num_classes == 3
    np.testing.assert_array_equal(records(data)[1]["labels"], [1, 0])
    assert [data.category_ids[label] for label in records(data)[1]["labels"]] == [42, 7]


@pytest.mark.parametrize("keep", [True, False])
def test_images_without_annotations_are_negatives_unless_switched_off(tmp_path, keep):
    path = write_coco(tmp_path, [{"bbox": [1, 1, 5, 5]}], images=3)
    data = CocoDataModule(train_json=str(path), keep_empty_images=keep)
    found = records(data)
    assert sorted(found) == ([1, 2, 3] if keep else [1])
    if keep:
        assert found[2]["boxes"].shape == (0, 4) and found[2]["labels"].shape == (0,)


def test_boxes_outside_the_image_are_clipped_or_dropped_with_a_count(tmp_path, caplog):
    path = write_coco(tmp_path, [
        {"bbox": [30, 20, 20, 20]},     # sticks out right and bottom: clipped to [30, 20, 40, 30]
        {"bbox": [-5, -5, 10, 10]},     # sticks out left and top: clipped to [0, 0, 5, 5]
        {"bbox": [10, 10, 0, 5]},       # zero width: dropped
        {"bbox": [50, 50, 10, 10]},     # wholly outside: dropped
        {"bbox": [5, 5, 10, 10]},       # fine
    ])  # fmt: skip
    with caplog.at_level(logging.WARNING):
        sample = records(CocoDataModule(train_json=str(path)))[1]
    np.testing.assert_allclose(sample["boxes"], [[30, 20, 40, 30], [0, 0, 5, 5], [5, 5, 15, 15]])
    assert "train.json: 2 boxes clipped to their image, 2 empty or outside boxes dropped" in caplog.text


def test_boxes_and_masks_go_through_the_augmentation_together():
    """A crop that loses one object drops its box, label, crowd flag and mask together; a flip moves them alike."""
    masks = np.zeros((3, 40, 60), np.uint8)
    masks[0, 5:15, 5:15] = masks[1, 20:35, 40:55] = masks[2, 25:35, 5:20] = 1
    sample = {"image": np.zeros((40, 60, 3), np.uint8), "masks": masks, "labels": np.array([0, 1, 2]),
              "boxes": np.array([[5, 5, 15, 15], [40, 20, 55, 35], [5, 25, 20, 35]], np.float32),
              "iscrowd": np.array([0, 1, 0])}  # fmt: skip
    crop = build_pipeline([{"class_path": "Crop", "init_args": {"x_min": 30, "y_min": 0, "x_max": 60, "y_max": 40}}],
                          None, KINDS["instance_segmentation"], min_visibility=0.3)  # fmt: skip
    out = apply_pipeline(crop, sample, KINDS["instance_segmentation"])
    np.testing.assert_array_equal(out["labels"], [1])
    np.testing.assert_array_equal(out["iscrowd"], [1])
    np.testing.assert_allclose(out["boxes"], [[10, 20, 25, 35]])
    np.testing.assert_array_equal(out["masks"], masks[1:2, :, 30:])

    flip = build_pipeline(["HorizontalFlip"], (20, 30), KINDS["instance_segmentation"])  # p=0.5 by default: run until flipped
    for _ in range(20):
        out = apply_pipeline(flip, sample, KINDS["instance_segmentation"])
        for box, mask in zip(out["boxes"], out["masks"]):
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1)

    gone = build_pipeline([{"class_path": "Crop", "init_args": {"x_min": 20, "y_min": 0, "x_max": 35, "y_max": 15}}],
                          None, KINDS["instance_segmentation"], min_visibility=0.3)  # fmt: skip
    empty = apply_pipeline(gone, sample, KINDS["instance_segmentation"])  # no object left: a valid negative sample
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 15, 15) and len(empty["labels"]) == 0


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "img1.png").unlink(), r"img1\.png: image file not found \(listed in .*train\.json\)"),
        (lambda root: (root / "train.json").write_text("[1, 2]"), r"train\.json: not a COCO JSON file"),
        (lambda root: (root / "train.json").write_text('{"images": []'), r"train\.json: not a valid JSON file"),
        (lambda root: edit_coco(root, lambda c: c["annotations"][0].update(image_id=99)),
         r"train\.json: annotation 1 refers to image_id 99, which is not among the file's images"),
        (lambda root: edit_coco(root, lambda c: c["annotations"][0].update(category_id=5)),
         r"train\.json: annotation 1 has category_id 5, which is not a known category"),
        (lambda root: edit_coco(root, lambda c: c["annotations"][0].update(bbox=[1, 2, float("nan"), 4])),
         r"train\.json: annotation 1: bbox .* holds NaN"),
        (lambda root: edit_coco(root, lambda c: c["annotations"][0].update(bbox=[1, 2, -3, 4])),
         r"train\.json: annotation 1: bbox .* negative width or height"),
        (lambda root: edit_coco(root, lambda c: c["images"][0].pop("file_name")), r"train\.json: images\[0\] lacks \['file_name'\]"),
    ],
)  # fmt: skip
def test_bad_input_fails_at_setup_naming_the_file(tmp_path, damage, message):
    path = write_coco(tmp_path, [{"bbox": [1, 1, 5, 5]}])
    damage(tmp_path)
    with pytest.raises(DataError, match=message):
        CocoDataModule(train_json=str(path)).setup("fit")
