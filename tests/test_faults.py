"""Fault injection: hostile data, bad options, signals, full disks and damaged files, each with its outcome.

Every case writes a tiny input (or injects a fault) and expects either one clear error naming the
file or option and the fix, or the documented handling, checked on the result and the log, with
nothing lost. The runner is :func:`test_bad_inputs.run_case` (the matrix of ordinary bad inputs);
this file holds the faults of issue 27 and their neighbours. What is checked is listed in
docs/faults.md.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from visiontasks import CsvDataModule, OptionError
from helpers import CONFIGS, RESUMABLE, class_folders, edit_coco, run_cli, tiny, write_coco, write_image, write_pairs
from test_bad_inputs import (
    LENET,
    SMALL,
    Case,
    csv_data,
    csv_file,
    distinct_pictures,
    folders,
    photos,
    predict_dir,
    run_case,
    segmentation,
    sizes,
    two_classes,
)
from test_bad_inputs import coco as coco_data

FAULTS: dict[str, Case] = {}


def fault(name: str, make: Callable[[], Callable[[], Any]], error: str | None = None, check=None,
          raises: type[BaseException] | None = None) -> None:  # fmt: skip
    from visiontasks import DataError

    FAULTS[name] = Case(make, error, check, raises or DataError)


# ----- COCO: every field checked before pycocotools sees it ---------------------------------------
def segmented(*polygon: Any, bbox=(1, 1, 5, 5), task: str = "instance_segmentation", **annotation: Any) -> Callable[[], Any]:
    segmentation = list(polygon) if polygon else [[1, 1, 6, 1, 6, 6, 1, 6]]
    return coco_data(annotations=[{"bbox": list(bbox), "segmentation": segmentation, **annotation}], task=task)


def coco_sources(annotations: list[dict], task: str = "instance_segmentation") -> Callable[[], Any]:
    """The module's one source (no split: two images are too few for three splits)."""
    from visiontasks import CocoDataModule

    path = write_coco(Path("c"), annotations)
    return lambda: CocoDataModule(train_json=str(path), task=task).make_sources()["all"]


def coco_edit(change: Callable[[dict], Any], **kwargs: Any) -> Callable[[], Any]:
    return coco_data(lambda r: edit_coco(r, change), **kwargs)


NAN = float("nan")
fault("coco: NaN in a polygon", lambda: segmented([1, 1, NAN, 1, 6, 6]), r"c/train\.json: annotation 1: polygon .* NaN or infinity")
fault("coco: infinity in a polygon", lambda: segmented([1, 1, float("inf"), 1, 6, 6]), r"annotation 1: polygon .* NaN or infinity")
fault("coco: NaN polygon in a detection file is refused too", lambda: segmented([1, 1, NAN, 1, 6, 6], task="detection"),
      r"annotation 1: polygon .* NaN or infinity")
fault("coco: odd-length polygon", lambda: segmented([1, 1, 6, 1, 6]), r"annotation 1: polygon \[1, 1, 6, 1, 6\] is not a flat")
fault("coco: polygon of two points", lambda: segmented([1, 1, 6, 6]), r"annotation 1: polygon .* 3 or more points")
fault("coco: polygon holding a string", lambda: segmented([1, 1, "6", 1, 6, 6]), r"annotation 1: polygon .* holds a non-number")
fault("coco: polygon far outside the image", lambda: segmented([1, 1, 1e9, 1, 6, 1e9]), r"annotation 1: polygon .* lies far outside the 40x30 image")
fault("coco: polygon that is not a list", lambda: segmented("1 1 6 1 6 6"), r"annotation 1: polygon 1 1 6 1 6 6 is not a flat")
fault("coco: bbox that disagrees with its polygon", lambda: segmented([1, 1, 6, 1, 6, 6, 1, 6], bbox=(20, 10, 5, 5)),
      r"annotation 1: bbox \[20\.0, 10\.0, 5\.0, 5\.0\] disagrees with its polygon, which spans \[1\.0, 1\.0, 5\.0, 5\.0\] .*fix the bbox")
fault("coco: bbox of its polygon (within rounding) is accepted",
      lambda: coco_sources(annotations=[{"bbox": [1, 1, 5, 5], "segmentation": [[1.2, 0.7, 6.4, 1, 6, 6.3, 1, 6]]}]),
      check=lambda source, log: len(source.records[0].labels) == 1 and source[0]["masks"].sum() > 20)
fault("coco: duplicate image ids", lambda: coco_edit(lambda c: c["images"][1].update(id=1)),
      r"c/train\.json: images\[1\] repeats id 1 of images\[0\]; ids must be unique")
fault("coco: duplicate annotation ids", lambda: coco_edit(lambda c: c["annotations"][1].update(id=1)),
      r"c/train\.json: annotations\[1\] repeats id 1 of annotations\[0\]")
fault("coco: duplicate category ids", lambda: coco_edit(lambda c: c["categories"][1].update(id=1)),
      r"c/train\.json: categories\[1\] repeats id 1 of categories\[0\]")
fault("coco: duplicate category names (case and spaces)", lambda: coco_edit(lambda c: c["categories"][1].update(name=" Cat")),
      r"c/train\.json: categories 1 \('cat'\) and 2 \(' Cat'\) have one name .*give each category one entry")
fault("coco: category_id given as a string", lambda: coco_edit(lambda c: c["annotations"][0].update(category_id="2")),
      r"c/train\.json: annotations\[0\] has category_id '2' \(str\); COCO ids are integers: write 2 without quotes")
fault("coco: image id given as a float", lambda: coco_edit(lambda c: c["images"][0].update(id=1.5)),
      r"c/train\.json: images\[0\] has id 1\.5 \(float\); COCO ids are integers")
fault("coco: category id true", lambda: coco_edit(lambda c: c["categories"][0].update(id=True)),
      r"categories\[0\] has id True \(bool\)")
fault("coco: negative image width", lambda: coco_edit(lambda c: c["images"][0].update(width=-40)),
      r"c/train\.json: image 1 has width -40; it must be a positive integer")
fault("coco: iscrowd 2", lambda: coco_edit(lambda c: c["annotations"][0].update(iscrowd=2)),
      r"c/train\.json: annotation 1 has iscrowd 2; COCO's iscrowd is 0 or 1")
