"""Semantic segmentation through the CLI with the shipped configs, and through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torchvision
from helpers import CONFIGS, assert_scores, fit_validate_test, newest_run, run_cli, tiny
from PIL import Image

from visiontasks import SegmentationFolderDataModule, SegmentationTask, ShapesDataModule
from visiontasks.metrics import segmentation_metrics
from visiontasks.models.registry import create_model
from visiontasks.models.segmentation_losses import SegmentationLoss
from visiontasks.models.unet import UNet

TINY = tiny(num_samples=24, batch_size=4, image_size=32)
SHAPE_CLASSES = ["background", "circle", "square", "triangle"]


@pytest.mark.parametrize(
    "config, image_size", [("unet.yaml", "null"), pytest.param("deeplabv3.yaml", "32", marks=pytest.mark.slow)]
)
def test_shipped_config_fit_validate_test_predict(config, image_size):
    config = str(CONFIGS / config)
    checkpoint, tested = fit_validate_test(config, TINY, "miou")
    assert {"test/miou", "test/dice", "test/acc", "test/loss"} <= set(tested.trainer.callback_metrics)
    report = json.loads((newest_run() / "test_report.json").read_text())
    assert [row["class"] for row in report] == [*SHAPE_CLASSES, "mean (miou)"]

    # Odd sizes, not multiples of the U-Net's 16; with image_size null the U-Net sees them as they are.
    photos = Path("photos")
    photos.mkdir()
    sizes = [(37, 29), (64, 48), (21, 50)]  # (width, height)
    for i, size in enumerate(sizes):
        Image.new("RGB", size, (i * 60, 90, 200)).save(photos / f"photo{i}.png")
    predict_args = [f"--ckpt_path={checkpoint}", f"--data.init_args.predict_dir={photos}", *TINY]
    run_cli("predict", "--config", config, *predict_args, f"--data.init_args.image_size={image_size}")
    for i, size in enumerate(sizes):
        mask = Image.open(newest_run() / "predictions" / f"photo{i}.png")
        assert mask.size == size and mask.mode == "L"
        assert np.asarray(mask).max() < len(SHAPE_CLASSES)
        assert Image.open(newest_run() / "predictions" / f"photo{i}_overlay.png").size == size


def test_unet_learns_far_above_an_untrained_one(tmp_path):
    """mIoU on held-out shapes: an untrained net predicts ~one class; 200 steps separate circles from crosses."""
    pl.seed_everything(0)
    data = ShapesDataModule(task="segmentation", shapes=["circle", "cross"], num_samples=500, image_size=32,
                            batch_size=8, train_transforms=["HorizontalFlip"])  # fmt: skip
    task = SegmentationTask(num_classes=3, model_options={"base_channels": 8, "depth": 3}, loss="ce+dice",
                            optimizer=lambda p: torch.optim.AdamW(p, lr=5e-3, fused=True))  # fmt: skip
    # inference_mode=False: metric states reset under inference mode could not be updated by fit afterwards
    trainer = pl.Trainer(max_epochs=5, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, inference_mode=False)  # fmt: skip
    untrained = trainer.validate(task, datamodule=data, verbose=False)[0]["val/miou"]
    trainer.fit(task, datamodule=data)
    trained = float(trainer.callback_metrics["val/miou"])
    assert trained > untrained + 0.3 and trained > 0.65, (untrained, trained)


def test_unet_takes_any_size_and_every_option():
    for options in ({}, {"upsampling": "bilinear", "batch_norm": False, "dropout": [0.1, 0.1, 0.2, 0.3]}):
        model = UNet(num_classes=3, in_channels=1, base_channels=4, depth=3, **options)
        assert model(torch.rand(2, 1, 37, 50)).shape == (2, 3, 37, 50)
    with pytest.raises(ValueError, match="dropout needs one value or depth \\+ 1 = 4 values"):
        UNet(num_classes=3, depth=3, dropout=[0.1, 0.2])
    with pytest.raises(ValueError, match="unknown segmentation model 'unet3d': did you mean unet"):
        create_model("unet3d", "segmentation", num_classes=3)


def test_binary_task_with_dice_loss_and_class_weights(tmp_path):
    data = ShapesDataModule(task="segmentation", shapes=["circle"], num_samples=16, image_size=32, batch_size=4)
    task = SegmentationTask(num_classes=2, binary=True, loss="dice", class_weights=[0.3, 1.0],
                            model_options={"base_channels": 4, "depth": 2})
    assert task.model.head.out_channels == 1
    logits = task(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 2, 32, 32) and (logits[:, 0] == 0).all()  # [0, z]: softmax = [1 - sigmoid, sigmoid]
    trainer = pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=data)
    assert {"val/miou", "val/dice", "val/acc"} <= set(trainer.callback_metrics)
    with pytest.raises(ValueError, match="binary: true needs exactly 2 classes"):
        SegmentationTask(num_classes=3, binary=True)


@pytest.mark.parametrize("kind", ["ce", "dice", "ce+dice", "focal"])
def test_losses_skip_ignored_pixels(kind):
    torch.manual_seed(0)
    loss = SegmentationLoss(kind, ignore_index=255, weight=torch.tensor([0.5, 1.0, 2.0]))
    logits, target = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randint(0, 3, (2, 8, 8))
    target[:, :3] = 255
    changed = logits.detach().clone()
    changed[:, :, :3] = 50 * torch.randn(2, 3, 3, 8)  # whatever the net says where nobody labelled
    assert torch.isclose(loss(logits, target), loss(changed, target))
    loss(logits, target).backward()
    assert logits.grad[:, :, :3].abs().max() == 0
    assert loss(logits, torch.full_like(target, 255)).item() == 0  # nothing labelled: no signal, no NaN


def test_binary_cross_entropy_is_cross_entropy_on_zero_and_logit():
    z, target = torch.randn(2, 1, 5, 5), torch.randint(0, 2, (2, 5, 5))
    two_class = torch.cat([torch.zeros_like(z), z], dim=1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], target.float())
    torch.testing.assert_close(SegmentationLoss("ce")(two_class, target), expected)


def test_metrics_skip_ignored_pixels():
    metrics = segmentation_metrics(num_classes=3, ignore_index=255)
    target = torch.randint(0, 3, (2, 16, 16))
    preds = target.clone()
    target[:, :4] = 255
    preds[:, :4] = (preds[:, :4] + 1) % 3  # wrong, but where nobody labelled
    values = metrics(preds, target)
    assert values["miou"] == 1 and values["dice"] == 1 and values["acc"] == 1
    assert values["iou_per_class"].tolist() == [1.0, 1.0, 1.0]


def test_pretrained_backbone_from_a_file_into_a_grayscale_deeplab(tmp_path):
    backbone = torchvision.models.mobilenet_v3_large()
    torch.save(backbone.state_dict(), tmp_path / "backbone.pth")
    task = SegmentationTask(model="deeplabv3_mobilenet_v3_large", num_classes=3, in_channels=1)
    task.load_pretrained(str(tmp_path / "backbone.pth"))
    first = backbone.features[0][0].weight
    torch.testing.assert_close(task.model.backbone["0"][0].weight, first.sum(dim=1, keepdim=True))
    torch.testing.assert_close(task.model.backbone["16"][0].weight, backbone.features[16][0].weight)


def test_trains_on_exported_mask_folders_through_the_cli():
    ShapesDataModule(task="segmentation", num_samples=24, image_size=32).export("shapes")
    folder_data = [
        "--data=visiontasks.SegmentationFolderDataModule",
        "--data.init_args.root=shapes",
        f"--data.init_args.class_names=[{','.join(SHAPE_CLASSES)}]",
    ]
    cli = run_cli("fit", "--config", str(CONFIGS / "unet.yaml"), *folder_data, *TINY[2:])
    assert cli.model.class_names == SHAPE_CLASSES and cli.trainer.global_step > 0
    assert_scores(cli.trainer.callback_metrics, "val/miou", "val/loss")


def numpy_scores(predicted: list[np.ndarray], truth: list[np.ndarray], num_classes: int, ignore: int = 255) -> dict:
    """mIoU, Dice and pixel accuracy from class masks the plain way: one confusion matrix over all pixels;
    classes absent from both prediction and truth are left out of the means."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for found, true in zip(predicted, truth):
        keep = true != ignore
        matrix += np.bincount(true[keep] * num_classes + found[keep], minlength=num_classes**2).reshape(num_classes, -1)
    tp = np.diag(matrix).astype(float)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    seen = tp + fp + fn > 0
    return {"miou": (tp / (tp + fp + fn))[seen].mean(), "dice": (2 * tp / (2 * tp + fp + fn))[seen].mean(),
            "acc": tp.sum() / matrix.sum()}  # fmt: skip


