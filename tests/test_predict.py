"""Each shipped config's checkpoint, restored in Python, predicts on user photos as the CLI does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, newest_run, run_cli, tiny
from PIL import Image

from visiontasks import (
    ClassicSegmentationTask,
    ClassificationTask,
    DetectionTask,
    InstanceSegmentationTask,
    LocalizationTask,
    SegmentationTask,
)
from visiontasks.data.inputs import input_dataset
from visiontasks.errors import DataError
from visiontasks.export import export
from visiontasks.results import ClassificationResult, DetectionResult, LocalizationResult, SegmentationResult

SLOW = pytest.mark.slow
CONFIG_TASKS = [
    ("lenet5.yaml", ClassificationTask),
    pytest.param("classification.yaml", ClassificationTask, marks=SLOW),
    pytest.param("localization.yaml", LocalizationTask, marks=SLOW),
    pytest.param("unet.yaml", SegmentationTask, marks=SLOW),
    pytest.param("deeplabv3.yaml", SegmentationTask, marks=SLOW),
    pytest.param("classic_threshold.yaml", ClassicSegmentationTask, marks=SLOW),
    pytest.param("classic_edges.yaml", ClassicSegmentationTask, marks=SLOW),
    pytest.param("classic_kmeans.yaml", ClassicSegmentationTask, marks=SLOW),
    pytest.param("faster_rcnn.yaml", DetectionTask, marks=SLOW),
    pytest.param("mask_rcnn.yaml", InstanceSegmentationTask, marks=SLOW),
]
PHOTOS = {"a.jpg": ("RGB", (48, 80)), "b.png": ("L", (60, 40)), "c.png": ("RGBA", (50, 50))}  # mode, (height, width)


def user_photos(folder: Path = Path("photos")) -> Path:
    """Photos of other sizes than the training size, in several modes and formats, each with a bright square."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (mode, (height, width)) in PHOTOS.items():
        pixels = rng.integers(0, 90, (height, width, 4), dtype=np.uint8)
        pixels[height // 4 : height // 2, width // 4 : width // 2] = 230
        pixels[..., 3] = 255
        Image.fromarray(pixels, "RGBA").convert(mode).save(folder / name)
    return folder


def assert_same(result, cli_out: Path, written: dict) -> None:
    """``result`` (Python) agrees with what the CLI's predict wrote for the same file."""
    name = Path(result.path).name
    if isinstance(result, SegmentationResult):
        mask = np.asarray(Image.open(cli_out / "predictions" / f"{Path(name).stem}.png"))
        assert mask.shape == result.mask.shape and (mask == result.mask).mean() > 0.99
    elif isinstance(result, DetectionResult):
        entries = sorted(written[name], key=lambda e: -e["score"])[:5]
        ours = sorted(result.coco(), key=lambda e: -e["score"])[:5]
        assert len(ours) == len(entries) == min(5, len(result.scores)), (len(ours), len(entries), len(result.scores))
        for theirs, mine in zip(entries, ours):
            assert mine["category_id"] == theirs["category_id"] and abs(mine["score"] - theirs["score"]) < 1e-3
            assert np.allclose(mine["bbox"], theirs["bbox"], atol=0.5)
    else:
        row = written[result.path]
        assert row["label"] == result.label and abs(float(row["score"]) - result.score) < 1e-3
        if isinstance(result, LocalizationResult):
            assert np.allclose([float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")], result.box, atol=0.2)


def cli_predictions(folder: Path) -> dict:
    """What the CLI wrote: COCO entries by file name (detection), else the CSV rows by path (every task writes both
    files; masks are compared by their PNGs)."""
    entries = json.loads((folder / "predictions.json").read_text())
    if entries and "category_id" in entries[0]:
        by_file: dict = {name: [] for name in PHOTOS}
        for entry in entries:
            by_file[entry["file_name"]].append(entry)
        return by_file
    rows = {row["path"]: row for row in csv.DictReader(open(folder / "predictions.csv"))}
    assert len(rows) == len(PHOTOS) and len(entries) == len(PHOTOS), rows
    return rows


@pytest.mark.parametrize("config, task_class", CONFIG_TASKS)
def test_restored_checkpoint_predicts_on_user_photos_as_the_cli_does(config, task_class):
    config, size = str(CONFIGS / config), 64 if task_class in (DetectionTask, InstanceSegmentationTask) else 32
    args = tiny(num_samples=24, image_size=size)
    run_cli("fit", "--config", config, *args)
    checkpoint = newest_run() / "checkpoints" / "last.ckpt"
    photos = user_photos()
    run_cli("predict", "--config", config, f"--ckpt_path={checkpoint}", f"--data.init_args.predict_dir={photos}",
            "--writer.draw=true", "--writer.draw_threshold=0", *args)  # fmt: skip
    cli_out = newest_run()

    task = task_class.load_from_checkpoint(checkpoint)
    results = task.predict(photos, batch_size=2)  # a folder: its images, sorted by name
    assert [Path(r.path).name for r in results] == list(PHOTOS)
    assert [r.orig_size for r in results] == [size for _, size in PHOTOS.values()]
    written = cli_predictions(cli_out)
    for result in results:
        assert_same(result, cli_out, written)
        drawn = Image.open(cli_out / "predictions" / f"{result.name}_overlay.png")
        assert drawn.size[::-1] == result.orig_size and result.plot().shape == (*result.orig_size, 3)

    # the same images as PIL images and numpy arrays (no files): the same predictions
    arrays = [np.asarray(Image.open(photos / name).convert("RGB")) for name in PHOTOS]
    again = task.predict([Image.open(photos / name) for name in PHOTOS] + arrays, batch_size=4)
    for first, second in zip(results * 2, again):
        assert second.path == "" and second.orig_size == first.orig_size
        assert type(second) is type(first)
        if isinstance(first, (ClassificationResult, LocalizationResult)):
            assert second.label == first.label and abs(second.score - first.score) < 1e-4
        if isinstance(first, SegmentationResult):
            assert (second.mask == first.mask).mean() > 0.99
        if isinstance(first, DetectionResult):
            assert len(second.scores) == len(first.scores)
            assert np.allclose(second.scores[:3], first.scores[:3], atol=1e-3)
    detections = [len(r.scores) for r in results if isinstance(r, DetectionResult)]
    assert not detections or sum(detections) > 0, "the detector found nothing: no scores were compared"
    assert (again[0].plot().shape == (48, 80, 3)) and (again[0].image() == arrays[0]).all()

    # export: ONNX by the CLI into the run folder, TorchScript from Python; both give what the task gives
    if task_class is ClassicSegmentationTask:
        with pytest.raises(SystemExit, match="cannot be exported"):
            run_cli("export", "--config", config, f"--ckpt_path={checkpoint}", *args)
        return
    run_cli("export", "--config", config, f"--ckpt_path={checkpoint}", *args)
    onnx_file = checkpoint.parent.parent / "export" / "model.onnx"
    info = json.loads(onnx_file.with_suffix(".json").read_text())
    assert info["class_names"] == task.class_names and info["format"] == "onnx" and set(info["outputs"])
    assert_export_parity(task, onnx_file, photos)
    assert_export_parity(task, export(task, "torchscript", Path("elsewhere/model.pt")), photos)


def assert_export_parity(task, model_file: Path, photos: Path) -> None:
    """The exported file's outputs equal the task's on user photos: for the detectors and segmentation at the
    photo's own size (not the training size), for the others prepared as ``predict`` prepares them."""
    import onnxruntime
    import torch

    onnx = model_file.suffix == ".onnx"
    run = onnxruntime.InferenceSession(str(model_file)).run if onnx else torch.jit.load(str(model_file))
    names = list(json.loads(model_file.with_suffix(".json").read_text())["outputs"])
    if isinstance(task, DetectionTask):
        image = torch.from_numpy(np.asarray(Image.open(photos / "a.jpg").convert("RGB"))).permute(2, 0, 1) / 255
        with torch.no_grad():
            expected = task.model.eval()([image])[0]
            got = dict(zip(names, run(None, {"image": image.numpy()}))) if onnx else run([image])[1][0]
        top = min(5, len(expected["scores"]))
        assert top > 0 and len(got["scores"]) == len(expected["scores"]), (len(got["scores"]), len(expected["scores"]))
        for name in ("boxes", "scores", "labels"):
            assert np.allclose(np.asarray(got[name])[:top], expected[name][:top].numpy(), atol=1e-2), name
        return
    if isinstance(task, SegmentationTask):
        images = torch.from_numpy(np.asarray(Image.open(photos / "a.jpg").convert("RGB"))).permute(2, 0, 1)[None] / 255
    else:
        dataset = input_dataset(photos, task.input_settings())
        images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    module = task.eval().export_graph().module
    with torch.no_grad():
        expected = module(images)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = run(None, {"images": images.numpy()}) if onnx else run(images)
        got = got if isinstance(got, (tuple, list)) else (got,)
    for name, mine, theirs in zip(names, got, expected):
        assert np.asarray(mine).shape == tuple(theirs.shape) and np.allclose(np.asarray(mine), theirs.numpy(), atol=1e-4), name


def test_predict_takes_floats_tensors_and_grey_arrays_and_says_what_it_cannot_take(tmp_path):
    import torch

    task = ClassificationTask(model="lenet5", num_classes=3, in_channels=1, class_names=["a", "b", "c"])
    grey = np.random.default_rng(0).random((30, 20), dtype=np.float32)
    results = task.predict([grey, torch.from_numpy(grey)[None], torch.rand(2, 3, 24, 24), (grey * 255).astype(np.uint8)])
    assert [r.orig_size for r in results] == [(30, 20), (30, 20), (24, 24), (24, 24), (30, 20)]
    assert results[0].label == results[1].label and abs(results[0].score - results[1].score) < 1e-6
    assert all(r.label in ("a", "b", "c") and r.image().dtype == np.uint8 for r in results)
    with pytest.raises(DataError, match="missing.png: image file not found"):
        task.predict("missing.png")
    with pytest.raises(DataError, match=r"values in \[0, 1\]"):
        task.predict(np.full((8, 8, 3), 7.0))
    with pytest.raises(DataError, match="cannot predict on a int"):
        task.predict([3])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_large_photo_is_read_smaller_for_the_network_and_predicted_in_its_own_pixels(tmp_path, monkeypatch, suffix):
    """Over LARGE_PIXELS (lowered here) a photo that is resized next is read shrunk (a JPEG by its decoder's
    scaling, a PNG by whole blocks), upright; the mask and the drawing keep the file's own upright size."""
    from visiontasks.data import images

    monkeypatch.setattr(images, "LARGE_PIXELS", 100 * 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 200 wide x 120 high, shown 120 wide x 200 high
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)).save(tmp_path / f"big{suffix}", exif=exif)
    settings = {"image_size": 16, "in_channels": 3}
    sample = input_dataset(tmp_path / f"big{suffix}", settings).source[0]
    read = sample["image"].shape  # PNG: 200 // 3 x 120 // 3 (the shorter side kept >= 2 x 16); JPEG: decoded at 1/2
    assert read == ((66, 40, 3) if suffix == ".png" else (100, 60, 3)) and sample["orig_size"] == (200, 120)
    task = SegmentationTask(num_classes=3, model_options={"base_channels": 4, "depth": 2})
    task.saved_inputs = settings
    (result,) = task.predict(tmp_path / f"big{suffix}")
    assert result.orig_size == (200, 120) and result.mask.shape == (200, 120) and result.plot().shape == (200, 120, 3)


def test_predict_skips_an_unreadable_photo_as_the_predict_command_does(tmp_path, caplog):
    """One policy for both ways to predict: an unreadable file is skipped with one warning naming it and
    why; nothing readable left is an error naming the folder."""
    task = ClassificationTask(model="lenet5", num_classes=2, in_channels=1, class_names=["a", "b"])
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level("WARNING", logger="visiontasks"):
        results = task.predict(tmp_path)
    assert [Path(r.path).name for r in results] == ["good.png"] and results[0].orig_size == (20, 30)
    skipped = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].startswith(f"Skipped 1 unreadable images: {tmp_path / 'broken.jpg'} (")
    (tmp_path / "good.png").write_bytes(b"truncated")
    with pytest.raises(DataError, match=rf"{tmp_path}: none of the 2 images can be read \("):
        task.predict(tmp_path)


def test_old_checkpoints_with_drawing_options_still_load(tmp_path):
    import torch

    task = LocalizationTask(model="simple_cnn", num_classes=2)
    checkpoint = {"state_dict": task.state_dict(), "pytorch-lightning_version": "2.4.0",
                  "hyper_parameters": {**task.hparams, "draw_boxes": True}}  # fmt: skip
    torch.save(checkpoint, tmp_path / "old.ckpt")
    restored = LocalizationTask.load_from_checkpoint(tmp_path / "old.ckpt")
    assert "draw_boxes" not in restored.hparams
    (result,) = restored.predict(np.zeros((20, 30, 3), np.uint8))
    assert result.orig_size == (20, 30) and len(result.box) == 4