fault("coco: RLE counts that do not cover the image",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": {"size": [30, 40], "counts": [5, 10]}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE counts add up to 15 pixels, the 40x30 image has 1200")
fault("coco: RLE with a negative run",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": {"size": [30, 40], "counts": [-5, 1205]}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE counts hold a negative or non-integer run")
fault("coco: RLE size that is not [height, width]",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "segmentation": {"size": "30x40", "counts": "abc"}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE size '30x40' is not \[height, width\]")


# ----- segmentation masks: lossless, integer, in range, never wrapped ----------------------------
def masks(damage: Callable[[Path], Any], **kwargs: Any) -> Callable[[], Any]:
    """The pairs of ``seg/`` (4 images, masks of 0/1) after ``damage``."""
    return segmentation(write_pairs, damage, **kwargs)


def save_mask(array: np.ndarray, name: str = "0.png", mode: str | None = None, **options: Any) -> Callable[[Path], Any]:
    """Replace mask ``0`` by ``array`` (written as ``name``)."""

    def damage(root: Path) -> None:
        (root / "masks" / "0.png").unlink()
        Image.fromarray(array, mode).save(root / "masks" / name, **options)

    return damage


MASK = np.zeros((48, 40), np.uint8)
MASK[10:30, 10:30] = 1
fault("mask: saved as JPEG", lambda: masks(save_mask(MASK, "0.jpg")),
      r"seg/masks/0\.jpg: mask saved as JPEG; masks must be lossless \(PNG, BMP, TIFF, GIF, PPM\).*Save masks as PNG")
fault("mask: saved as WebP", lambda: masks(save_mask(MASK, "0.webp")), r"seg/masks/0\.webp: mask saved as WEBP; masks must be lossless")
fault("mask: floating-point (mode F)", lambda: masks(save_mask(MASK.astype(np.float32), "0.tif")),
      r"seg/masks/0\.tif: mask holds floating-point values \(mode F\); save integer class numbers")
fault("mask: int32 with a negative value is not wrapped", lambda: masks(save_mask(np.where(MASK, -1, 0).astype(np.int32), "0.tif")),
      r"seg/masks/0\.tif: mask values \[-1\] are not class numbers 0\.\.1")
fault("mask: int32 value 256 is not wrapped to 0", lambda: masks(save_mask(np.where(MASK, 256, 0).astype(np.int32), "0.tif")),
      r"seg/masks/0\.tif: mask values \[256\] are not class numbers")
fault("mask: 16-bit value 1000", lambda: masks(save_mask(np.where(MASK, 1000, 0).astype(np.uint16), "0.png")),
      r"seg/masks/0\.png: mask values \[1000\] are not class numbers")
def tiff_and_bmp(root: Path) -> None:
    save_mask(MASK, "0.tif")(root)
    (root / "masks" / "1.png").rename(root / "masks" / "1.bmp")  # a PNG named .bmp is still lossless: the format decides
    Image.open(root / "masks" / "1.bmp").save(root / "masks" / "1.bmp", format="BMP")


fault("mask: TIFF and BMP index masks are read", lambda: masks(tiff_and_bmp),
      check=lambda data, log: sum(sizes(data)) == 4)
fault("mask: every mask all ignore (255) is refused",
      lambda: masks(lambda r: [Image.new("L", (40, 48), 255).save(m) for m in (r / "masks").iterdir()]),
      r"seg/masks/\d\.png: every mask is all 255 \(ignore\), so there is nothing to learn")
fault("mask: one all-ignore mask is named in a warning", lambda: masks(save_mask(np.full((48, 40), 255, np.uint8))),
      check=lambda data, log: "1 masks are all ignore (255) and teach nothing: seg/masks/0.png" in log and sum(sizes(data)) == 4)


def rotated_photo(root: Path) -> None:
    """Image 0 stored 48 wide x 40 high with EXIF orientation 6 (shown rotated: 40 wide x 48 high, as its mask)."""
    stored = Image.open(root / "images" / "0.png").transpose(Image.Transpose.ROTATE_90)  # 48x40 on disk
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "images" / "0.png").unlink()
    stored.save(root / "images" / "0.jpg", exif=exif, quality=100)


def upright_pairs(data: Any) -> bool:
    source = data.datasets["train"].source
    pair = source[[str(p) for p in source.paths].index("seg/images/0.jpg")]
    return pair["image"].shape[:2] == pair["mask"].shape == (48, 40)


fault("exif: a phone photo is read upright and fits its mask", lambda: masks(rotated_photo, val_fraction=0.25, test_fraction=0),
      check=lambda data, log: "seg/images/0.jpg" in map(str, data.datasets["train"].source.paths) and upright_pairs(data))


def read_upright(path: str) -> Callable[[], Any]:
    write_pairs(Path("seg"))
    rotated_photo(Path("seg"))
    from visiontasks.data.images import read_image

    return lambda: read_image(path, 3)


fault("exif: read_image applies the orientation", lambda: read_upright("seg/images/0.jpg"),
      check=lambda image, log: image.shape == (48, 40, 3))


# ----- images over PIL's pixel limit: a named error in training, a named skip in predict --------
def with_pixel_limit(action: Callable[[], Any], limit: int = 100) -> Callable[[], Any]:
    def limited() -> Any:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit  # 16x16 = 256 px > 2 x 100: PIL refuses
        try:
            return limited.action()
        finally:
            Image.MAX_IMAGE_PIXELS = saved

    limited.action = action
    return limited


fault("pixels: a class-folder image over PIL's limit", lambda: with_pixel_limit(folders(class_folders)),
      r"data/cat/0\.png: the image has more pixels than PIL's limit of 100 .*downscale the file")
fault("pixels: a predict image over PIL's limit is skipped, by name",
      lambda: with_pixel_limit(predict_dir(lambda r: write_image(r / "big.png", size=16), lambda r: write_image(r / "a.png", size=4))),
      check=lambda data, log: len(data.datasets["predict"]) == 1 and "Skipped 1 unreadable images: photos/big.png" in log)


# ----- files left out are named ------------------------------------------------------------------
def dangling(link: Path) -> None:
    link.symlink_to(link.parent / "gone.png")


fault("files: a dangling link in a class folder is named", lambda: folders(class_folders, lambda r: dangling(r / "cat" / "9.png")),
      check=lambda data, log: "data/cat: left out data/cat/9.png (a link to the missing data/cat/gone.png)" in log
      and sum(sizes(data)) == 6)
fault("files: images in a predict sub-folder are named",
      lambda: predict_dir(photos, lambda r: write_image(r / "more" / "x.png", size=8)),
      check=lambda data, log: "photos/more/ (a sub-folder with images; only photos's own files are read)" in log
      and len(data.datasets["predict"]) == 3)
fault("files: a dangling link in a predict folder is named", lambda: predict_dir(photos, lambda r: dangling(r / "z.png")),
      check=lambda data, log: "a link to the missing photos/gone.png" in log and len(data.datasets["predict"]) == 3)


# ----- CSV labels and paths ----------------------------------------------------------------------
fault("csv: labels that differ only by case", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,Cat"])),
      r"t\.csv: labels 'Cat' and 'cat' differ only by case or spaces and would be two classes; write them the same way")
fault("csv: labels that differ only by inner spaces",
      lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(labels=("golden retriever", "pug")), "img/0.png,golden  retriever"])),
      r"t\.csv: labels 'golden  retriever' and 'golden retriever' differ only by case or spaces")
fault("csv: class_names that differ only by case", lambda: csv_data(csv_path=csv_file("t.csv", two_classes()), class_names=["cat", "CAT"]),
      r"^--data\.init_args\.class_names=\['cat', 'CAT'\]: 'cat' and 'CAT' name one class", raises=OptionError)
fault("csv: Windows path separators are accepted",
      lambda: csv_data(csv_path=csv_file("t.csv", [r.replace("/", "\\") for r in two_classes()]), val_fraction=0.3),
      check=lambda data, log: sum(sizes(data)) == 6 and data.class_names == ["cat", "dog"])


# ----- options: checked when given, one line naming the option, no run folder left behind --------
def option(*args: str, runs_dir: str = "runs") -> Callable[[], Any]:
    def action() -> Any:
        try:
            return run_cli("fit", "--config", LENET, *SMALL, f"--runs_dir={runs_dir}", *args)
        except SystemExit:
            left = [p for p in Path(runs_dir).rglob("*") if p.is_file()] if Path(runs_dir).is_dir() else []
            assert not left, f"a failed command left files behind: {left}"
            assert not list(Path(runs_dir).glob("*/*")), "a failed command left an empty run folder"
            raise

    return action


def constructed(*args: str) -> Callable[[], Any]:
    """``--data.init_args.x=v`` or ``--model.init_args.x=v`` given to the class in Python (the CLI's check, without its start-up)."""
    import yaml

    from visiontasks import ClassificationTask, ShapesDataModule

    options: dict[str, dict[str, Any]] = {"data": {}, "model": {}}
    for arg in args:
        key, value = arg.removeprefix("--").split("=", 1)
        group, _, name = key.split(".", 2)
        options[group][name] = yaml.safe_load(value)
    if options["data"]:
        return lambda: ShapesDataModule(**options["data"])
    return lambda: ClassificationTask(num_classes=3, model="lenet5", **options["model"])


