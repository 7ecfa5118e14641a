"""timm backbones by name in every task kind, their weights from a file or the Hugging Face cache (never a download).

Tiny timm models (resnet10t, convnext_atto) on 32-64 px shapes, a few steps each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from helpers import CONFIGS, newest_run, run_cli, tiny
from safetensors.torch import save_file

from visiontasks import BaseTask, CheckpointError, ClassificationTask, DataError, LocalizationTask, SegmentationTask
from visiontasks.export import export
from visiontasks.models.timm_weights import hub_repo


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No test may reach the Hub: an empty cache of its own, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))


def place_in_hub_cache(repo: str, state: dict[str, torch.Tensor]) -> Path:
    """``state`` as ``repo``'s model.safetensors in the Hugging Face cache layout (what `hf download` leaves)."""
    folder = Path(f"hf_cache/models--{repo.replace('/', '--')}")
    (folder / "snapshots" / "0").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0")
    save_file(state, folder / "snapshots" / "0" / "model.safetensors")
    return folder


def test_a_misspelt_timm_name_is_refused_with_the_close_names():
    with pytest.raises(SystemExit, match=r"unknown classification model 'timm/convnxt_atto': did you mean timm/convnext_atto"):
        run_cli("fit", "--config", str(CONFIGS / "classification.yaml"), "--model.init_args.model=timm/convnxt_atto")
    with pytest.raises(DataError, match=r"'convnext_atto': did you mean timm/convnext_atto"):
        ClassificationTask(model="convnext_atto", num_classes=3)  # the prefix forgotten
    with pytest.raises(DataError, match=r"model 'timm/resnet10t' has no option dropout \(its options: .*drop_rate"):
        ClassificationTask(model="timm/resnet10t", num_classes=3, model_options={"dropout": 0.1})
    with pytest.raises(DataError, match=r"timm/resnet10t under unet: Model depth is 4, but you provide `decoder_channels` for 5"):
        SegmentationTask(model="timm/resnet10t", num_classes=3, model_options={"encoder_depth": 4})
    with pytest.raises(DataError, match=r"segmentation-models-pytorch's unet has no option decoder_atrous_rates"):
        SegmentationTask(model="timm/resnet10t", num_classes=3, model_options={"architecture": "unet",
                                                                               "decoder_atrous_rates": [6, 12]})  # fmt: skip


def test_models_lists_the_names_each_task_takes_timm_ones_too(capsys):
    run_cli("models", "timm/convnext_at*")
    printed = capsys.readouterr().out
    for heading in ("classification models, for ClassificationTask", "segmentation models, for SegmentationTask",
                    "detection backbones, for DetectionTask"):  # fmt: skip
        assert heading in printed
    assert printed.count("  timm/convnext_atto\n") == 3 and "resnet18" not in printed
    run_cli("models")
    assert "  resnet18\n" in capsys.readouterr().out


def test_timm_weights_load_offline_from_the_cache_or_a_file_and_say_how_to_fetch_them():
    task = ClassificationTask(model="timm/resnet10t", num_classes=3, in_channels=1)
    repo = hub_repo("DEFAULT", "resnet10t")
    with pytest.raises(DataError, match=rf"timm weights hf-hub:{repo} are not in the Hugging Face cache .*hf_cache "
                                        rf"\(HF_HUB_OFFLINE is set\): .* run `hf download {repo}`"):  # fmt: skip
        task.load_pretrained("DEFAULT")
    source = timm.create_model("resnet10t")  # random weights, in timm's format, with its 1000-class head
    place_in_hub_cache(repo, source.state_dict())
    task.load_pretrained("DEFAULT")
    gray = source.conv1[0].weight.sum(dim=1, keepdim=True)  # RGB filters summed for one channel
    assert torch.allclose(task.model.conv1[0].weight, gray, atol=1e-5)
    assert task.model.fc.out_features == 3 and torch.equal(task.model.layer3[0].conv1.weight, source.layer3[0].conv1.weight)

    # a file on disk, safetensors or a PyTorch state dict, into an encoder and into the localizer's backbone
    save_file(source.state_dict(), "resnet10t.safetensors")
    torch.save(source.state_dict(), "resnet10t.pth")
    block = source.layer4[0].conv2.weight
    segmenter = SegmentationTask(model="timm/resnet10t", num_classes=3)
    segmenter.load_pretrained("resnet10t.safetensors")
    assert torch.equal(segmenter.model.net.encoder.model.layer4[0].conv2.weight, block)
    localizer = LocalizationTask(model="timm/resnet10t", num_classes=3)
    localizer.load_pretrained("resnet10t.pth")
    assert torch.equal(localizer.model.backbone.layer4[0].conv2.weight, block)


