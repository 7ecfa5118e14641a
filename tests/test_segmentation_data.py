"""Image + mask folders: reading index, palette and colour masks, joint augmentation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import blocks, write_pairs
from PIL import Image

from visiontasks import DataError, SegmentationFolderDataModule, ShapesDataModule
from visiontasks.results.draw import voc_palette

CLASSES = ["background", "circle", "square", "triangle"]


def module(root, **kwargs) -> SegmentationFolderDataModule:
    defaults = {"class_names": ["background", "bright"], "val_fraction": 0.25, "test_fraction": 0.25}
    return SegmentationFolderDataModule(root=str(root), **{**defaults, **kwargs})


def test_exported_shapes_read_back_identically(tmp_path):
    shapes = ShapesDataModule(task="segmentation", num_samples=12, image_size=32)
    shapes.export(tmp_path)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["test", "train", "val"]
    data = SegmentationFolderDataModule(root=str(tmp_path), class_names=shapes.class_names, batch_size=4)
    data.setup("fit")
    expected = {name: len(indices) for name, (_, indices) in shapes.split_sources().items()}
    assert {name: len(data.datasets[name]) for name in ("train", "val", "test")} == expected
    sample = data.datasets["test"].source[0]
    index = int(sample["path"].rsplit("/", 1)[1].split(".")[0])
    np.testing.assert_array_equal(sample["mask"], shapes.split_sources()["test"][0][index]["mask"])
    batch = next(iter(data.val_dataloader()))
    assert batch["mask"].dtype == torch.long and batch["mask"].shape == (len(batch["image"]), 32, 32)


def test_palette_and_colour_masks_map_to_classes(tmp_path):
    write_pairs(tmp_path / "colour", colour=True)
    coloured = module(tmp_path / "colour", class_colors=[[0, 0, 0], [128, 0, 0]])
    coloured.setup("fit")
    sample = coloured.datasets["train"].source[0]
    np.testing.assert_array_equal(sample["mask"], (sample["image"][..., 0] > 128).astype(np.uint8))

    write_pairs(tmp_path / "palette")  # a VOC-style palette PNG: the pixel values are the classes
    mask = (blocks(0)[..., 0] > 128).astype(np.uint8)
    mask[:2] = 255
    palette = Image.fromarray(mask, mode="P")
    palette.putpalette(voc_palette().tobytes())
    palette.save(tmp_path / "palette" / "masks" / "0.png")
    Image.fromarray(np.stack([mask] * 3, axis=-1)).save(tmp_path / "palette" / "masks" / "1.png")  # grey saved as RGB
    indexed = module(tmp_path / "palette")
    indexed.setup("fit")
    np.testing.assert_array_equal(indexed.datasets["train"].source[0]["mask"], mask)
    np.testing.assert_array_equal(indexed.datasets["train"].source[1]["mask"], mask)


def test_spatial_transforms_move_image_and_mask_together(tmp_path):
    write_pairs(tmp_path, count=4, size=(64, 56))
    spatial = [
        {"class_path": "HorizontalFlip", "init_args": {"p": 1.0}},
        {"class_path": "VerticalFlip", "init_args": {"p": 0.5}},
        {"class_path": "RandomRotate90", "init_args": {"p": 1.0}},
        {"class_path": "Rotate", "init_args": {"limit": 30, "p": 1.0}},
        {"class_path": "RandomResizedCrop", "init_args": {"size": [40, 40], "scale": [0.3, 1.0]}},
        {"class_path": "RandomBrightnessContrast", "init_args": {"brightness_limit": 0.1, "contrast_limit": 0.1, "p": 1.0}},
    ]
    data = module(tmp_path, train_transforms=spatial, image_size=[36, 44])
    data.setup("fit")
    for i in range(len(data.datasets["train"])):
        for _ in range(4):
            sample = data.datasets["train"][i]
            image, mask = sample["image"], sample["mask"]
            assert image.shape[-2:] == mask.shape == (36, 44)
            assert set(mask.unique().tolist()) <= {0, 1}  # nearest neighbour: no blended class values
            from_pixels = (image[0] > 0.5).long()
            # Judge pixels 2+ pixels away from block edges, the frame and the black corners a rotation
            # fills in: interpolation blends the image there, while the mask takes the nearest value.
            grown = F.max_pool2d(mask[None, None].float(), 5, 1, 2)[0, 0]
            shrunk = -F.max_pool2d(-mask[None, None].float(), 5, 1, 2)[0, 0]
            judged = (grown == shrunk) & (F.max_pool2d(-image.sum(0, keepdim=True), 5, 1, 2)[0] < 0)
            judged[:2], judged[-2:], judged[:, :2], judged[:, -2:] = False, False, False, False
            agreement = (from_pixels == mask)[judged].float().mean()
            assert agreement > 0.99, f"image and mask moved apart: {agreement:.3f} of pixels agree"


def test_colour_transforms_leave_the_mask_alone(tmp_path):
    write_pairs(tmp_path)
    colour = [{"class_path": "ColorJitter", "init_args": {"brightness": 0.5, "hue": 0.5, "p": 1.0}}]
    data = module(tmp_path, train_transforms=colour)
    data.setup("fit")
    sample, raw = data.datasets["train"][0], data.datasets["train"].source[data.datasets["train"].indices[0]]
    np.testing.assert_array_equal(sample["mask"].numpy(), raw["mask"])


def test_train_val_test_folders_are_used_as_given(tmp_path):
    for split, count in (("train", 3), ("val", 2)):
        write_pairs(tmp_path / "tmp", count)
        for kind in ("images", "masks"):
            (tmp_path / "data" / kind).mkdir(parents=True, exist_ok=True)
            (tmp_path / "tmp" / kind).rename(tmp_path / "data" / kind / split)
    data = module(tmp_path / "data", mask_suffix="")
    data.setup("fit")
    assert (len(data.datasets["train"]), len(data.datasets["val"]), len(data.datasets["test"])) == (3, 2, 2)


def test_mask_suffix_and_skipping_images_without_masks(tmp_path):
    write_pairs(tmp_path, count=4)
    for path in (tmp_path / "masks").iterdir():
        path.rename(path.with_name(f"{path.stem}_mask.png"))
    (tmp_path / "masks" / "3_mask.png").unlink()
    data = module(tmp_path, mask_suffix="_mask", unmatched_images="skip")
    data.setup("fit")
    assert sum(len(data.datasets[split]) for split in ("train", "val", "test")) == 3


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "masks" / "1.png").unlink(), r"images/1\.png: image without a mask"),
        (lambda root: (root / "images" / "2.png").unlink(), r"masks/2\.png: mask without an image"),
        (lambda root: Image.new("L", (10, 12)).save(root / "masks" / "0.png"), r"masks/0\.png: mask is 10x12 .* is 40x48"),
        (lambda root: Image.fromarray(np.full((48, 40), 7, np.uint8)).save(root / "masks" / "3.png"),
         r"masks/3\.png: mask values \[7\] are not class numbers 0\.\.1"),
        (lambda root: (root / "images" / "1.png").write_bytes(b"not a png"), r"images/1\.png: cannot read this image"),
        (lambda root: (root / "masks" / "1.png").write_bytes(b"\x89PNG broken"), r"masks/1\.png: cannot read this image"),
        (lambda root: Image.fromarray(voc_palette()[np.ones((48, 40), int)]).save(root / "masks" / "0.png"),
         r"masks/0\.png: mask is a colour \(RGB\) image.*class_colors"),
    ],
)  # fmt: skip
def test_bad_input_fails_at_setup_naming_the_file(tmp_path, damage, message):
    write_pairs(tmp_path)
    damage(tmp_path)
    data = module(tmp_path)
    with pytest.raises(DataError, match=message):
        data.setup("fit")


def test_unknown_colour_is_named(tmp_path):
    write_pairs(tmp_path, colour=True)
    data = module(tmp_path, class_colors=[[0, 0, 0], [0, 128, 0]])
    with pytest.raises(DataError, match=r"masks/\d\.png: mask colours \[\(128, 0, 0\)\] belong to no class"):
        data.setup("fit")