def option_fault(name: str, args: list[str], error: str, cli: bool = False) -> None:
    """The option's check through the command line (``cli``: one line, exit 2, no run folder) or its class."""
    from visiontasks import OptionError

    if cli:
        fault(name, lambda: option(*args), rf"^visiontasks: error: {error}", raises=SystemExit)
    else:
        fault(name, lambda: constructed(*args), rf"^{error}", raises=OptionError)


LR = "--model.init_args.optimizer.init_args.lr"
option_fault("option: negative learning rate", [f"{LR}=-0.1"], rf"--model\.init_args\.optimizer\.init_args(\.lr=-0\.1: the learning rate must be a positive|: Invalid learning rate)", cli=True)
option_fault("option: NaN learning rate", [f"{LR}=.nan"], r"--model\.init_args\.optimizer\.init_args.*(nan|NaN)", cli=True)
option_fault("option: zero learning rate", [f"{LR}=0"], r"--model\.init_args\.optimizer\.init_args\.lr=0\.0: the learning rate must be a positive number", cli=True)
option_fault("option: negative weight decay", ["--model.init_args.optimizer.init_args.weight_decay=-1"],
             r"--model\.init_args\.optimizer\.init_args: Invalid weight_decay value: -1.*fix the optimizer's arguments", cli=True)
option_fault("option: negative image_size", ["--data.init_args.image_size=-5"], r"--data\.init_args\.image_size=-5: give a positive number of pixels", cli=True)
option_fault("option: image_size of three numbers", ["--data.init_args.image_size=[32, 32, 3]"], r"--data\.init_args\.image_size=\[32, 32, 3\]: give")
option_fault("option: zero image height", ["--data.init_args.image_size=[0, 32]"], r"--data\.init_args\.image_size=\[0, 32\]: give")
option_fault("option: val_fraction above 1", ["--data.init_args.val_fraction=1.5"], r"--data\.init_args\.val_fraction=1\.5: a share of the samples: give a number in \[0, 1\)", cli=True)
option_fault("option: negative val_fraction", ["--data.init_args.val_fraction=-0.1"], r"--data\.init_args\.val_fraction=-0\.1: a share")
option_fault("option: test_fraction 1", ["--data.init_args.test_fraction=1"], r"--data\.init_args\.test_fraction=1(\.0)?: a share")
option_fault("option: NaN test_fraction", ["--data.init_args.test_fraction=.nan"], r"--data\.init_args\.test_fraction=nan: a share")
option_fault("option: fractions leaving nothing to train on", ["--data.init_args.val_fraction=0.5", "--data.init_args.test_fraction=0.5"],
             r"--data\.init_args\.val_fraction=0\.5: with test_fraction=0\.5 nothing is left to train on")
option_fault("option: in_channels 2", ["--data.init_args.in_channels=2"], r"--data\.init_args\.in_channels=2: image files are read as 1 \(grayscale\) or 3")
option_fault("option: in_channels 0", ["--data.init_args.in_channels=0"], r"--data\.init_args\.in_channels=0: image files")
option_fault("option: batch_size 0", ["--data.init_args.batch_size=0"], r"--data\.init_args\.batch_size=0: give a positive number of samples")
option_fault("option: negative num_workers", ["--data.init_args.num_workers=-1"], r"--data\.init_args\.num_workers=-1: give 0")
option_fault("option: min_visibility 2", ["--data.init_args.min_visibility=2"], r"--data\.init_args\.min_visibility=2(\.0)?: a share of a box's area")
option_fault("option: label_smoothing 1.5", ["--model.init_args.label_smoothing=1.5"], r"--model\.init_args\.label_smoothing=1\.5: give a number in \[0, 1\)")
option_fault("option: top_k 0", ["--model.init_args.top_k=0"], r"--model\.init_args\.top_k=0: give 1 or more")
option_fault("option: negative class weight", ["--model.init_args.class_weights=[1, -1, 1]"], r"--model\.init_args\.class_weights=\[1, -1, 1\]: weights are finite")
option_fault("option: negative unfreeze_at_epoch", ["--model.init_args.unfreeze_at_epoch=-1"], r"--model\.init_args\.unfreeze_at_epoch=-1: give an epoch number")


def read_only_runs() -> Callable[[], Any]:
    """``locked/`` refuses new folders, as a read-only mount does (chmod does not stop root, so the refusal is injected)."""
    mkdir = Path.mkdir

    def refusing(self: Path, *args: Any, **kwargs: Any) -> None:
        if "locked" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        mkdir(self, *args, **kwargs)

    action = option(runs_dir="locked/runs")

    def locked() -> Any:
        Path.mkdir = refusing
        try:
            return action()
        finally:
            Path.mkdir = mkdir

    return locked


fault("option: a runs_dir that is a file", lambda: (Path("runs.txt").write_text("x"), option(runs_dir="runs.txt"))[1],
      r"^visiontasks: error: --runs_dir runs\.txt: cannot write the run folder runs\.txt/lenet5/\S+ \((Not a directory|File exists)\)",
      raises=SystemExit)
fault("option: a read-only runs directory", read_only_runs,
      r"^visiontasks: error: --runs_dir locked/runs: cannot write the run folder locked/runs/lenet5/\S+ \(Permission denied\); give a writable",
      raises=SystemExit)


# ----- results: nothing overwritten, every output named --------------------------------------------
def saved_twice() -> Callable[[], Any]:
    from visiontasks.results import SegmentationResult

    def action() -> list[Path]:
        masks = [np.full((4, 6), value, np.uint8) for value in (1, 2, 3)]
        results = [SegmentationResult(orig_size=(4, 6), mask=m, class_names=["bg", "a", "b", "c"], picture=np.zeros((4, 6, 3), np.uint8))
                   for m in masks]  # fmt: skip
        return [result.save("out/") for result in results]

    return action


def saved_apart(paths: list[Path], log: str) -> bool:
    values = [int(np.asarray(Image.open(path)).max()) for path in paths]
    return [p.name for p in paths] == ["image.png", "image-2.png", "image-3.png"] and values == [1, 2, 3]


fault("results: save() of in-memory images into one folder overwrites nothing", saved_twice, check=saved_apart)


@pytest.fixture(scope="module")
def lenet_checkpoint(tmp_path_factory) -> Path:
    """A LeNet-5 checkpoint of one training step (what the lenet5 config builds), for the predict cases."""
    import pytorch_lightning as pl

    from visiontasks import ClassificationTask, ShapesDataModule

    folder = tmp_path_factory.mktemp("lenet")
    task = ClassificationTask(model="lenet5", num_classes=3, in_channels=1)
    trainer = pl.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir=folder)  # fmt: skip
    trainer.fit(task, datamodule=ShapesDataModule(num_samples=8, image_size=32, in_channels=1, batch_size=4))
    trainer.save_checkpoint(folder / "lenet.ckpt")
    return folder / "lenet.ckpt"


def test_predict_on_a_jpg_and_a_png_records_which_output_is_which(lenet_checkpoint):
    for name in ("a.jpg", "a.png", "b.png"):
        write_image(Path("photos") / name, size=12)
    run_cli("predict", "--config", LENET, *SMALL[:3], f"--ckpt_path={lenet_checkpoint}", "--data.init_args.predict_dir=photos",
            "--writer.draw=true")  # fmt: skip
    (folder,) = Path("runs").glob("lenet5/*/predict/*")
    rows = list(csv.DictReader(open(folder / "predictions.csv")))
    assert [(r["path"], r["output"]) for r in rows] == [
        ("photos/a.jpg", "predictions/a_overlay.png"), ("photos/a.png", "predictions/a-2_overlay.png"),
        ("photos/b.png", "predictions/b_overlay.png")]  # fmt: skip
    assert all((folder / r["output"]).is_file() for r in rows)
    as_json = json.loads((folder / "predictions.json").read_text())  # the same rows, as the README says
    assert [(r["path"], r["output"], r["label"]) for r in as_json] == [(r["path"], [r["output"]], r["label"]) for r in rows]


