"""The bad-input matrix: every data source, predict, the CLI and checkpoints, each with its outcome.

A case writes its (tiny) input into the test's folder and returns the action to run. It expects
either an error whose text names the file or option (``DataError`` from a data module, a one-line
``SystemExit`` from the CLI), or the documented handling, checked on the result and the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import CONFIGS, class_folders, edit_coco, run_cli, write_coco, write_image, write_pairs
from PIL import Image

from visiontasks import (
    ClassificationTask,
    CocoDataModule,
    CsvDataModule,
    DataError,
    ImageFolderDataModule,
    SegmentationFolderDataModule,
    ShapesDataModule,
)


@dataclass
class Case:
    make: Callable[[], Callable[[], Any]]  # writes the input, returns the action
    error: str | None = None  # regex the error text must match
    check: Callable[[Any, str], None] | None = None  # documented handling: (result, log text)
    raises: type[BaseException] = DataError
    gap: str | None = None  # a known shortfall: the case is expected to fail (strictly) until it is fixed


CASES: dict[str, Case] = {}


def case(name: str, make: Callable[[], Callable[[], Any]], error: str | None = None, check=None, raises=DataError,
         gap: str | None = None) -> None:  # fmt: skip
    CASES[name] = Case(make, error, check, raises, gap)


def set_up(data: Any) -> Any:
    data.setup("fit")
    return data


def sizes(data: Any) -> tuple[int, int, int]:
    return tuple(len(data.datasets[split]) for split in ("train", "val", "test"))


# ----- class folders ----------------------------------------------------------------------------
def folders(*damage: Callable[[Path], Any], root: str = "data", **kwargs: Any) -> Callable[[], Any]:
    for step in damage:
        step(Path(root))
    return lambda: set_up(ImageFolderDataModule(root=root, **kwargs))


def split_folders(root: Path) -> None:
    class_folders(root / "train")
    class_folders(root / "val")


def symlink(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target.resolve())


def truncate(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


case("folder: corrupt image", lambda: folders(class_folders, lambda r: (r / "cat" / "broken.png").write_bytes(b"no")),
     r"data/cat/broken\.png: cannot read this image")
case("folder: truncated image", lambda: folders(class_folders, lambda r: truncate(r / "dog" / "cut.png")),
     r"data/dog/cut\.png: cannot read .*corrupt or truncated")
case("folder: empty class folder", lambda: folders(class_folders, lambda r: (r / "bird").mkdir()),
     r"data/bird: class folder has no images")
case("folder: no class folders", lambda: folders(lambda r: r.mkdir()), r"data: no class folders found")
case("folder: missing root", lambda: folders(root="missing"), r"missing: data folder not found")
case("folder: class folders differ between splits",
     lambda: folders(lambda r: class_folders(r / "train"), lambda r: class_folders(r / "val", ("cat", "cow"))),
     r"data/val: class folders \['cat', 'cow'\] differ")
case("folder: val/ without train/", lambda: folders(lambda r: class_folders(r / "val")), r"data: has \['val'\] folders but no train/")
case("folder: too few images for a test split", lambda: folders(lambda r: class_folders(r, per_class=1)),
     r"the test split is empty; add data or change val_fraction/test_fraction")
case("folder: same file in train and val (link)",
     lambda: folders(split_folders, lambda r: symlink(r / "val" / "cat" / "x.png", r / "train" / "cat" / "0.png")),
     r"The val and train splits share 1 image file\(s\) \(data/val/cat/x\.png\)")
case("folder: byte-identical copies across splits warn", lambda: folders(split_folders),
     check=lambda data, log: "splits share 6 byte-identical image(s)" in log and sizes(data) == (6, 6, 6))
case("folder: hidden and non-image files are ignored",
     lambda: folders(class_folders, lambda r: (r / "cat" / ".DS_Store").write_bytes(b"x"),
                     lambda r: (r / "dog" / "notes.txt").write_text("x"), test_fraction=0.0, val_fraction=0.4),
     check=lambda data, log: sum(sizes(data)[:2]) == 6)  # fmt: skip


# ----- CSV ---------------------------------------------------------------------------------------
def pictures(count: int = 6) -> list[str]:
    """``img/<i>.png``, byte-identical files (for the copies check)."""
    return [str(write_image(Path(f"img/{i}.png"), size=8)) for i in range(count)]


def distinct_pictures(count: int = 6) -> list[str]:
    """``img/<i>.png``, each a different colour (no accidental identical copies)."""
    names = []
    for i in range(count):
        path = Path(f"img/{i}.png")
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (30 * i, 0, 0)).save(path)
        names.append(str(path))
    return names


def csv_file(name: str, lines: list[str], header: str = "image,label", **write: Any) -> str:
    Path(name).write_text("\n".join([header, *lines]) + "\n", **write)
    return name


def two_classes(count: int = 6, labels=("cat", "dog")) -> list[str]:
    return [f"{image},{labels[i % len(labels)]}" for i, image in enumerate(distinct_pictures(count))]


def csv_data(**kwargs: Any) -> Callable[[], Any]:
    return lambda: set_up(CsvDataModule(**kwargs))


def train_val(train: list[str], val: list[str], **kwargs: Any) -> Callable[[], Any]:
    return csv_data(csv_path=csv_file("train.csv", train), val_csv=csv_file("val.csv", val), **kwargs)


def targets(data: CsvDataModule) -> list[tuple[float, ...]]:
    """The target of every row, whichever split it fell in."""
    return [tuple(row) for row in data.datasets["train"].source.labels]


case("csv: file not found", lambda: csv_data(csv_path="nothere.csv"), r"nothere\.csv: CSV file not found")
case("csv: no rows", lambda: csv_data(csv_path=csv_file("t.csv", [])), r"t\.csv: the CSV has no rows")
case("csv: missing label column", lambda: csv_data(csv_path=csv_file("t.csv", ["a.png"], header="image")),
     r"t\.csv: missing column\(s\) \['label'\]")
case("csv: image file not found", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/no.png,cat"])),
     r"t\.csv row 8: image file img/no\.png not found")
case("csv: empty image cell", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), ",cat"])),
     r"t\.csv row 8: empty 'image' cell")
case("csv: label not in class_names",
     lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,cow"]), class_names=["cat", "dog"]),
     r"t\.csv row 8: unknown label 'cow'; known classes are \['cat', 'dog'\]")
case("csv: integer label out of range of class_names",
     lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(labels="01"), "img/0.png,7"]), class_names=["a", "b"]),
     r"t\.csv row 8: label 7 is out of range for 2 classes")
case("csv: val label that training lacks", lambda: train_val(two_classes()[:4], ["img/4.png,cow"]),
     r"val\.csv row 2: label 'cow' does not occur in the training CSV train\.csv")
case("csv: test integer label beyond training's",
     lambda: csv_data(csv_path=csv_file("train.csv", two_classes(labels="01")[:4]), val_csv=csv_file("val.csv", ["img/4.png,1"]),
                      test_csv=csv_file("test.csv", ["img/5.png,5"])),
     r"test\.csv row 2: label '5' does not occur in the training CSV")  # fmt: skip
case("csv: integer labels with a gap", lambda: csv_data(csv_path=csv_file("t.csv", two_classes(6, labels="013"))),
     r"t\.csv: integer labels \[0, 1, 3\] leave out \[2\]: classes are numbered 0\.\.N-1 without gaps")
case("csv: negative integer label", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(labels="01"), "img/0.png,-1"])),
     r"t\.csv row 8: label -1 is out of range for 2 classes")
case("csv: empty label cell", lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,"])),
     r"t\.csv row 8: empty label cell")
case("csv: declared class without training images warns",
     lambda: train_val(two_classes()[:4], ["img/4.png,cat"], class_names=["cat", "dog", "owl"]),
     check=lambda data, log: "classes ['owl'] of class_names have no training images" in log and data.num_classes == 3)
case("csv: spreadsheet file (BOM, CRLF)",
     lambda: csv_data(csv_path=csv_file("t.csv", two_classes(), encoding="utf-8-sig", newline="\r\n"), val_fraction=0.3),
     check=lambda data, log: data.class_names == ["cat", "dog"] and sum(sizes(data)) == 6)
case("csv: semicolon delimiter", lambda: csv_data(csv_path=csv_file("t.csv", [r.replace(",", ";") for r in two_classes()],
                                                                     header="image;label")),
     check=lambda data, log: data.class_names == ["cat", "dog"])  # fmt: skip
case("csv: tab delimiter, spaces around the header",
     lambda: csv_data(csv_path=csv_file("t.csv", [r.replace(",", "\t") for r in two_classes()], header=" image \t label ")),
     check=lambda data, log: data.class_names == ["cat", "dog"])
case("csv: not UTF-8 (Latin-1 export)",
     lambda: csv_data(csv_path=csv_file("t.csv", [*two_classes(), "img/0.png,café"], encoding="latin-1")),
     r"t\.csv: not UTF-8 text .*save it as 'CSV UTF-8'")
case("csv: several labels with ; make it multi-label",
     lambda: csv_data(csv_path=csv_file("t.csv", [f"{p},{lab}" for p, lab in zip(distinct_pictures(), ["cat", "dog", "cat;dog"] * 2)]),
                      test_fraction=0.0, val_fraction=0.34),
     check=lambda data, log: data.multilabel and data.class_names == ["cat", "dog"]
     and targets(data) == [(1, 0), (0, 1), (1, 1)] * 2)  # fmt: skip
case("csv: space-separated integers (Human Protein Atlas) are multi-label",
     lambda: csv_data(csv_path=csv_file("t.csv", [f"{p},{lab}" for p, lab in zip(distinct_pictures(), ["0", "2 1", "1"] * 2)])),
     check=lambda data, log: data.multilabel and data.num_classes == 3 and "several labels in one cell" in log)
case("csv: a class name with a space stays one label",
     lambda: csv_data(csv_path=csv_file("t.csv", two_classes(labels=("golden retriever", "pug")))),
     check=lambda data, log: not data.multilabel and data.class_names == ["golden retriever", "pug"])
case("csv: several labels in a localization row",
     lambda: csv_data(csv_path=csv_file("t.csv", [f"{p},cat;dog,1,1,5,5" for p in distinct_pictures()],
                                        header="image,label,x_min,y_min,x_max,y_max")),
     r"t\.csv row 2: 'cat;dog': several labels in a row with box columns")  # fmt: skip
case("csv: same image in train and val", lambda: train_val(two_classes()[:4], ["img/3.png,dog", "img/4.png,cat"]),
     r"The val and train splits share 1 image file\(s\) \(img/3\.png\)")
case("csv: byte-identical copies across splits warn",
     lambda: train_val([f"{p},{'cat' if i % 2 else 'dog'}" for i, p in enumerate(pictures()[:4])], ["img/4.png,cat", "img/5.png,dog"]),
     check=lambda data, log: "The val and train splits share 2 byte-identical image(s)" in log)
case("csv: multi-label data on a single-label task",
     lambda: fit_one_step(CsvDataModule(csv_path=csv_file("t.csv", [f"{p},{lab}" for p, lab in zip(distinct_pictures(), ["a;b", "a", "b"] * 2)]),
                                        image_size=32), ClassificationTask(model="simple_cnn", num_classes=2)),
     r"The data has several labels per image but the task has multilabel=False: set --model.init_args.multilabel true")  # fmt: skip
case("csv: multi-label data trains a multi-label task, an empty cell is no class",
     lambda: fit_one_step(CsvDataModule(csv_path=csv_file("t.csv", [f"{p},{lab}" for p, lab in zip(distinct_pictures(), ["a;b", "a", ""] * 2)]),
                                        image_size=32, batch_size=2), ClassificationTask(model="simple_cnn", num_classes=2, multilabel=True)),
     check=lambda trainer, log: trainer.global_step == 1 and (trainer.datamodule.datasets["train"].source.labels[2] == 0).all())  # fmt: skip

BOXES = "image,label,x_min,y_min,x_max,y_max"


def box_csv(*bad: str, header: str = BOXES) -> Callable[[], Any]:
    good = [f"{p},{'cat' if i % 2 else 'dog'},1,1,6,6" for i, p in enumerate(distinct_pictures())]
    return csv_data(csv_path=csv_file("b.csv", [*good, *bad], header=header))


case("csv boxes: only some CSVs have box columns",
     lambda: csv_data(csv_path=csv_file("b.csv", [f"{p},cat,1,1,5,5" for p in distinct_pictures(4)], header=BOXES),
                      val_csv=csv_file("v.csv", ["img/5.png,cat"])),
     r"Some CSVs have box columns")  # fmt: skip
case("csv boxes: not a number", lambda: box_csv("img/0.png,cat,1,one,5,5"), r"b\.csv row 8: box columns .* need pixel numbers")
case("csv boxes: val label that training lacks",
     lambda: csv_data(csv_path=csv_file("b.csv", [f"{p},cat,1,1,5,5" for p in distinct_pictures()[:4]], header=BOXES),
                      val_csv=csv_file("v.csv", ["img/5.png,owl,1,1,5,5"], header=BOXES)),
     r"v\.csv row 2: label 'owl' does not occur in the training CSV b\.csv")  # fmt: skip


# ----- COCO --------------------------------------------------------------------------------------
def coco(*damage: Callable[[Path], Any], annotations=None, **kwargs: Any) -> Callable[[], Any]:
    path = write_coco(Path("c"), annotations or [{"bbox": [1, 1, 5, 5]}, {"bbox": [2, 2, 5, 5], "image_id": 2}])
    for step in damage:
        step(Path("c"))
    return lambda: set_up(CocoDataModule(train_json=str(path), **kwargs))


case("coco: file not found", lambda: lambda: CocoDataModule(train_json="none.json"), r"none\.json: COCO annotation file not found")
case("coco: no categories", lambda: coco(lambda r: edit_coco(r, lambda c: c.update(categories=[]))),
     r"c/train\.json: the file lists no categories")
case("coco: val categories differ",
     lambda: coco(val_json=str(write_coco(Path("v"), [{"bbox": [1, 1, 5, 5]}], categories=((1, "cat"), (3, "owl"))))),
     r"v/train\.json: categories \[\(3, 'owl'\)\] \(id, name\) differ")
case("coco: width/height in the JSON differ from the file",
     lambda: coco(lambda r: edit_coco(r, lambda c: c["images"][0].update(width=50))), r"c/img0\.png: the file is 40x30 but .* says 50x30")
case("coco: same images in train and val",
     lambda: coco(lambda r: (r / "val.json").write_text((r / "train.json").read_text()), val_json="c/val.json"),
     r"The val and train splits share 2 image file\(s\) \(c/img0\.png, c/img1\.png\)")
case("coco: localization with several boxes in one image",
     lambda: coco(annotations=[{"bbox": [1, 1, 5, 5]}, {"bbox": [9, 9, 5, 5]}], task="localization"),
     r"c/train\.json: 1 images have several boxes \(img0\.png\).*several_objects: largest")
case("coco: broken polygon", lambda: coco(annotations=[{"bbox": [1, 1, 5, 5], "segmentation": [[1, 2, 3]]}], task="instance_segmentation"),
     r"c/train\.json: annotation 1: polygon \[1, 2, 3\] is not a flat")
case("coco: no segmentation for instance segmentation", lambda: coco(task="instance_segmentation"),
     r"c/train\.json: annotation 1: segmentation is neither polygons nor RLE")
case("coco: RLE of another size",
     lambda: coco(annotations=[{"bbox": [1, 1, 5, 5], "segmentation": {"size": [10, 10], "counts": "abc"}}], task="instance_segmentation"),
     r"c/train\.json: annotation 1: RLE size \[10, 10\] differs from the image's \[30, 40\]")
case("coco: images folder that does not hold the files", lambda: coco(images="elsewhere"),
     r"elsewhere/img0\.png: image file not found \(listed in c/train\.json\)")


# ----- segmentation folders ---------------------------------------------------------------------
def segmentation(*damage: Callable[[Path], Any], root: str = "seg", **kwargs: Any) -> Callable[[], Any]:
    for step in damage:
        step(Path(root))
    options = {"class_names": ["background", "bright"], **kwargs}
    return lambda: set_up(SegmentationFolderDataModule(root=root, **options))


def split_first(root: Path, splits=("train", "val")) -> None:
    for split in splits:
        write_pairs(root / split, count=3 if split == "train" else 2)


def kind_first(root: Path) -> None:
    for split in ("train", "val"):
        write_pairs(root / "tmp" / split, count=3 if split == "train" else 2)
        for kind in ("images", "masks"):
            (root / kind).mkdir(parents=True, exist_ok=True)
            (root / "tmp" / split / kind).rename(root / kind / split)


case("seg: split-first layout (train/images, train/masks) is found", lambda: segmentation(split_first),
     check=lambda data, log: sizes(data) == (3, 2, 2) and "split-first layout found: ['train', 'val']" in log)
case("seg: kind-first layout (images/train) is found", lambda: segmentation(kind_first),
     check=lambda data, log: sizes(data) == (3, 2, 2) and "kind-first layout found" in log)
case("seg: both layouts at once", lambda: segmentation(split_first, write_pairs),
     r"seg: holds both images/ and train/images/; keep one layout")
case("seg: split-first without train/", lambda: segmentation(lambda r: split_first(r, ("val", "test"))),
     r"seg: has \['val', 'test'\] split folders but no train/ one")
case("seg: no images folder", lambda: segmentation(lambda r: (r / "pictures").mkdir(parents=True)),
     r"seg: no images/ folder nor train/images/")
case("seg: fewer than two class names", lambda: segmentation(write_pairs, class_names=["object"]),
     r"class_names \['object'\]: give at least two")
case("seg: class_colors of another length", lambda: segmentation(write_pairs, class_colors=[[0, 0, 0]]),
     r"class_colors has 1 colours for 2 class_names")
case("seg: two images with one name", lambda: segmentation(write_pairs, lambda r: write_image(r / "images" / "0.jpg", size=8)),
     r"seg/images/0\.(png|jpg) and seg/images/0\.(png|jpg) have the same name")
case("seg: empty images folder", lambda: segmentation(lambda r: (r / "images").mkdir(parents=True), lambda r: (r / "masks").mkdir()),
     r"seg/images: no images with masks found")
case("seg: split-first val image without a mask",
     lambda: segmentation(split_first, lambda r: (r / "val" / "masks" / "1.png").unlink()),
     r"seg/val/images/1\.png: image without a mask \(looked for seg/val/masks/1\.png\)")
case("seg: same image in train and val (link)",
     lambda: segmentation(split_first, lambda r: (r / "val" / "images" / "0.png").unlink(),
                          lambda r: symlink(r / "val" / "images" / "0.png", r / "train" / "images" / "0.png")),
     r"The val and train splits share 1 image file\(s\) \(seg/val/images/0\.png\)")  # fmt: skip


# ----- predict_dir ------------------------------------------------------------------------------
def predict_dir(*damage: Callable[[Path], Any]) -> Callable[[], Any]:
    for step in damage:
        step(Path("photos"))

    def action() -> Any:
        data = ShapesDataModule(num_samples=6, image_size=16, predict_dir="photos")
        data.setup("predict")
        return data

    return action


def photos(root: Path) -> None:
    for name in ("a.png", "b.jpg", "c.png"):
        write_image(root / name, size=8)


case("predict: folder not found", lambda: predict_dir(), r"photos: predict folder not found")
case("predict: no images in the folder", lambda: predict_dir(lambda r: (r / "notes.txt").parent.mkdir() or (r / "notes.txt").write_text("x")),
     r"photos: no images found")
case("predict: unreadable images are skipped and named",
     lambda: predict_dir(photos, lambda r: (r / "b.jpg").write_bytes(b"broken"), lambda r: truncate(r / "d.png")),
     check=lambda data, log: len(data.datasets["predict"]) == 2
     and re.search(r"Skipped 2 unreadable images: photos/b\.jpg \(.*\); photos/d\.png \(", log))
case("predict: no readable image at all", lambda: predict_dir(lambda r: write_image(r / "a.png").write_bytes(b"x")),
     r"photos: none of the 1 images can be read \(photos/a\.png")


def fit_one_step(data: Any, task: Any) -> Callable[[], Any]:
    import pytorch_lightning as pl

    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", devices=1)  # fmt: skip
    return lambda: trainer.fit(task, datamodule=data) or trainer


# ----- the command line -------------------------------------------------------------------------
LENET = str(CONFIGS / "lenet5.yaml")
SMALL = ["--trainer.logger=false", "--data.init_args.num_samples=24", "--data.init_args.num_workers=0",
         "--data.init_args.batch_size=8", "--trainer.max_steps=1", "--trainer.limit_val_batches=1"]  # fmt: skip


def cli(*args: str, config: str = LENET) -> Callable[[], Any]:
    return lambda: run_cli(args[0], "--config", config, *SMALL, *args[1:])


def cli_case(name: str, make: Callable[[], Callable[[], Any]], error: str, gap: str | None = None) -> None:
    case(name, make, error, raises=SystemExit, gap=gap)


def yaml_file(text: str) -> str:
    Path("bad.yaml").write_text(text)
    return "bad.yaml"


cli_case("cli: unknown option", lambda: cli("fit", "--data.init_args.batch_sise=4"), r"batch_sise")
cli_case("cli: option of the wrong type", lambda: cli("fit", "--data.init_args.batch_size=many"), r"batch_size.*many|many.*batch_size")
cli_case("cli: unknown model name", lambda: cli("fit", "--model.init_args.model=resnet9000"), r"resnet9000")
cli_case("cli: unknown task class", lambda: cli("fit", "--model=NoSuchTask"), r"NoSuchTask")
cli_case("cli: unknown subcommand", lambda: lambda: run_cli("train", "--config", LENET),
         r"invalid choice: '?train'? \(choose from '?fit'?, '?validate'?")
cli_case("cli: config file missing", lambda: cli("fit", config="nothere.yaml"), r"nothere\.yaml")
cli_case("cli: YAML syntax error", lambda: cli("fit", config=yaml_file("model: [unclosed\n  x: 1\n")), r"bad\.yaml: not valid YAML at line \d+")
cli_case("cli: YAML that is not a mapping", lambda: cli("fit", config=yaml_file("- just\n- a list\n")), r"bad\.yaml: a config is a mapping of options")
cli_case("cli: unknown transform", lambda: cli("fit", "--data.init_args.train_transforms=[Flipp]"),
         r"^visiontasks: error: Unknown transform 'Flipp'")
cli_case("cli: transform argument it does not take",
         lambda: cli("fit", "--data.init_args.train_transforms=[{class_path: HorizontalFlip, init_args: {q: 1}}]"),
         r"^visiontasks: error: Transform 'HorizontalFlip' .*'q' are not valid")
cli_case("cli: num_classes that disagrees with the data", lambda: cli("fit", "--model.init_args.num_classes=5"),
         r"^visiontasks: error: --model.init_args.num_classes=5 disagrees with the data's 3")
cli_case("cli: class_names that disagree with the data", lambda: cli("fit", "--model.init_args.class_names=[a, b, c]"),
         r"^visiontasks: error: --model.init_args.class_names=\['a', 'b', 'c'\] disagrees with the data's")
cli_case("cli: error in a data module's __init__ is one line",
         lambda: cli("fit", "--data=ImageFolderDataModule", "--data.root=nowhere"),
         r"^visiontasks: error: nowhere: data folder not found\.$")
cli_case("cli: bad CSV through the CLI", lambda: cli("fit", "--data=CsvDataModule", "--data.csv_path=none.csv"),
         r"^visiontasks: error: none\.csv: CSV file not found\.$")


def predict_with_a_broken_photo() -> Callable[[], Any]:
    photos(Path("photos"))
    Path("photos/b.jpg").write_bytes(b"broken")
    run_cli("fit", "--config", LENET, *SMALL)  # predict needs a checkpoint
    return lambda: run_cli("predict", "--config", LENET, *SMALL[:3], "--ckpt_path=last", "--data.init_args.predict_dir=photos")


def wrote_the_readable_predictions(_: Any, log: str) -> None:
    (written,) = Path("runs").glob("**/predictions.csv")
    rows = written.read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["photos/a.png", "photos/c.png"], rows
    assert "Skipped 1 unreadable images: photos/b.jpg" in log


case("cli predict: a broken photo is skipped, the rest written", predict_with_a_broken_photo,
     check=lambda result, log: wrote_the_readable_predictions(result, log) is None)


# ----- checkpoints ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def segmentation_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint of another task (a tiny U-Net), for the classification config to refuse."""
    import pytorch_lightning as pl

    from visiontasks import SegmentationTask

    path = tmp_path_factory.mktemp("ckpt") / "unet.ckpt"
    task = SegmentationTask(num_classes=4, model_options={"base_channels": 4, "depth": 1})
    trainer = pl.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_progress_bar=False, default_root_dir=path.parent,
                         enable_checkpointing=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.fit(task, datamodule=ShapesDataModule(task="segmentation", num_samples=8, image_size=16, batch_size=4))
    trainer.save_checkpoint(path)
    return path


