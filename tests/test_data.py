"""The shared data layer: splits, pipelines from YAML specs, the built-in shapes, W&B mode."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import pytorch_lightning as pl
from PIL import Image

from visiontasks import ImageFolderDataModule, ShapesDataModule
from visiontasks.data.splits import split_off
from visiontasks.data.transforms import build_pipeline
from visiontasks.kinds import KINDS
from visiontasks.wandb_mode import choose_wandb_mode


def test_split_is_seeded_and_stratified():
    labels = np.array([0] * 70 + [1] * 30)
    kept, taken = split_off(np.arange(100), 0.3, seed=5, labels=labels)
    assert len(taken) == 30 and set(kept) | set(taken) == set(range(100)) and not set(kept) & set(taken)
    assert (labels[taken] == 0).sum() == 21 and (labels[taken] == 1).sum() == 9
    again, _ = split_off(np.arange(100), 0.3, seed=5, labels=labels)
    other, _ = split_off(np.arange(100), 0.3, seed=6, labels=labels)
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)


def test_datamodule_splits_70_30_then_90_10_and_shapes_are_deterministic():
    data = ShapesDataModule(task="classification", num_samples=200, image_size=32)
    data.setup("fit")
    sizes = {name: len(data.datasets[name]) for name in ("train", "val", "test")}
    assert sizes == {"test": 60, "val": 15, "train": 125}  # per-class rounding
    first = data.datasets["train"][0]["image"]
    assert first.shape == (3, 32, 32) and 0 <= float(first.min()) and float(first.max()) <= 1
    again = ShapesDataModule(task="classification", num_samples=200, image_size=32)
    again.setup("fit")
    assert np.array_equal(first.numpy(), again.datasets["train"][0]["image"].numpy())


@pytest.mark.parametrize("task", ["classification", "localization", "detection", "instance_segmentation", "segmentation"])
def test_shapes_targets_agree_with_each_other(task):
    data = ShapesDataModule(task=task, num_samples=20, image_size=48, max_objects=3)
    sample = data.make_sources()["all"][3]
    assert sample["image"].shape == (48, 48, 3) and sample["image"].dtype == np.uint8
    if task == "segmentation":
        assert set(np.unique(sample["mask"])) - {0} <= {1, 2, 3} and (sample["mask"] > 0).any()
    if task == "localization":
        x0, y0, x1, y1 = sample["box"]
        assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
    if task == "instance_segmentation":
        for box, mask in zip(sample["boxes"], sample["masks"]):
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box.tolist()


def _augmented_batches(seed: int, num_workers: int) -> list[np.ndarray]:
    pl.seed_everything(seed)
    data = ShapesDataModule(task="classification", num_samples=40, image_size=32, batch_size=10,
                            num_workers=num_workers, train_transforms=["HorizontalFlip", "VerticalFlip", "RandomRotate90"])  # fmt: skip
    data.setup("fit")
    data.datasets["train"].indices = [0] * len(data.datasets["train"])  # one image, many draws
    return [batch["image"].numpy() for batch in data._loader("train")]


def test_augmentation_repeats_with_the_seed_and_differs_between_workers():
    first, again, other = _augmented_batches(0, 0), _augmented_batches(0, 0), _augmented_batches(1, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    two_workers = _augmented_batches(0, 2)  # worker 0 and worker 1 each load one batch
    assert not np.array_equal(two_workers[0], two_workers[1])
    assert all(np.array_equal(a, b) for a, b in zip(two_workers, _augmented_batches(0, 2)))


def test_pipeline_from_yaml_specs_and_a_clear_error_for_unknown_transforms():
    pipeline = build_pipeline(
        [{"class_path": "HorizontalFlip", "init_args": {"p": 1.0}}, "VerticalFlip",
         {"class_path": "albumentations.OneOf", "init_args": {"transforms": ["Blur", "GaussNoise"]}}],
        image_size=(16, 16),
        kind=KINDS["classification"],
    )  # fmt: skip
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    assert pipeline(image=image)["image"].shape == (16, 16, 3)
    with pytest.raises(ValueError, match="Unknown transform 'Flipp'"):
        build_pipeline([{"class_path": "Flipp"}], None, KINDS["classification"])


def test_wandb_goes_offline_without_a_login(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert choose_wandb_mode() == "offline"
    assert "wandb sync" in capsys.readouterr().out
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert choose_wandb_mode() == "disabled"


def write_class_folders(root, sizes: list[tuple[int, int]]) -> None:
    """Two classes of plain images with the given (height, width) sizes, cycling over them."""
    for i in range(24):
        folder = root / ("a", "b")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        height, width = sizes[i % len(sizes)]
        Image.fromarray(np.full((height, width, 3), 10 * i, np.uint8)).save(folder / f"{i}.png")


def test_image_size_auto_follows_the_files_and_the_checkpoint(tmp_path, caplog):
    """auto: no resize when every file has one size; else the median size rounded to 32, said in the log;
    a restored checkpoint's training size wins over the files at hand (a predict folder of photos)."""
    write_class_folders(tmp_path / "same", [(50, 70)])
    same = ImageFolderDataModule(root=str(tmp_path / "same"), batch_size=4)
    same.setup("fit")
    assert same.image_size is None and same.datasets["val"][0]["image"].shape == (3, 50, 70)

    write_class_folders(tmp_path / "mixed", [(40, 50), (90, 100), (100, 130), (120, 140)])
    mixed = ImageFolderDataModule(root=str(tmp_path / "mixed"), batch_size=4)
    with caplog.at_level(logging.INFO):
        mixed.setup("fit")
    assert mixed.image_size == (96, 128)  # median 95 x 115, rounded to multiples of 32
    assert "resizing to 96x128" in caplog.text and mixed.datasets["train"][0]["image"].shape == (3, 96, 128)
    assert mixed.state_dict()["image_size"] == [96, 128]

    photos = ImageFolderDataModule(root=str(tmp_path / "same"), predict_dir=str(tmp_path / "same" / "a"))
    photos.setup("predict")
    assert photos.datasets["predict"][0]["image"].shape == (3, 50, 70)  # the photos' own size, until...
    photos.load_state_dict(mixed.state_dict())  # ... a checkpoint says what the network was trained at
    assert photos.datasets["predict"][0]["image"].shape == (3, 96, 128)
    fixed = ImageFolderDataModule(root=str(tmp_path / "same"), image_size=32, predict_dir=str(tmp_path / "same" / "a"))
    fixed.setup("predict")
    fixed.load_state_dict(mixed.state_dict())  # a size the user set stays
    assert fixed.datasets["predict"][0]["image"].shape == (3, 32, 32)