# ----- checkpoints: written whole, damaged ones named, best/last defined, weights required ----------
def no_checkpoint(command: str, config: str = LENET) -> Callable[[], Any]:
    return lambda: run_cli(command, "--config", config, *SMALL[:3], *(["--data.init_args.predict_dir=photos"] if command == "predict" else []))


for command in ("validate", "test", "predict", "export"):
    fault(f"checkpoint: {command} of a trainable task without --ckpt_path", lambda command=command: no_checkpoint(command),
          rf"^visiontasks: error: {command} needs --ckpt_path \(best, last or a checkpoint file\): without it the ClassificationTask "
          "would run on untrained weights", raises=SystemExit)  # fmt: skip


def damaged(path: Path, cut: float = 0.5) -> Path:
    import io

    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(64)}, "epoch": 0}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: int(len(buffer.getvalue()) * cut)])
    return path


fault("checkpoint: a truncated file is named damaged, not pickled code",
      lambda: (damaged(Path("cut.ckpt")), lambda: run_cli("test", "--config", LENET, *SMALL, "--ckpt_path=cut.ckpt"))[1],
      r"^visiontasks: error: cut\.ckpt: the checkpoint is damaged \(truncated or not a checkpoint: .*\); use another one", raises=SystemExit)
fault("checkpoint: an empty file is damaged", lambda: (Path("empty.ckpt").write_bytes(b""),
                                                      lambda: run_cli("test", "--config", LENET, *SMALL, "--ckpt_path=empty.ckpt"))[1],
      r"^visiontasks: error: empty\.ckpt: the checkpoint is damaged", raises=SystemExit)  # fmt: skip


def fit_runs(*damage: Callable[[list[Path]], Any], epochs: int = 1) -> list[Path]:
    """Two finished lenet5 runs (seeds 0 and 1), oldest first, then ``damage`` applied to their run folders."""
    runs = []
    for seed in (0, 1):
        runs.append(run_cli("fit", "--config", LENET, *SMALL, f"--data.init_args.seed={seed}", f"--trainer.max_epochs={epochs}",
                            "--trainer.logger=false").run.path)  # fmt: skip
    for step in damage:
        step(runs)
    return runs


def best_checkpoint_score(path: Path) -> float:
    from visiontasks.checkpoints import _best_score

    return _best_score(torch.load(path, weights_only=True))[2]


def test_best_and_last_skip_damaged_and_unfinished_runs(capsys):
    from visiontasks.checkpoints import FINISHED, find_checkpoint

    first, second = fit_runs()
    assert (first / "checkpoints" / FINISHED).is_file() and (second / "checkpoints" / FINISHED).is_file()
    bests = {run: next((run / "checkpoints").glob("best*.ckpt")) for run in (first, second)}
    winner = max((second, first), key=lambda run: best_checkpoint_score(bests[run]))  # a tie goes to the newest
    assert find_checkpoint("runs", "lenet5", "best") == bests[winner]
    said = capsys.readouterr().out
    assert re.search(rf"--ckpt_path best: \S*{bests[winner].name} \(run {winner.name}, val/acc [\d.]+, among 2 finished runs\)", said), said

    (winner / "checkpoints" / FINISHED).unlink()  # as a run killed mid-fit leaves it: it never finished
    loser = first if winner == second else second
    assert find_checkpoint("runs", "lenet5", "best") == bests[loser]  # finished beats a better unfinished one
    damaged(second / "checkpoints" / "last.ckpt")  # the newest last.ckpt is damaged: the older one is used, named
    assert find_checkpoint("runs", "lenet5", "last") == first / "checkpoints" / "last.ckpt"
    assert f"--ckpt_path last: {first / 'checkpoints' / 'last.ckpt'} (run {first.name}, epoch 0, " in capsys.readouterr().out


def test_a_full_disk_mid_save_leaves_the_previous_checkpoint_whole(monkeypatch):
    """A writer that fails half-way (ENOSPC), as a full disk does, at the second epoch's save."""
    import errno

    from lightning_fabric.plugins.io import torch_io

    saves, real = [], torch_io._atomic_save

    def failing(checkpoint: dict, path: Any) -> None:
        saves.append(path)
        if len(saves) > 2:  # epoch 0's best and last went through
            Path(path).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(checkpoint, path)

    monkeypatch.setattr(torch_io, "_atomic_save", failing)
    with pytest.raises(SystemExit) as stopped:  # one line naming the file and the fix, no traceback
        run_cli("fit", "--config", LENET, *SMALL, "--trainer.max_steps=-1", "--trainer.limit_train_batches=1", "--trainer.max_epochs=2",
                "--trainer.logger=false")
    (run,) = Path("runs/lenet5").iterdir()
    said = str(stopped.value.code)
    assert re.fullmatch(rf"visiontasks: error: \S*{re.escape(str(run / 'checkpoints'))}/(last|best-epoch001)\.ckpt: cannot write the checkpoint "
                        r"\(No space left on device\); the previous checkpoint is kept whole\. Free space on that disk, or give --runs_dir "
                        r"on another one\.", said), said  # fmt: skip
    kept = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert kept and all(torch.load(run / "checkpoints" / name, weights_only=True)["epoch"] == 0 for name in kept), kept
    assert len(saves) > 2 and all(str(p).endswith(".partial") for p in saves)  # only ever a .partial is half-written
    assert not list((run / "checkpoints").glob("*.partial"))  # and it is not left behind


def test_a_checkpoint_of_a_run_brings_the_runs_config():
    """validate/predict/export need only ``--ckpt_path`` of a run; options on top override; a config whose data differs
    from the run's still exports (the task is the checkpoint's)."""
    fit = run_cli("fit", "--config", LENET, *SMALL, "--data.init_args.in_channels=3", "--run_id=rgb")  # lenet5.yaml says 1 channel
    checkpoint = fit.run.path / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and (fit.run.path / "config.yaml").is_file()

    exported = run_cli("export", f"--ckpt_path={checkpoint}")
    assert exported.run.path == fit.run.path.resolve() and (fit.run.path / "export" / "model.onnx").is_file()
    assert exported.datamodule.in_channels == 3  # the run's data, not a default

    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", append=True)  # after the filters of what is expected by design
        validated = run_cli("validate", f"--ckpt_path={checkpoint}")
    assert validated.run.stage_dir == fit.run.path.resolve() / "validate" and "val/acc" in validated.trainer.callback_metrics
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]  # not Lightning's "Be aware that when using `ckpt_path`"

    write_image(Path("photos") / "a.png", size=12)
    predicted = run_cli("predict", "--ckpt_path", str(checkpoint), "--data.init_args.predict_dir=photos/", "--data.init_args.batch_size=2")
    assert predicted.datamodule.batch_size == 2 and predicted.datamodule.in_channels == 3  # on top of the run's config
    rows = list(csv.DictReader(open(predicted.run.stage_dir / "predictions.csv")))
    assert [r["path"] for r in rows] == ["photos/a.png"]

    (fit.run.path / "export" / "model.onnx").unlink()
    run_cli("export", "--config", LENET, f"--ckpt_path={checkpoint}")  # the config's 1 channel: the checkpoint's 3 are used
    assert (fit.run.path / "export" / "model.onnx").is_file()


