"""Weights & Biases: offline runs keep their metrics and prediction overlays for a later `wandb sync`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers import CONFIGS, run_cli

from visiontasks.callbacks.wandb_images import overlay_arguments
from visiontasks.results import DetectionResult, LocalizationResult, SegmentationResult


def test_offline_run_logs_validation_overlays(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_cli("fit", "--config", str(CONFIGS / "lenet5.yaml"), "--data.init_args.num_samples=60",
            "--data.init_args.num_workers=0", "--trainer.max_epochs=1")  # fmt: skip
    (run,) = Path("runs").glob("lenet5/*/wandb/offline-run-*")
    assert list(run.glob("files/media/images/val/examples_*.png"))
    assert list(run.glob("*.wandb"))


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
