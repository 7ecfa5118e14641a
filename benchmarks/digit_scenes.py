"""Real handwritten digits (scikit-learn's bundled 8x8 set, 1797 scans) written in every on-disk format the
package reads, at sizes the shipped configs were not tuned at: data to check that the configs' defaults
transfer to a user's own images (see measure_configs.py).

    python benchmarks/digit_scenes.py digits/      # writes digits/<kind>/ for the six kinds

- classification: one digit per 28x28 grayscale file (MNIST's size), class folders + CSV;
- localization: one digit of 14-34 px anywhere on an 80x80 canvas, CSV with its box;
- detection / instance_segmentation: 1-3 digits on 96x96 scenes, COCO JSON with non-contiguous
  category ids (10, 20, ..., 100) and RLE masks of the digit strokes;
- segmentation: the same scenes as image + index-PNG mask folders (0 background, 1-10 digits 0-9).

The digit scans are split 60/20/20 before any scene is drawn, so no scan appears in two splits.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.export import export_splits
from visiontasks.kinds import kind_of

DIGITS = [str(d) for d in range(10)]
SCENES = {  # kind: (canvas size, digit size range in px, digits per image)
    "classification": (28, (20, 22), (1, 1)),
    "localization": (80, (14, 34), (1, 1)),
    "detection": (96, (14, 30), (1, 3)),
    "instance_segmentation": (96, (14, 30), (1, 3)),
    "segmentation": (96, (14, 30), (1, 3)),
}
COUNTS = {"classification": 1797, "localization": 1500, "detection": 600, "instance_segmentation": 600, "segmentation": 600}


def _digit(scan: np.ndarray, size: int) -> np.ndarray:
    """An 8x8 scan (0-16) as a size x size float stroke image in [0, 1], smoothly upscaled."""
    image = Image.fromarray((scan * (255 / 16)).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255


class DigitScenes(Sequence):
    """Scenes drawn on demand from a pool of scans; scene ``i`` is the same every time (seeded by ``i``)."""

    def __init__(self, kind: str, scans: np.ndarray, labels: np.ndarray, count: int, seed: int) -> None:
        self.kind, self.scans, self.digit_labels, self.count, self.seed = kind_of(kind), scans, labels, count, seed
        self.canvas, self.sizes, self.per_image = SCENES[kind]
        self.labels = None
        if self.kind.single_object:  # one scan per image, in order, for stratified splits
            self.labels = [int(labels[i % len(labels)]) for i in range(count)]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.count:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, i])
        canvas = self.canvas
        background = rng.uniform(0.0, 0.25) + rng.normal(0, 0.04, (canvas, canvas))
        image, mask = background.copy(), np.zeros((canvas, canvas), np.uint8)
        labels, boxes, masks = [], [], []
        wanted = rng.integers(self.per_image[0], self.per_image[1] + 1)
        picks = [i % len(self.scans)] if self.kind.single_object else rng.integers(len(self.scans), size=wanted)
        for pick in picks:
            size = int(rng.integers(self.sizes[0], self.sizes[1] + 1))
            for _ in range(20):  # a free place: digits do not overlap
                y, x = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
                if not mask[y : y + size, x : x + size].any():
                    break
            else:
                continue
            stroke = _digit(self.scans[pick], size)
            on = stroke > 0.35
            if not on.any():
                continue
            ink = rng.uniform(0.7, 1.0)
            region = image[y : y + size, x : x + size]
            region[:] = np.maximum(region, stroke * ink)
            label = int(self.digit_labels[pick])
            mask[y : y + size, x : x + size][on] = label + 1
            full = np.zeros((canvas, canvas), np.uint8)
            full[y : y + size, x : x + size] = on
            rows, cols = np.nonzero(full)
            labels.append(label)
            boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
            masks.append(full)
        pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)[..., None]
        targets = self.kind.targets(
            np.asarray(labels, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(masks, np.uint8).reshape(-1, canvas, canvas), mask, len(DIGITS),
        )  # fmt: skip
        return {"image": pixels, "path": f"digits/{i:06d}.png"} | targets


class DigitScenesDataModule(VisionDataModule):
    """The digit scenes of one kind, split by scan (60/20/20) before drawing; only for writing to disk."""

    def __init__(self, task: str, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(seed=seed, in_channels=1, **kwargs)
        self.task = task
        self.class_names = (["background"] if self.kind.mask else []) + DIGITS

    def make_sources(self) -> dict[str, Source]:
        digits = load_digits()
        order = np.random.default_rng(self.seed).permutation(len(digits.target))
        cut = np.cumsum([0, 0.6, 0.2, 0.2]) * len(order)
        sources = {}
        for n, split in enumerate(("train", "val", "test")):
            pool = order[int(cut[n]) : int(cut[n + 1])]
            share = len(pool) / len(order)
            count = len(pool) if self.task == "classification" else int(COUNTS[self.task] * share)
            sources[split] = DigitScenes(self.task, digits.images[pool], digits.target[pool], count, self.seed + n)
        return sources


def renumber_categories(root: Path) -> None:
    """COCO files of real sets rarely number their categories 1..N: use 10, 20, ... as a user's file might."""
    for path in root.glob("*.json"):
        coco = json.loads(path.read_text())
        for category in coco["categories"]:
            category["id"] *= 10
        for annotation in coco["annotations"]:
            annotation["category_id"] *= 10
        path.write_text(json.dumps(coco))


def write_all(root: Path) -> None:
    for kind in SCENES:
        folder = export_splits(DigitScenesDataModule(kind), root / kind)
        if kind_of(kind).per_object:
            renumber_categories(folder)
        print(f"{kind}: {folder}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    write_all(parser.parse_args().root)
