"""Classic segmentation baselines: each shipped config through the CLI (fit, test, predict), each method
through the Python API, and the vote table they share."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
from helpers import CONFIGS, newest_run, run_cli, tiny
from PIL import Image

from visiontasks import ClassicSegmentationTask, ShapesDataModule
from visiontasks.metrics import segmentation_metrics
from visiontasks.models.classic_segmentation import NUM_KEYS, ClassicMethod, ClassicSegmentation, build_segmenter
from visiontasks.models.registry import model_names

METHODS = model_names("segmentation", by_gradient=False)

DATA = dict(task="segmentation", num_samples=40, image_size=48, batch_size=8)
WHOLE_SPLITS = [f"--trainer.limit_{split}_batches=1.0" for split in ("train", "val", "test")]
ARGS = [*tiny(num_samples=DATA["num_samples"], batch_size=DATA["batch_size"], image_size=DATA["image_size"]), *WHOLE_SPLITS]


def all_background_miou(**data_options) -> float:
    """The test mIoU of predicting background everywhere, on the same test split and metric."""
    data = ShapesDataModule(**{**DATA, **data_options})
    data.setup("test")
    metrics = segmentation_metrics(data.num_classes)
    for batch in data.test_dataloader():
        metrics.update(torch.zeros_like(batch["mask"]), batch["mask"])
    return float(metrics.compute()["miou"])


@pytest.mark.parametrize("config", ["classic_threshold.yaml", "classic_edges.yaml", "classic_kmeans.yaml"])
def test_shipped_config_fit_test_predict_beats_all_background(config, caplog):
    config = str(CONFIGS / config)
    with caplog.at_level(logging.INFO):
        run_cli("fit", "--config", config, *ARGS)
    assert "separates objects from background, not one object class from another" in caplog.text
    checkpoint = newest_run() / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert state["model.votes"].sum() > 0 and "new_votes" not in state  # the learned table is in the checkpoint
    assert any((newest_run() / "checkpoints").glob("best-*.ckpt"))
    restored = ClassicSegmentationTask.load_from_checkpoint(checkpoint)
    assert torch.equal(restored.model.votes, state["model.votes"])

    tested = run_cli("test", "--config", config, f"--ckpt_path={checkpoint}", *ARGS).trainer.callback_metrics
    assert {"test/miou", "test/dice", "test/acc", "test/loss"} <= set(tested)
    trivial = all_background_miou()
    assert float(tested["test/miou"]) > trivial + 0.1, (float(tested["test/miou"]), trivial)

    photos = Path("photos")
    photos.mkdir()
    Image.fromarray(ShapesDataModule(**DATA).make_sources()["all"][0]["image"]).resize((37, 29)).save(photos / "a.png")
    run_cli("predict", "--config", config, f"--ckpt_path={checkpoint}", f"--data.init_args.predict_dir={photos}",
            *ARGS, "--data.init_args.image_size=null")  # fmt: skip
    mask = Image.open(newest_run() / "predictions" / "a.png")
    assert mask.size == (37, 29) and mask.mode == "L" and np.asarray(mask).max() < 4
    assert Image.open(newest_run() / "predictions" / "a_overlay.png").size == (37, 29)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_finds_the_objects_after_counting_votes(method):
    """One shape class: the split into object and background is what these methods do; IoU of the object."""
    data = ShapesDataModule(**{**DATA, "shapes": ["circle"]})
    data.setup("fit")
    data.setup("test")
    model = ClassicSegmentation(method, num_classes=2)
    for batch in data.train_dataloader():
        model.add_votes(model.count(model.keys(batch["image"]), batch["mask"]))
    assert model.classes_predicted() == [0, 1]
    metrics = segmentation_metrics(2)
    for batch in data.test_dataloader():
        scores = model(batch["image"])
        assert scores.shape == (len(batch["image"]), 2, 48, 48)
        metrics.update(scores.argmax(dim=1), batch["mask"])
    object_iou = float(metrics.compute()["iou_per_class"][1])
    assert object_iou > 0.7, object_iou


def test_methods_by_name_and_their_options():
    assert set(METHODS) == set(get_args(ClassicMethod))
    assert build_segmenter("local_threshold", block_size=21).block_size == 21
    with pytest.raises(ValueError, match="unknown classic segmentation method 'snakes'"):
        build_segmenter("snakes")
    with pytest.raises(ValueError, match=r"model 'kmeans' has no option sigma \(its options: n_clusters, position_weight, seed\)"):
        ClassicSegmentationTask(num_classes=3, model="kmeans", model_options={"sigma": 1.0})
    flat = np.full((16, 16, 3), 0.5)
    for method in METHODS:  # a blank image is one region, not an error
        assert build_segmenter(method)(flat).shape == (16, 16)


def test_vote_table_falls_back_on_the_class_frequencies():
    model = ClassicSegmentation("otsu", num_classes=3)
    keys = torch.tensor([[[0, 0, 1, 1]]])
    assert (model.scores(keys).argmax(dim=1) == 0).all()  # nothing counted yet: background everywhere
    masks = torch.tensor([[[2, 2, 1, 255]]])  # key 0 is class 2; key 1 once class 1, once unlabelled
    model.add_votes(model.count(keys, masks))
    assert model.votes.sum() == 3 and model.votes[1].tolist() == [0, 1, 0]
    unseen = torch.tensor([[[NUM_KEYS - 1]]])
    assert model.scores(keys).argmax(dim=1).tolist() == [[[2, 2, 1, 1]]]
    assert model.scores(unseen).argmax(dim=1).item() == 2  # the most frequent class overall
    assert model.classes_predicted() == [1, 2]
    torch.testing.assert_close(model.scores(keys).exp().sum(dim=1), torch.ones(1, 1, 4))


def test_method_and_options_from_the_command_line():
    from visiontasks.cli import main

    sys.argv = ["visiontasks"]
    config = str(CONFIGS / "classic_threshold.yaml")
    cli = main(["--config", config, "--model.init_args.model=local_threshold",
                "--model.init_args.model_options={block_size: 21, offset: 0.01}"], run=False)  # fmt: skip
    assert cli.model.model.segmenter.block_size == 21 and cli.model.model.segmenter.offset == 0.01


def test_python_api_as_in_the_docs(tmp_path):
    import pytorch_lightning as pl

    data = ShapesDataModule(**{**DATA, "shapes": ["circle"]})
    task = ClassicSegmentationTask(model="canny_watershed", num_classes=data.num_classes, class_names=data.class_names)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, datamodule=data)
    assert trainer.test(task, datamodule=data, verbose=False)[0]["test/miou"] > 0.8
    images = next(iter(data.test_dataloader()))["image"]
    assert task(images).argmax(dim=1).shape == (len(images), 48, 48)