def test_logged_miou_equals_numpy_on_the_written_masks_at_a_resized_input(tmp_path):
    """The network sees 48 px files at 32 px; the logged validation mIoU, Dice and pixel accuracy are scored in
    the files' own pixels, so they equal a plain computation on the PNG masks predict writes vs the mask files."""
    ShapesDataModule(task="segmentation", num_samples=100, image_size=48, seed=3).export(tmp_path / "shapes")
    data = SegmentationFolderDataModule(root=str(tmp_path / "shapes"), class_names=SHAPE_CLASSES, image_size=32,
                                        batch_size=4, predict_dir=str(tmp_path / "shapes" / "images" / "val"))  # fmt: skip
    pl.seed_everything(0)
    task = SegmentationTask(num_classes=4, model_options={"base_channels": 8, "depth": 3},
                            optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3, fused=True))  # fmt: skip
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=4, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    trainer.fit(task, datamodule=data)
    logged = trainer.validate(task, datamodule=data, verbose=False)[0]
    trainer.predict(task, datamodule=data, return_predictions=False)

    names = sorted(p.name for p in (tmp_path / "shapes" / "masks" / "val").glob("*.png"))
    truth = [np.asarray(Image.open(tmp_path / "shapes" / "masks" / "val" / name)) for name in names]
    predicted = [np.asarray(Image.open(tmp_path / "predict" / "predictions" / name)) for name in names]
    assert predicted[0].shape == truth[0].shape == (48, 48)
    expected = numpy_scores(predicted, truth, num_classes=4)
    for name, value in expected.items():
        assert logged[f"val/{name}"] == pytest.approx(value, abs=1e-5), (name, logged, expected)
    # not an empty comparison: most pixels right, and more than one class predicted
    assert expected["acc"] > 0.5 and len(np.unique(np.concatenate([p.ravel() for p in predicted]))) > 1


def test_a_large_mask_resized_a_band_of_rows_at_a_time_is_the_one_resize_mask(monkeypatch):
    """Masks over ONE_RESIZE values are resized in bands of ROWS_AT_ONCE rows (memory of a 12000 px photo); the
    classes are those of one bilinear resize of the probabilities (up to float rounding at near-ties)."""
    from visiontasks.tasks import segmentation

    scores = torch.randn(4, 12, 9, generator=torch.Generator().manual_seed(0)) * 3
    whole = segmentation.class_mask(scores, (301, 203))
    monkeypatch.setattr(segmentation, "ONE_RESIZE", 0)
    monkeypatch.setattr(segmentation, "ROWS_AT_ONCE", 64)  # 5 bands, the last one short
    banded = segmentation.class_mask(scores, (301, 203))
    assert banded.shape == whole.shape == (301, 203) and banded.dtype == torch.uint8
    assert (banded == whole).float().mean() > 0.999 and len(whole.unique()) == 4
