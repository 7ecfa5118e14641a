"""Run-folder pictures: every run leaves its curves, prediction grid and test plots, whatever the logger."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
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


def test_curves_of_short_epochs_are_drawn_less_often_and_the_last_shows_every_epoch(monkeypatch):
    """Epochs shorter than ten drawings of curves.png redraw it every few epochs; the end of training draws the
    picture of every epoch, the same pixels as drawing metrics.csv afresh."""
    import matplotlib.pyplot as plt

    from visiontasks.pictures import callback
    from visiontasks.pictures.curves import curves_figure
    from visiontasks.pictures.history import read_history

    monkeypatch.setattr(callback, "CURVES_SHARE", 1e-6)  # any epoch is short next to a drawing
    cli = run_cli("fit", "--config", str(CONFIGS / "lenet5.yaml"), *tiny(num_samples=40), "--trainer.max_epochs=3",
                  "--trainer.logger=false")  # fmt: skip
    pictures = next(c for c in cli.trainer.callbacks if isinstance(c, callback.RunPictures))
    assert len(pictures.calls["curves"]) == 2 and len(pictures.calls["metrics_csv"]) == 3  # epoch 0 and the end
    assert len(pictures.calls["grid"]) == 1 and len(pictures.calls["filters"]) == 2  # epoch 0; the filters at the end too
    run = newest_run()
    rows = read_history(run / "metrics.csv")
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    figure = curves_figure(rows)
    figure.savefig(run / "afresh.png", dpi=100, pil_kwargs={"compress_level": 1})
    plt.close(figure)
    assert np.array_equal(assert_picture(run / "curves.png"), assert_picture(run / "afresh.png"))


def fit_and_test(config: str, *extra: str) -> tuple[Path, Path]:
    """Fit a shipped config on a few tiny batches, test its last checkpoint; the run folder and its test folder."""
    args = ["--config", str(CONFIGS / f"{config}.yaml"), *tiny(num_samples=40, batch_size=4), *extra]
    run_cli("fit", *args)
    run = newest_run()
    run_cli("test", *args, f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    return run, newest_run()


@pytest.mark.parametrize(
    "config, extra, pictures",
    [
        ("lenet5", [], ["confusion_matrix", "confusion_matrix_normalized", "roc", "grad_cam", "top_losses"]),
        pytest.param("localization", ["--model.init_args.model=simple_cnn", "--data.init_args.image_size=32"],
                     ["confusion_matrix", "confusion_matrix_normalized", "top_losses"], marks=pytest.mark.slow),
        ("unet", ["--model.init_args.model_options={depth: 2, base_channels: 4}", "--data.init_args.image_size=32"],
         ["confusion_matrix", "confusion_matrix_normalized", "top_losses"]),
        pytest.param("mask_rcnn", [], ["pr_curve", "top_losses"], marks=pytest.mark.slow),
    ],
)
def test_every_task_leaves_its_pictures_and_a_per_class_report(config, extra, pictures):
    run, tested = fit_and_test(config, *extra)
    for name in ("curves", "val_predictions", "filters"):
        assert_picture(run / f"{name}.png")
    for name in pictures:
        assert_picture(tested / f"{name}.png")
    rows = json.loads((tested / "test_report.json").read_text())
    assert len(rows) >= 2 and all("class" in row for row in rows)


def test_switches_turn_pictures_off():
    """The switched-off pictures are missing from a run that trained and wrote its other files."""
    cli = run_cli("fit", "--config", str(CONFIGS / "lenet5.yaml"), *tiny(num_samples=40), "--pictures.grid=0",
                  "--pictures.filters=false", "--pictures.curves=false", "--trainer.logger=false")  # fmt: skip
    run = newest_run()
    assert cli.trainer.global_step == 2 and [p.resolve() for p in Path("runs/lenet5").iterdir()] == [run.resolve()]
    made = {p.name for p in run.iterdir()}
    assert {"config.yaml", "checkpoints"} <= made, made  # written by this run, beside where the pictures would be
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert not made & {"val_predictions.png", "filters.png", "curves.png", "metrics.csv"}, made