# ----- more of the same kinds: every field of every format, every option's bad values --------------
def coco_read(change: Callable[[dict], Any] | None = None, *damage: Callable[[Path], Any], task: str = "detection",
              annotations: list[dict] | None = None) -> Callable[[], Any]:  # fmt: skip
    """``c/train.json`` (2 images, an annotation each) after ``change``, read whole (no split: two images are too few)."""
    from visiontasks import CocoDataModule

    path = write_coco(Path("c"), annotations or [{"bbox": [1, 1, 5, 5]}, {"bbox": [2, 2, 5, 5], "image_id": 2}])
    if change is not None:
        edit_coco(Path("c"), change)
    for step in damage:
        step(Path("c"))
    return lambda: CocoDataModule(train_json=str(path), task=task).make_sources()["all"]


def annotation(**fields: Any) -> Callable[[dict], Any]:
    return lambda c: c["annotations"][0].update(fields)


def image_entry(**fields: Any) -> Callable[[dict], Any]:
    return lambda c: c["images"][0].update(fields)


def records(source: Any) -> list[tuple[str, list[int], list[list[float]]]]:
    """(file, labels, xyxy boxes) of every image of a COCO source, each image read."""
    assert all(source[i]["image"].ndim == 3 for i in range(len(source)))
    return [(str(r.path), r.labels.tolist(), r.boxes.tolist()) for r in source.records]


BOXES_READ = [("c/img0.png", [0], [[1.0, 1.0, 6.0, 6.0]]), ("c/img1.png", [0], [[2.0, 2.0, 7.0, 7.0]])]
ANNOTATION_1 = r"c/train\.json: annotation 1: "
for name, fields, error in [
    ("bbox of three numbers", {"bbox": [1, 1, 5]}, r"bbox \[1, 1, 5\] is not \[x, y, width, height\]"),
    ("bbox null", {"bbox": None}, r"bbox None is not \[x, y, width, height\]"),
    ("bbox with a negative width", {"bbox": [1, 1, -5, 5]}, r"bbox \[1, 1, -5, 5\] has a negative width or height"),
    ("bbox of quoted numbers", {"bbox": ["1", "1", "5", "5"]}, r"bbox \['1', '1', '5', '5'\] holds a non-number; .*without quotes"),
    ("bbox holding true", {"bbox": [True, 1, 5, 5]}, r"bbox \[True, 1, 5, 5\] holds a non-number"),
    ("bbox holding infinity", {"bbox": [1, 1, float("inf"), 5]}, r"bbox \[1, 1, inf, 5\] holds NaN or infinity"),
]:
    fault(f"coco: {name}", lambda fields=fields: coco_read(annotation(**fields)), ANNOTATION_1 + error)
fault("coco: bbox NaN written as JSON's NaN", lambda: coco_read(None, lambda r: (r / "train.json").write_text(
      (r / "train.json").read_text().replace('"bbox": [1, 1, 5, 5]', '"bbox": [1, 1, NaN, 5]'))),
      ANNOTATION_1 + r"bbox \[1, 1, nan, 5\] holds NaN or infinity")  # fmt: skip
fault("coco: annotation without bbox", lambda: coco_read(lambda c: c["annotations"][0].pop("bbox")),
      r"c/train\.json: annotations\[0\] lacks \['bbox'\]; COCO annotations need")
fault("coco: annotation that is not an object", lambda: coco_read(lambda c: c["annotations"].append(5)),
      r"c/train\.json: annotations\[2\] lacks \['image_id', 'category_id', 'bbox'\]")
fault("coco: image without file_name", lambda: coco_read(lambda c: c["images"][0].pop("file_name")),
      r"c/train\.json: images\[0\] lacks \['file_name'\]")
fault("coco: area is not read (negative, or text)", lambda: coco_read(lambda c: (annotation(area=-3)(c), c["annotations"][1].update(area="big"))),
      check=lambda source, log: records(source) == BOXES_READ)
