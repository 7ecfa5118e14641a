"""Helpers shared by the test modules: driving the public surface, and writing small data files.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

RESUMABLE = [sys.executable, "-m", "visiontasks", "fit", "--config", str(CONFIGS / "lenet5.yaml"), "--data.init_args.num_samples=1500",
             "--trainer.max_epochs=3", "--trainer.enable_progress_bar=false", "--trainer.logger=false"]  # fmt: skip
"""A fit long enough to stop mid-epoch (LeNet-5, 2 workers), for the kill, signal and resume tests."""

FAST_TRAINER = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]


def tiny(num_samples: int = 24, batch_size: int = 4, image_size: int | None = None) -> list[str]:
    """CLI overrides that shrink a shipped config to a few batches of a few small images."""
    size = [f"--data.init_args.image_size={image_size}"] if image_size else []
    return [
        f"--data.init_args.num_samples={num_samples}",
        *size,
        f"--data.init_args.batch_size={batch_size}",
        "--data.init_args.num_workers=0",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=1",
    ]


_LAST: list[Any] = []


def run_cli(*args: str):
    """Run ``python -m visiontasks ARGS`` in-process, as a user would, and return the CLI object."""
    from visiontasks.cli import main

    sys.argv = ["visiontasks"]  # pytest's own arguments are not the CLI's
    cli = main([*args, *FAST_TRAINER] if args[0] in ("fit", "validate", "test", "predict", "export", "cv") else list(args))
    _LAST[:] = [cli]
    return cli


def newest_run() -> Path:
    """The folder the last CLI call wrote into: the run folder after ``fit``, its ``test/``... folder after ``test``."""
    return _LAST[0].run.stage_dir


def fit_validate_test(config: str, args: list[str], metric: str) -> tuple[Path, Any]:
    """Fit a shipped config, validate and test its ``last.ckpt``; return the checkpoint and the test CLI.

    Checks the run folder holds the checkpoint and that ``val/<metric>`` is a score in [0, 1].
    """
    run_cli("fit", "--config", config, *args)
    checkpoint = newest_run() / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    validated = run_cli("validate", "--config", config, f"--ckpt_path={checkpoint}", *args)
    assert_scores(validated.trainer.callback_metrics, f"val/{metric}")
    return checkpoint, run_cli("test", "--config", config, f"--ckpt_path={checkpoint}", *args)


def assert_scores(metrics: dict[str, Any], *names: str) -> dict[str, float]:
    """Each of ``names`` was logged with a real value: losses finite and >= 0, every other metric in [0, 1]."""
    values = {name: float(metrics[name]) for name in names if name in metrics}
    assert list(values) == list(names), f"not logged: {sorted(set(names) - set(values))}; logged: {sorted(metrics)}"
    for name, value in values.items():
        low, high = (0.0, float("inf")) if name.endswith("loss") else (0.0, 1.0)
        assert low <= value <= high and value == value, (name, value)  # value == value: not NaN
    return values


def remove_checkpoints(folder: Path) -> None:
    """Delete the checkpoints a test left: pytest keeps its last three runs' folders, and a full run's
    checkpoints (detectors, 2-process runs) are about 8 GB."""
    for checkpoint in Path(folder).rglob("*.ckpt"):
        checkpoint.unlink()


# --------------------------------------------------------------------------------------------------
# Small data files, written by hand (the built-in shapes write the well-formed ones: ShapesDataModule.export)

COCO_IMAGE_SIZE = (30, 40)  # height, width of the images write_coco writes


def write_image(path: Path, size: int = 16, mode: str = "RGB") -> Path:
    """A plain grey image of ``size`` x ``size`` pixels in ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), 128).save(path)
    return path


def class_folders(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    """``root/<class>/<i>.png`` for each class."""
    for name in classes:
        for i in range(per_class):
            write_image(root / name / f"{i}.png")
    return root


def write_coco(root: Path, annotations: list[dict], images: int = 2, categories=((1, "cat"), (2, "dog")), **extra) -> Path:
    """``root/img{i}.png`` (30x40) and ``root/train.json`` holding ``annotations``."""
    root.mkdir(parents=True, exist_ok=True)
    height, width = COCO_IMAGE_SIZE
    entries = []
    for i in range(images):
        Image.new("RGB", (width, height), (40 * i, 90, 200)).save(root / f"img{i}.png")
        entries.append({"id": i + 1, "file_name": f"img{i}.png", "height": height, "width": width})
    for n, annotation in enumerate(annotations):
        annotation.setdefault("id", n + 1)
        annotation.setdefault("image_id", 1)
        annotation.setdefault("category_id", 1)
    coco = {"images": entries, "annotations": annotations, "categories": [{"id": i, "name": n} for i, n in categories]}
    coco.update(extra)
    path = root / "train.json"
    path.write_text(json.dumps(coco))
    return path


def edit_coco(root: Path, change) -> None:
    """Apply ``change`` to the parsed ``root/train.json`` and write it back."""
    coco = json.loads((root / "train.json").read_text())
    change(coco)
    (root / "train.json").write_text(json.dumps(coco))


def blocks(seed: int, height: int = 48, width: int = 40) -> np.ndarray:
    """An RGB image of 8-pixel blocks, each dark or bright: its mask can be read back from its pixels."""
    rng = np.random.default_rng(seed)
    bright = rng.integers(0, 2, size=(height // 8 + 1, width // 8 + 1)).repeat(8, 0).repeat(8, 1)[:height, :width]
    return np.stack([np.where(bright, 220, 30).astype(np.uint8)] * 3, axis=-1)


def write_pairs(root, count: int = 4, colour: bool = False, size: tuple[int, int] = (48, 40)) -> None:
    """``root/images/i.png`` with index (or VOC-coloured) masks ``root/masks/i.png`` = bright blocks."""
    from visiontasks.results.draw import voc_palette

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = blocks(i, *size)
        mask = (image[..., 0] > 128).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(voc_palette()[mask] if colour else mask).save(root / "masks" / f"{i}.png")