def test_checkpoint_of_another_task_is_named(segmentation_checkpoint):
    with pytest.raises(SystemExit, match=rf"^visiontasks: error: .*{segmentation_checkpoint.name}"):
        run_cli("test", "--config", LENET, *SMALL, f"--ckpt_path={segmentation_checkpoint}")


cli_case("checkpoint: file not found", lambda: cli("test", "--ckpt_path=missing.ckpt"), r"^visiontasks: error: .*missing\.ckpt")
cli_case("checkpoint: not a checkpoint",
         lambda: (Path("notes.ckpt").write_text("hello"), cli("test", "--ckpt_path=notes.ckpt"))[1],
         r"^visiontasks: error: .*notes\.ckpt")
cli_case("checkpoint: a torch file without weights",
         lambda: (__import__("torch").save({"epoch": 1}, "empty.ckpt"), cli("test", "--ckpt_path=empty.ckpt"))[1],
         r"^visiontasks: error: .*empty\.ckpt")


# ----- the runner -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=c.gap) if c.gap else ()) for n, c in CASES.items()]
)
def test_bad_input(name, caplog, capsys):
    run_case(CASES[name], caplog, capsys)


def run_case(case: Case, caplog, capsys) -> None:
    """Run ``case`` and check its outcome: the error (one line for the CLI's own) or the documented handling."""
    action = case.make()
    if case.error is None:
        with caplog.at_level(logging.INFO):
            result = action()
        assert case.check(result, caplog.text), f"unexpected handling; log: {caplog.text}"
        return
    with pytest.raises(case.raises) as info:
        action()
    message = str(info.value)
    text = message + capsys.readouterr().err
    assert re.search(case.error, message if case.error.startswith("^") else text, re.MULTILINE), text
    if case.raises is SystemExit:
        assert info.value.code not in (0, None)
        if message.startswith("visiontasks: error:"):  # our own errors: one line, no traceback
            assert "\n" not in message, message


def test_multi_label_csv_makes_the_cli_task_multi_label(capsys):
    """On the command line the task follows the data: a multi-label CSV trains a multi-label classifier."""
    csv_path = csv_file("t.csv", [f"{p},{lab}" for p, lab in zip(distinct_pictures(), ["a;b", "a", "b"] * 2)])
    cli = run_cli("fit", "--config", LENET, "--data=CsvDataModule", f"--data.csv_path={csv_path}", "--data.image_size=32",
                  "--data.in_channels=1", "--data.batch_size=2", "--data.test_fraction=0", "--data.val_fraction=0.34",
                  "--trainer.max_steps=1", "--trainer.limit_val_batches=1", "--trainer.logger=false")  # fmt: skip
    assert cli.model.hparams.multilabel is True and cli.trainer.global_step == 1
    assert "ClassificationTask is multi-label (multilabel: true)" in capsys.readouterr().out