fault("coco: iscrowd as the text '0'", lambda: coco_read(annotation(iscrowd="0")), r"c/train\.json: annotation 1 has iscrowd '0'; COCO's iscrowd is 0 or 1")
fault("coco: iscrowd true", lambda: coco_read(annotation(iscrowd=True)), r"c/train\.json: annotation 1 has iscrowd True")
fault("coco: compressed RLE that does not decode",
      lambda: coco_read(annotations=[{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": {"size": [30, 40], "counts": "!!!!"}}],
                        task="instance_segmentation"),
      ANNOTATION_1 + r"RLE counts '!!!!' are neither a list of run lengths nor a compressed RLE string")  # fmt: skip
fault("coco: height that disagrees with the file", lambda: coco_read(image_entry(height=31)),
      r"c/img0\.png: the file is 40x30 but c/train\.json says 40x31; fix width/height in the JSON")
fault("coco: width as the text '40'", lambda: coco_read(image_entry(width="40")), r"c/train\.json: image 1 has width '40'; it must be a positive integer")
fault("coco: an absolute file_name is read", lambda: coco_read(image_entry(file_name=str(Path("c/img0.png").resolve()))),
      check=lambda source, log: records(source)[1:] == BOXES_READ[1:] and records(source)[0][0] == str(Path("c/img0.png").resolve()))
fault("coco: a file_name with Windows separators is read",
      lambda: coco_read(image_entry(file_name="sub\\img0.png"), lambda r: (r / "sub").mkdir(), lambda r: (r / "img0.png").rename(r / "sub" / "img0.png")),
      check=lambda source, log: records(source) == [("c/sub/img0.png", *BOXES_READ[0][1:]), BOXES_READ[1]])  # fmt: skip
fault("coco: empty file_name", lambda: coco_read(image_entry(file_name="")),
      r"c/train\.json: images\[0\] has file_name ''; give the image file's path, relative to the images folder")
fault("coco: file_name null", lambda: coco_read(image_entry(file_name=None)), r"c/train\.json: images\[0\] has file_name None")
fault("coco: two images with one file_name", lambda: coco_read(lambda c: c["images"][1].update(file_name="img0.png")),
      r"c/train\.json: images\[1\] repeats file_name 'img0\.png' of images\[0\]; list each image once")
fault("coco: absolute file_name of a missing file", lambda: coco_read(image_entry(file_name="/nonexistent/img0.png")),
      r"^/nonexistent/img0\.png: image file not found \(listed in c/train\.json\)")
fault("coco: category without a name", lambda: coco_read(lambda c: c["categories"][0].update(name="")),
      r"c/train\.json: category 1 has name ''; give each category a name")
fault("coco: category named by a number", lambda: coco_read(lambda c: c["categories"][0].update(name=7)), r"c/train\.json: category 1 has name 7")
fault("coco: annotation of a missing image id", lambda: coco_read(annotation(image_id=99)),
      r"c/train\.json: annotation 1 refers to image_id 99, which is not among the file's images")
fault("coco: image id beyond 64 bits", lambda: coco_read(lambda c: (image_entry(id=2**70)(c), annotation(image_id=2**70)(c))),
      r"c/train\.json: images\[0\] has id 1180591620717411303424 \(int\); COCO ids are integers")
fault("coco: segmentation that is a number", lambda: coco_read(annotation(segmentation=5), task="instance_segmentation"),
      ANNOTATION_1 + r"segmentation is neither polygons nor RLE")
fault("coco: polygon of [x, y] pairs", lambda: coco_read(annotation(segmentation=[[[1, 1], [6, 1], [6, 6]]]), task="instance_segmentation"),
      ANNOTATION_1 + r"polygon \[\[1, 1\], \[6, 1\], \[6, 6\]\] is not a flat \[x1, y1, x2, y2, \.\.\.\] list")
fault("coco: empty polygon", lambda: coco_read(annotation(segmentation=[[]]), task="instance_segmentation"), ANNOTATION_1 + r"polygon \[\] is not a flat")
fault("coco: unicode file and category names are read",
      lambda: coco_read(lambda c: (image_entry(file_name="chat_é猫.png")(c), c["categories"][0].update(name="chat 猫")),
                        lambda r: (r / "img0.png").rename(r / "chat_é猫.png")),
      check=lambda source, log: records(source)[0][0] == "c/chat_é猫.png")  # fmt: skip
fault("coco: empty JSON file", lambda: coco_read(None, lambda r: (r / "train.json").write_text("")), r"c/train\.json: not a valid JSON file")
fault("coco: JSON that is a list", lambda: coco_read(None, lambda r: (r / "train.json").write_text("[]")),
      r"c/train\.json: not a COCO JSON file: it needs 'images', 'annotations' and 'categories' lists \(found list\)")
fault("coco: a byte-order mark is read",
      lambda: coco_read(None, lambda r: (r / "train.json").write_text((r / "train.json").read_text(), encoding="utf-8-sig")),
      check=lambda source, log: records(source) == BOXES_READ)
fault("coco: no annotations: the images are negatives", lambda: coco_read(lambda c: c.update(annotations=[])),
      check=lambda source, log: [r[1:] for r in records(source)] == [([], [])] * 2)
fault("coco: a box wholly outside its image is dropped, counted", lambda: coco_read(annotation(bbox=[100, 100, 5, 5])),
      check=lambda source, log: "c/train.json: 0 boxes clipped to their image, 1 empty or outside boxes dropped" in log
      and records(source) == [("c/img0.png", [], []), BOXES_READ[1]])


# CSV
def box_rows(*bad: str) -> Callable[[], Any]:
    good = [f"{p},{'cat' if i % 2 else 'dog'},1,1,6,6" for i, p in enumerate(distinct_pictures())]
    return csv_data(csv_path=csv_file("b.csv", [*good, *bad], header="image,label,x_min,y_min,x_max,y_max"))


def csv_bytes(data: bytes) -> Callable[[], Any]:
    Path("t.csv").write_bytes(data)
    return csv_data(csv_path="t.csv")


fault("csv: empty file", lambda: csv_bytes(b""), r"t\.csv: the CSV has no rows")
fault("csv: UTF-16 file", lambda: csv_bytes("image,label\nimg/0.png,cat\n".encode("utf-16")), r"t\.csv: not UTF-8 text .*save it as 'CSV UTF-8'")
fault("csv: extra columns are ignored", lambda: csv_data(csv_path=csv_file("t.csv", [r + ",x,1" for r in two_classes()], header="image,label,note,n")),
      check=lambda data, log: data.class_names == ["cat", "dog"] and sum(sizes(data)) == 6)
fault("csv: a label of spaces is empty", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,   "])), r"t\.csv row 8: empty label cell")
fault("csv: header in capitals", lambda: csv_data(csv_path=csv_file("t.csv", two_classes(), header="Image,Label")),
      r"t\.csv: missing column\(s\) \['image', 'label'\]; found \['Image', 'Label'\]")
fault("csv box: x_max below x_min", lambda: box_rows("img/0.png,cat,6,1,1,6"),
      r"b\.csv row 8: box \[6\.0, 1\.0, 1\.0, 6\.0\] is empty or inverted; need x_min < x_max")
fault("csv box: outside the image", lambda: box_rows("img/0.png,cat,1,1,60,6"),
      r"b\.csv row 8: box \[1\.0, 1\.0, 60\.0, 6\.0\] lies outside the 8x8 image img/0\.png")
fault("csv box: NaN", lambda: box_rows("img/0.png,cat,1,1,nan,6"), r"b\.csv row 8: box \[1\.0, 1\.0, nan, 6\.0\] is empty or inverted")
fault("csv box: empty cell", lambda: box_rows("img/0.png,cat,1,1,,6"), r"b\.csv row 8: box columns .* need pixel numbers, found \['1', '1', '', '6'\]")
fault("csv box: short row", lambda: box_rows("img/0.png,cat,1,1"), r"b\.csv row 8: box columns .* found \['1', '1', None, None\]")
fault("csv: one image on two rows with two labels", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/1.png,cat"])),
      r"t\.csv row 8: image img/1\.png is listed again \(first on t\.csv row 3\); list each image once")
fault("csv: one image on two identical rows", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,dog"])),
      r"t\.csv row 8: image img/0\.png is listed again \(first on t\.csv row 2\)")
fault("csv: a quoted label holding a comma", lambda: csv_data(csv_path=csv_file("t.csv", [f'{p},"cat, tabby"' if i % 2 else f"{p},dog"
                                                                                     for i, p in enumerate(distinct_pictures())])),
      check=lambda data, log: data.class_names == ["cat, tabby", "dog"] and sum(sizes(data)) == 6)  # fmt: skip
fault("csv: repeated class_names", lambda: lambda: CsvDataModule(csv_path=csv_file("t.csv", two_classes()), class_names=["cat", "dog", "Cat"]),
      r"^--data\.init_args\.class_names=\['cat', 'dog', 'Cat'\]: 'cat' and 'Cat' name one class", raises=OptionError)


# image folders
def sample_of(data: Any, name: str) -> dict[str, Any]:
    source = data.datasets["train"].source
    return source[[str(p) for p in source.paths].index(name)]


def truncated_jpeg(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def animated_gif(path: Path) -> None:
    frames = [Image.new("L", (16, 16), 40 * i) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def read_from_folders(damage: Callable[[Path], Any]) -> Callable[[], Any]:
    return folders(class_folders, damage, test_fraction=0.0, val_fraction=0.3, image_size=16)


fault("folder: zero-byte image", lambda: folders(class_folders, lambda r: (r / "cat" / "z.png").write_bytes(b"")),
      r"data/cat/z\.png: cannot read this image \(cannot identify image file")
fault("folder: a text file named .png", lambda: folders(class_folders, lambda r: (r / "cat" / "n.png").write_text("hello")),
      r"data/cat/n\.png: cannot read this image .*replace it or remove it")
fault("folder: truncated JPEG", lambda: folders(class_folders, lambda r: truncated_jpeg(r / "dog" / "t.jpg")),
      r"data/dog/t\.jpg: cannot read this image \(image file is truncated")
fault("folder: a CMYK JPEG is read as RGB", lambda: read_from_folders(lambda r: Image.new("CMYK", (16, 16), (0, 50, 100, 0)).save(r / "cat" / "k.jpg")),
      check=lambda data, log: sample_of(data, "data/cat/k.jpg")["image"].shape == (16, 16, 3))
fault("folder: a 1-pixel image is read", lambda: read_from_folders(lambda r: Image.new("RGB", (1, 1), (9, 9, 9)).save(r / "cat" / "p.png")),
      check=lambda data, log: sample_of(data, "data/cat/p.png")["image"].shape == (1, 1, 3) and len(data.datasets["train"].source) == 7)
fault("folder: an animated GIF is read as its first frame", lambda: read_from_folders(lambda r: animated_gif(r / "cat" / "g.gif")),
      check=lambda data, log: (sample_of(data, "data/cat/g.gif")["image"] == 0).all())
fault("folder: a 16-bit PNG is read", lambda: read_from_folders(lambda r: Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(r / "cat" / "h.png")),
      check=lambda data, log: abs(float(sample_of(data, "data/cat/h.png")["image"].max()) - 40000 / 65535) < 1e-3)
fault("folder: Thumbs.db, .DS_Store and ._ files are ignored",
      lambda: read_from_folders(lambda r: [(r / "cat" / n).write_bytes(b"\0\1") for n in ("Thumbs.db", ".DS_Store", "._0.png")]),
      check=lambda data, log: len(data.datasets["train"].source) == 6 and "cannot read" not in log)
fault("folder: a __MACOSX folder is named", lambda: folders(class_folders, lambda r: (r / "__MACOSX" / "cat").mkdir(parents=True)),
      r"data/__MACOSX: class folder has no images; add some or remove the folder")


# segmentation masks
def only_background(objects: int) -> Callable[[Path], Any]:
    """Every mask's objects saved as ``objects`` (255: a 0/255 binary mask; 0: no object at all)."""
    return lambda root: [Image.fromarray(np.where(MASK, objects, 0).astype(np.uint8)).save(m) for m in (root / "masks").iterdir()]


def palette_mask(root: Path) -> None:
    mask = Image.fromarray(MASK * 2, "L").convert("P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] * 85)
    mask.save(root / "masks" / "0.png")


fault("mask: an image without its mask", lambda: masks(lambda r: (r / "masks" / "1.png").unlink()),
      r"seg/images/1\.png: image without a mask \(looked for seg/masks/1\.png\)\. .*unmatched_images: skip")
fault("mask: a mask without its image", lambda: masks(lambda r: Image.fromarray(MASK).save(r / "masks" / "9.png")),
      r"seg/masks/9\.png: mask without an image \(looked for seg/images/9\.\*\)")
fault("mask: an RGB colour mask without class_colors", lambda: masks(save_mask(np.stack([MASK * 200, MASK * 10, MASK], -1))),
      r"seg/masks/0\.png: mask is a colour \(RGB\) image\. .*class_colors")
fault("mask: a palette index above the classes", lambda: masks(palette_mask), r"seg/masks/0\.png: mask values \[2\] are not class numbers 0\.\.1")
fault("mask: a 16-bit mask in range is read", lambda: masks(save_mask(MASK.astype(np.uint16)), val_fraction=0.25, test_fraction=0),
      check=lambda data, log: (sample_of(data, "seg/images/0.png")["mask"] == MASK).all())
fault("mask: 0/255 binary masks (objects saved as ignore)", lambda: masks(only_background(255)),
      r"seg/masks: no mask holds a class other than 0 \('background'\), so \['bright'\] cannot be learnt; 255 means ignore.*save them as 1")
fault("mask: every mask all background", lambda: masks(only_background(0)),
      r"seg/masks: no mask holds a class other than 0 \('background'\).*check the masks' values")
fault("mask: zero-byte mask", lambda: masks(lambda r: (r / "masks" / "0.png").write_bytes(b"")), r"seg/masks/0\.png: cannot read this image")
fault("mask: repeated class_names", lambda: masks(lambda r: None, class_names=["bg", "BG"]),
      r"^--data\.init_args\.class_names=\['bg', 'BG'\]: 'bg' and 'BG' name one class", raises=OptionError)


# options
option_fault("option: negative batch_size", ["--data.init_args.batch_size=-1"], r"--data\.init_args\.batch_size=-1: give a positive number", cli=True)
fault("option: batch_size 2.5", lambda: option("--data.init_args.batch_size=2.5"), r"batch_size.*2\.5", raises=SystemExit)
fault("option: batch_size true", lambda: option("--data.init_args.batch_size=true"), r"batch_size.*(true|True)", raises=SystemExit)
option_fault("option: image_size 0", ["--data.init_args.image_size=0"], r"--data\.init_args\.image_size=0: give a positive number of pixels", cli=True)
option_fault("option: image_size 100000 (larger than memory)", ["--data.init_args.image_size=100000"],
             r"--data\.init_args\.image_size=100000: a batch of 8 such images is \d+ GiB of float32, over half of this machine's", cli=True)
option_fault("option: val_fraction 1", ["--data.init_args.val_fraction=1"], r"--data\.init_args\.val_fraction=1(\.0)?: a share of the samples")
fault("option: val_fraction 0 leaves no validation", lambda: option("--data.init_args.val_fraction=0"),
      r"^visiontasks: error: ShapesDataModule: the val split is empty; add data or change val_fraction/test_fraction", raises=SystemExit)
option_fault("option: num_workers beyond the machine", ["--data.init_args.num_workers=1000"],
             r"--data\.init_args\.num_workers=1000: more worker processes than this machine can run", cli=True)
option_fault("option: negative data seed", ["--data.init_args.seed=-1"], r"--data\.init_args\.seed=-1: give a seed in 0\.\.", cli=True)
option_fault("option: negative num_samples", ["--data.init_args.num_samples=-4"], r"--data\.init_args\.num_samples=-4: give a number of images")
option_fault("option: infinite learning rate", [f"{LR}=.inf"], r"--model\.init_args\.optimizer\.init_args\.lr=inf: the learning rate must be a positive", cli=True)
option_fault("option: max_epochs -2", ["--trainer.max_epochs=-2"], r"--trainer: `max_epochs` must be a non-negative integer or -1\. You passed in -2", cli=True)
option_fault("option: accumulate_grad_batches 0", ["--trainer.accumulate_grad_batches=0"], r"--trainer\.accumulate_grad_batches=0: give 1 or more", cli=True)
option_fault("option: check_val_every_n_epoch 0", ["--trainer.check_val_every_n_epoch=0"], r"--trainer\.check_val_every_n_epoch=0: give 1", cli=True)
option_fault("option: val_check_interval 0", ["--trainer.val_check_interval=0"], r"--trainer\.val_check_interval=0: give a share of the epoch", cli=True)
option_fault("option: negative gradient_clip_val", ["--trainer.gradient_clip_val=-1"], r"--trainer\.gradient_clip_val=-1(\.0)?: give 0", cli=True)
option_fault("option: negative seed_everything", ["--seed_everything=-1"], r"--seed_everything=-1: give a seed in 0\.\.4294967295", cli=True)
option_fault("option: negative budget patience", ["--budget.patience=-1"], r"--budget\.patience=-1: give 1 or more validations", cli=True)
option_fault("option: negative budget min_steps", ["--budget.min_steps=-5"], r"--budget\.min_steps=-5: give 0 or more", cli=True)
option_fault("option: budget warmup 2", ["--budget.warmup=2"], r"--budget\.warmup=2(\.0)?: a share of the steps", cli=True)
option_fault("option: model name close to one (resnet_18)", ["--model.init_args.model=resnet_18"],
             r"unknown classification model 'resnet_18': did you mean resnet18\b", cli=True)
option_fault("option: model name in capitals (LeNet5)", ["--model.init_args.model=LeNet5"], r"unknown classification model 'LeNet5': did you mean lenet5\?", cli=True)
option_fault("option: in_channels 4", ["--data.init_args.in_channels=4"], r"--data\.init_args\.in_channels=4: image files are read as 1", cli=True)
option_fault("option: num_classes 0", ["--model.init_args.num_classes=0"], r"--model\.init_args\.num_classes=0 disagrees with the data's 3", cli=True)
option_fault("option: class_names one short", ["--model.init_args.class_names=[circle, square]"],
             r"--model\.init_args\.class_names=\['circle', 'square'\] disagrees with the data's", cli=True)
fault("option: --ckpt_path last without a config", lambda: lambda: run_cli("test", "--ckpt_path=last"),
      r"^visiontasks: error: --ckpt_path last needs --config \(the config names the experiment", raises=SystemExit)
fault("option: a loose checkpoint without a config", lambda: (damaged(Path("loose.ckpt")), lambda: run_cli("predict", "--ckpt_path=loose.ckpt"))[1],
      r"^visiontasks: error: --ckpt_path loose\.ckpt: a checkpoint outside a run folder .*give --config too", raises=SystemExit)
fault("option: a missing checkpoint without a config", lambda: lambda: run_cli("fit", "--ckpt_path=runs/x/1/checkpoints/last.ckpt"),
      r"^visiontasks: error: --ckpt_path runs/x/1/checkpoints/last\.ckpt: checkpoint file not found", raises=SystemExit)


@pytest.mark.slow  # four commands: 8 s
def test_fit_of_a_runs_checkpoint_without_a_config_resumes_that_run(caplog):
    """``fit --ckpt_path <run>/checkpoints/last.ckpt`` needs no config, as the other commands; validate and test of it
    print no warning (Lightning's "Be aware that when using `ckpt_path`..." is about callbacks the run owns)."""
    import warnings

    fit = run_cli("fit", "--config", LENET, *SMALL, "--data.init_args.in_channels=3", "--trainer.max_steps=-1",
                  "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--run_id=first")  # fmt: skip
    checkpoint = fit.run.path / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 0
    resumed = run_cli("fit", f"--ckpt_path={checkpoint}", "--trainer.max_epochs=2")
    assert resumed.run.path == fit.run.path.resolve() and [p.name for p in Path("runs/lenet5").iterdir()] == ["first"]
    assert resumed.datamodule.in_channels == 3 and resumed.trainer.current_epoch == 2  # the run's data, trained on
    again = torch.load(checkpoint, weights_only=True)
    assert (again["epoch"], again["global_step"]) == (1, 2)  # epoch 1 added to the run's own last.ckpt
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always", append=True)  # after the filters of what is expected by design
        for command in ("validate", "test"):
            run_cli(command, f"--ckpt_path={checkpoint}")
    said = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert (fit.run.path / "test").is_dir() and not said, said


class DeleteImagesMidEpoch(pl.Callback):
    """Deletes every image file of ``data/`` at the second training batch, while the loader workers read them."""

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 1:
            for path in Path("data").rglob("*.png"):
                path.unlink()


def test_a_file_deleted_mid_epoch_in_a_loader_worker_is_one_line_naming_it():
    class_folders(Path("data"), per_class=16)
    with pytest.raises(SystemExit) as stopped:
        run_cli("fit", "--config", LENET, "--trainer.logger=false", "--data=ImageFolderDataModule", "--data.root=data",
                "--data.num_workers=2", "--data.cache_images=false", "--data.batch_size=2", "--data.image_size=16",
                "--data.in_channels=1", "--data.test_fraction=0", "--trainer.max_epochs=1",
                f"--trainer.callbacks+={__name__}.DeleteImagesMidEpoch")  # fmt: skip
    said = str(stopped.value.code)
    assert re.fullmatch(r"visiontasks: error: data/(cat|dog)/\d+\.png: image file not found \(was it moved or deleted while the data "
                        r"was in use\?\)\. Put it back or fix the path, and keep the data folder unchanged while a command reads it\.",
                        said), said  # fmt: skip
    assert not list(Path("data").rglob("*.png"))  # the callback did delete them, mid-epoch


# ----- the runner -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name, caplog, capsys):
    run_case(FAULTS[name], caplog, capsys)


# ----- signals: SIGTERM and Ctrl+C save where the fit stands, say how to resume, exit non-zero -----
@pytest.mark.slow
@pytest.mark.xdist_group("resume")  # shares the uninterrupted run (conftest.py) with tests/test_runs.py
@pytest.mark.parametrize("received, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_epoch_saves_a_checkpoint_and_the_resumed_run_ends_as_the_uninterrupted_one(received, status, uninterrupted_run):
    env = dict(os.environ, WANDB_MODE="disabled")
    command = [*RESUMABLE, "--experiment=stopped"]
    started = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, state = time.time() + 600, None
    while time.time() < deadline and started.poll() is None:  # signal during epoch 1, once epoch 0's last.ckpt exists
        saved = list(Path("runs/stopped").glob("*/checkpoints/last.ckpt"))
        try:
            state = torch.load(saved[0], weights_only=True) if saved else None
        except (RuntimeError, EOFError):
            state = None
        if state and state["epoch"] == 0:
            break
        time.sleep(0.05)
    started.send_signal(received)
    _, stderr = started.communicate(timeout=600)
    assert state is not None, "the run ended before the signal"
    assert started.returncode == status, stderr[-2000:]
    (run,) = Path("runs/stopped").iterdir()
    checkpoint = run / "checkpoints" / "last.ckpt"
    message = rf"{received.name}: the fit stopped at epoch 1, step (\d+); saved \S*{re.escape(str(checkpoint))}\. Resume with: "
    found = re.search(message + r"python3?\S* -m visiontasks fit .*--experiment=stopped --ckpt_path=last", stderr)
    assert found, stderr[-2000:]
    stopped = torch.load(checkpoint, weights_only=True)
    assert stopped["interrupted_by"] == received.name and stopped["global_step"] == int(found.group(1))
    assert 0 < stopped["ShapesDataModule"]["batches_done"] < stopped["ShapesDataModule"]["batches"]  # mid-epoch

    resumed = subprocess.run([*command, "--ckpt_path=last"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole, again = torch.load(uninterrupted_run, weights_only=True), torch.load(checkpoint, weights_only=True)
    assert (whole["epoch"], whole["global_step"]) == (again["epoch"], again["global_step"]) and "interrupted_by" not in again
    for name, value in whole["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][name], value, rtol=0, atol=1e-6)



# ----- a quiet console: a fit of each shipped config warns only of what the user can act on --------
ACTIONABLE = (
    r"is smaller than the logging interval",  # the shortened run: set log_every_n_steps
    r"does not have many workers",  # the shortened run's num_workers=0: raise num_workers
)
FAST_CONFIG = "lenet5.yaml"


@pytest.mark.parametrize("config", [pytest.param(c.name, marks=() if c.name == FAST_CONFIG else pytest.mark.slow)
                                    for c in sorted(CONFIGS.glob("*.yaml"))])  # fmt: skip
def test_a_fit_of_each_shipped_config_warns_only_of_what_the_user_can_act_on(config, caplog):
    import warnings

    size = 64 if "rcnn" in config else 32
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always", append=True)  # after the filters of what is expected by design
        cli = run_cli("fit", "--config", str(CONFIGS / config), *tiny(num_samples=16, batch_size=4, image_size=size),
                      "--trainer.logger=false")  # fmt: skip
        run_cli("fit", "--config", str(CONFIGS / config), *tiny(num_samples=16, batch_size=4, image_size=size), "--trainer.logger=false",
                f"--ckpt_path={cli.run.path / 'checkpoints' / 'last.ckpt'}", "--trainer.max_epochs=2")  # and its resume  # fmt: skip
    assert (cli.run.path / "checkpoints" / "last.ckpt").is_file()
    said = [f"{w.category.__name__}: {w.message}" for w in caught] + [r.getMessage() for r in caplog.records if r.name.startswith(("pytorch_lightning", "lightning"))]
    unexpected = [line for line in said if not any(re.search(pattern, line) for pattern in ACTIONABLE)]
    assert not unexpected, unexpected


# ----- start-up: a data error does not wait on the tasks' imports -------------------------------------
def test_import_visiontasks_imports_its_names_when_first_used():
    """``import visiontasks`` loads neither torch nor Lightning (a COCO check fails fast); each name, when first
    used, comes from its module."""
    import sys

    import visiontasks

    code = "import sys, visiontasks; print(sorted({'torch', 'pytorch_lightning'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-300:]
    assert {name: getattr(visiontasks, name).__name__ for name in visiontasks.__all__ if name != "__version__"} == {
        name: name for name in visiontasks.__all__ if name != "__version__"}  # fmt: skip
    assert "SegmentationTask" in dir(visiontasks) and visiontasks.DataError.__module__ == "visiontasks.errors"
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        visiontasks.Nothing  # noqa: B018