def test_timm_segmenters_take_any_image_size_and_grayscale():
    """segmentation-models-pytorch refuses sizes that are no multiple of the encoder's stride: padded and cropped.
    (configs/unet_timm.yaml trains in the docs' tests: docs/backbones.md.)"""
    options = {"architecture": "unet", "encoder_depth": 4, "decoder_channels": [32, 16, 16, 8]}
    task = SegmentationTask(model="timm/resnet10t", num_classes=3, in_channels=1, model_options=options)
    with torch.no_grad():
        assert task.eval()(torch.rand(2, 1, 48, 70)).shape == (2, 3, 48, 70)


@pytest.mark.slow
def test_timm_classifier_trains_on_grayscale_predicts_exports_and_travels_as_a_model_folder(capsys):
    from test_predict import assert_export_parity, user_photos

    config = str(CONFIGS / "classification.yaml")
    args = [*tiny(num_samples=24, image_size=32), "--model.init_args.model=timm/resnet10t", "--data.init_args.in_channels=1"]
    run_cli("fit", "--config", config, *args)
    checkpoint = newest_run() / "checkpoints" / "last.ckpt"
    task = ClassificationTask.load_from_checkpoint(checkpoint)
    assert task.hparams.model == "timm/resnet10t" and task.model.conv1[0].in_channels == 1
    photos = user_photos()
    results = task.predict(photos)
    assert len(results) == 3 and all(r.label in task.class_names for r in results)
    assert_export_parity(task, export(task, "onnx", Path("export/model.onnx")), photos)

    # the model folder: written from the experiment's last checkpoint, loaded without the run or a download
    run_cli("save", "--ckpt_path", "last", "--config", config, "--output", "shapes-resnet10t")
    folder = Path("shapes-resnet10t")
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", "config.yaml", "README.md"}
    card = (folder / "README.md").read_text()
    assert "library_name: visiontasks" in card and "| val/acc |" in card and "timm/resnet10t" in card
    restored = BaseTask.from_pretrained(folder)
    assert type(restored) is ClassificationTask and restored.class_names == task.class_names
    again = restored.predict(photos)
    assert [(r.label, round(r.score, 4)) for r in again] == [(r.label, round(r.score, 4)) for r in results]
    with pytest.raises(CheckpointError, match="this is a ClassificationTask's model, not a SegmentationTask's"):
        SegmentationTask.from_pretrained(folder)


@pytest.mark.slow
def test_timm_backbone_localizes_rgb():
    args = [*tiny(num_samples=24, image_size=32), "--model.init_args.model=timm/convnext_atto"]
    cli = run_cli("fit", "--config", str(CONFIGS / "localization.yaml"), *args)
    assert cli.model.model.backbone.stem[0].in_channels == 3
    assert 0 <= float(cli.trainer.callback_metrics["val/loc_acc"]) <= 1


@pytest.mark.slow
def test_faster_rcnn_on_a_timm_backbone_trains():
    args = [*tiny(num_samples=16, image_size=64), "--model.init_args.model_options.backbone=timm/resnet10t",
            "--model.init_args.model_options.fpn_channels=32"]  # fmt: skip
    cli = run_cli("fit", "--config", str(CONFIGS / "faster_rcnn.yaml"), *args)
    assert type(cli.model.model.backbone).__name__ == "TimmFeaturePyramid"
    assert 0 <= float(cli.trainer.callback_metrics["val/map_50"]) <= 1
