"""Run-folder pictures: every run leaves its curves, prediction grid and test plots, whatever the logger."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from helpers import CONFIGS, newest_run, run_cli, tiny
from PIL import Image


def assert_picture(path: Path, min_size: int = 64) -> np.ndarray:
    """``path`` is a PNG of some size with more than one colour in it."""
    assert path.is_file(), f"{path} missing; the folder holds {sorted(p.name for p in path.parent.iterdir())}"
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert min(pixels.shape[:2]) >= min_size, pixels.shape
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 8, f"{path} is (nearly) one colour"
    return pixels


def test_metrics_csv_and_curves_every_epoch_with_train_loss_however_short():
    run_cli("fit", "--config", str(CONFIGS / "lenet5.yaml"), *tiny(num_samples=40), "--trainer.max_epochs=2",
            "--trainer.logger=false")  # fmt: skip
    run = newest_run()
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(float(row["train/loss"]) > 0 and float(row["val/loss"]) > 0 and row["val/acc"] for row in rows)
    assert "train/acc" in rows[0]
    assert_picture(run / "curves.png")
