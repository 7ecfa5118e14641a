"""Weights & Biases: offline runs keep their metrics and prediction overlays for a later `wandb sync`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from helpers import CONFIGS, run_cli, tiny

from visiontasks.pictures.overlays import overlay_arguments
from visiontasks.results import DetectionResult, LocalizationResult, SegmentationResult


def offline_run(experiment: str) -> tuple[Path, str]:
    """The newest offline W&B run of ``experiment`` and its records file read as text (protobuf strings are
    stored as they are, so logged keys, JSON values and the config can be found in it)."""
    run = sorted(Path("runs").glob(f"{experiment}/*/wandb/offline-run-*"))[-1]
    (records,) = run.glob("*.wandb")
    return run, records.read_bytes().decode("latin-1")


def test_a_fresh_process_fits_with_the_shipped_w_and_b_logger():
    """The user's command in a new process, where wandb is not imported before the CLI parses (in-process tests
    have it imported already): the WandbLogger options the run folder adds (group, job type, id) must parse."""
    command = [sys.executable, "-m", "visiontasks", "fit", "--config", str(CONFIGS / "lenet5.yaml"),
               "--trainer.enable_progress_bar=false", *tiny(num_samples=30, batch_size=8)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ, WANDB_MODE="offline"))
    assert result.returncode == 0, result.stderr[-3000:]
    run, records = offline_run("lenet5")
    assert "train/loss" in records and "val/acc" in records


def test_offline_run_holds_overlays_with_truth_and_prediction_config_and_test_tables(monkeypatch):
    """Boxes of both groups reach the offline run, with the whole config; `test` adds the report table,
    W&B's confusion matrix and the pictures; train/loss is logged although the epoch has only 2 steps."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["--config", str(CONFIGS / "localization.yaml"), "--model.init_args.model=simple_cnn",
            "--data.init_args.image_size=32", *tiny(num_samples=60, batch_size=8)]  # fmt: skip
    run_cli("fit", *args)
    run, records = offline_run("localization")
    boxes = [json.loads(p.read_text()) for p in run.glob("files/media/metadata/boxes2D/val/examples_*.json")]
    truth = [b for b in boxes if all("scores" not in box for box in b["box_data"])]
    predicted = [b for b in boxes if all("scores" in box for box in b["box_data"])]
    assert truth and predicted and truth[0]["class_labels"] == {"0": "circle", "1": "square", "2": "triangle"}
    assert "val/examples_wandb_delimeter_ground_truth" in records and "val/examples_wandb_delimeter_predictions" in records
    assert '"class_path":"visiontasks.ShapesDataModule"' in records and "max_epochs" in records  # data, trainer
    assert "train/loss" in records

    run_cli("test", *args, "--ckpt_path=last")
    run, _ = offline_run("localization")
    (report,) = run.glob("files/media/table/test/test_report_*.table.json")
    table = json.loads(report.read_text())
    assert {"class", "precision", "iou", "loc_acc"} <= set(table["columns"]) and len(table["data"]) == 5  # 3 classes, 2 averages
    assert list(run.glob("files/media/table/test/confusion_matrix_plot_table_*.table.json"))
    assert list(run.glob("files/media/images/test/confusion_matrix_normalized_*.png"))


def test_offline_run_holds_segmentation_masks_of_both_groups(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_cli("fit", "--config", str(CONFIGS / "unet.yaml"), "--model.init_args.model_options={depth: 2, base_channels: 4}",
            "--data.init_args.image_size=32", *tiny(num_samples=40))  # fmt: skip
    run, records = offline_run("unet")
    masks = sorted(run.glob("files/media/images/mask/val/examples_*.png"))
    assert len(masks) >= 2, sorted(p.relative_to(run) for p in run.rglob("*.png"))
    assert "val/examples_wandb_delimeter_ground_truth" in records and "val/examples_wandb_delimeter_predictions" in records


def test_overlays_for_boxes_masks_and_labels():
    image = torch.rand(3, 32, 48)
    names = ["background", "circle", "square"]
    detection = DetectionResult(boxes=np.array([[0.0, 0.0, 96.0, 64.0]]), labels=np.array([2]), scores=np.array([0.9]),
                                category_ids=[1, 2, 3], orig_size=(64, 96), class_names=names)  # fmt: skip
    (box,) = overlay_arguments(image, detection, names)["boxes"]["predictions"]["box_data"]
    assert box["position"] == {"minX": 0.0, "minY": 0.0, "maxX": 48.0, "maxY": 32.0} and box["class_id"] == 2

    located = LocalizationResult(label="circle", score=0.8, box=(4, 4, 20, 30), orig_size=(32, 48), class_names=names)
    arguments = overlay_arguments(image, located, names)
    assert arguments["caption"] == "circle (0.8)" and arguments["boxes"]["predictions"]["box_data"][0]["class_id"] == 1

    segmented = SegmentationResult(mask=np.ones((64, 96), dtype=np.uint8), orig_size=(64, 96), class_names=names)
    mask = overlay_arguments(image, segmented, names)["masks"]["predictions"]["mask_data"]
    assert mask.shape == (32, 48) and mask.min() == 1


def test_test_command_resumes_the_fit_w_and_b_run(monkeypatch):
    """One experiment, one W&B run: `test --ckpt_path best` logs into the run that `fit` made (same id)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["--config", str(CONFIGS / "lenet5.yaml"), "--data.init_args.num_samples=60", "--data.init_args.num_workers=0",
            "--trainer.max_epochs=1"]  # fmt: skip
    fitted = run_cli("fit", *args)
    run_cli("test", *args, "--ckpt_path=best")
    (run,) = Path("runs/lenet5").iterdir()
    offline = sorted(run.glob("wandb/offline-run-*"))
    assert len(offline) == 2, offline  # the fit and the test, both in the run folder
    assert all(p.name.endswith(f"-lenet5-{run.name}") for p in offline), offline
    assert fitted.trainer.logger.version == f"lenet5-{run.name}"
