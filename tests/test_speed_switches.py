"""The GPU speed switches, run on the CPU: each gives the numbers the default path gives (or trains as well)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers import CONFIGS, run_cli, tiny

from visiontasks import ChannelsLast, ClassificationTask, Compile, ImageFolderDataModule, SegmentationTask, ShapesDataModule
from visiontasks.data import dataset, labelled, workers
from visiontasks.data.cache import CachedSource
from visiontasks.data.images import check_images, read_image
from visiontasks.data.transforms import apply_pipeline
from visiontasks.data.collate import collate

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def test_gpu_preset_trains_with_bf16_channels_last_and_uint8_batches():
    """configs/presets/gpu.yaml after a task's config, on the CPU: bf16-mixed, channels-last weights, uint8 batches."""
    cli = run_cli("fit", "--config", str(CONFIGS / "unet.yaml"), "--config", str(CONFIGS / "presets" / "gpu.yaml"),
                  *tiny(num_samples=24, batch_size=4, image_size=32))  # fmt: skip
    assert cli.trainer.precision == "bf16-mixed" and cli.datamodule.uint8_images
    assert any(isinstance(c, ChannelsLast) for c in cli.trainer.callbacks)
    conv = next(m for m in cli.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"]) and 0 <= float(cli.trainer.callback_metrics["val/miou"]) <= 1


def test_uint8_batches_become_the_same_floats_on_the_device():
    options = {"task": "segmentation", "num_samples": 40, "image_size": 32, "batch_size": 4, "val_fraction": 0.1}
    plain, small = ShapesDataModule(**options), ShapesDataModule(**options, uint8_images=True)
    plain.setup("fit"), small.setup("fit")
    for split in ("train", "val"):
        keys = [(i, 0) if split == "train" else i for i in range(3)]
        samples, compact = [plain.datasets[split][k] for k in keys], [small.datasets[split][k] for k in keys]
        assert compact[0]["image"].dtype == torch.uint8 and samples[0]["image"].dtype == torch.float32
        floats = small.on_after_batch_transfer(collate(compact, small.kind.list_keys), 0)["image"]
        assert torch.equal(floats, collate(samples, plain.kind.list_keys)["image"])  # exactly: same division


def test_channels_last_gives_the_same_outputs():
    pl.seed_everything(0)
    task = SegmentationTask(num_classes=3, model_options={"base_channels": 8, "depth": 2}).eval()
    images = torch.rand(2, 3, 32, 32)
    expected = task(images)
    ChannelsLast().setup(None, task, "predict")
    batch = {"image": images.clone()}
    ChannelsLast._convert(batch)
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(task(batch["image"]), expected, rtol=1e-4, atol=1e-5)


def test_compile_wraps_the_network_in_place_and_keeps_checkpoint_keys(tmp_path):
    """The eager backend checks the capture in a second; inductor (the default) needs minutes of compiling here."""
    task = ClassificationTask(model="lenet5", num_classes=3, in_channels=1)
    keys = set(task.state_dict())
    data = ShapesDataModule(task="classification", shapes=["circle", "square", "triangle"], num_samples=24,
                            image_size=32, in_channels=1, batch_size=4)  # fmt: skip
    trainer = pl.Trainer(max_steps=2, limit_val_batches=1, callbacks=[Compile(backend="eager")], default_root_dir=tmp_path, **QUIET)
    trainer.fit(task, datamodule=data)
    assert task.model._compiled_call_impl is not None and set(task.state_dict()) == keys
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


@pytest.mark.slow
def test_compile_with_inductor_gives_the_same_outputs():
    pl.seed_everything(0)
    task = ClassificationTask(model="lenet5", num_classes=3, in_channels=1).eval()
    images = torch.rand(4, 1, 32, 32)
    expected = task(images)
    Compile().setup(None, task, "predict")
    torch.testing.assert_close(task(images), expected, rtol=1e-4, atol=1e-5)


def test_num_workers_auto_follows_the_cores_and_the_devices(monkeypatch):
    monkeypatch.setattr(workers, "usable_cpus", lambda: 16)
    assert [workers.auto_workers(d) for d in (1, 2, 4, 16)] == [8, 7, 3, 0]
    monkeypatch.setattr(workers, "usable_cpus", lambda: 2)
    assert workers.auto_workers(1) == 1 and workers.auto_workers(2) == 0
    data = ShapesDataModule(task="classification", num_samples=12, batch_size=4, num_workers="auto")
    data.setup("fit")
    assert data.train_dataloader().num_workers == 1


def test_cached_images_are_decoded_once_and_give_the_same_samples(monkeypatch):
    ShapesDataModule(task="classification", num_samples=40, image_size=32).export("shapes")
    options = {"root": "shapes", "image_size": 32, "train_transforms": ["HorizontalFlip"]}
    plain, cached = ImageFolderDataModule(**options, cache_images=False), ImageFolderDataModule(**options)  # auto: it fits
    plain.setup("fit"), cached.setup("fit")
    assert isinstance(cached.datasets["train"].source, CachedSource) and not isinstance(plain.datasets["train"].source, CachedSource)
    decoded = []
    monkeypatch.setattr(labelled, "read_image", lambda *args: decoded.append(args) or read_image(*args))
    for epoch in (0, 1):
        for i in range(len(cached.datasets["train"])):
            ours, theirs = cached.datasets["train"][(i, epoch)], plain.datasets["train"][(i, epoch)]
            assert torch.equal(ours["image"], theirs["image"]) and ours["label"] == theirs["label"]
    assert len(decoded) == 2 * len(plain.datasets["train"])  # the plain module's reads only
    generated = ShapesDataModule(task="classification", num_samples=12)
    generated.setup("fit")
    assert not isinstance(generated.datasets["train"].source, CachedSource)  # nothing to decode


def test_fixed_pipelines_run_once_per_image_and_give_the_same_tensors(monkeypatch):
    """Cached images whose transforms draw no random numbers (the resize alone) go through them once, at set-up;
    every epoch then reads the very tensors the per-read pipeline gives. Random transforms still run per read."""
    ShapesDataModule(task="classification", num_samples=40, image_size=40).export("shapes")
    options = {"root": "shapes", "image_size": 32}
    plain, prepared = ImageFolderDataModule(**options, cache_images=False), ImageFolderDataModule(**options)
    plain.setup("fit"), prepared.setup("fit")
    runs = []
    monkeypatch.setattr(dataset, "apply_pipeline", lambda *args: runs.append(args) or apply_pipeline(*args))
    keys = {"train": [(i, epoch) for epoch in (0, 1) for i in range(len(plain.datasets["train"]))],
            "val": [i for _ in (0, 1) for i in range(len(plain.datasets["val"]))]}  # fmt: skip
    for split, split_keys in keys.items():
        for key in split_keys:
            ours, theirs = prepared.datasets[split][key], plain.datasets[split][key]
            assert ours.keys() == theirs.keys()
            for name, value in ours.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, theirs[name]) and value.dtype == theirs[name].dtype, (split, key, name)
                else:
                    assert value == theirs[name], (split, key, name)
    # the plain module's only: two reads of each sample, evaluation running its transforms and then the resize
    assert len(runs) == 2 * len(plain.datasets["train"]) + 2 * 2 * len(plain.datasets["val"])
    first = prepared.datasets["train"][(0, 0)]
    first["image"].zero_()  # a read owns its tensors: the kept ones stay as they were
    assert torch.equal(prepared.datasets["train"][(0, 0)]["image"], plain.datasets["train"][(0, 0)]["image"])

    flipped = ImageFolderDataModule(**options, train_transforms=[{"class_path": "HorizontalFlip", "init_args": {"p": 0.5}}])
    flipped.setup("fit")
    runs.clear()
    train = flipped.datasets["train"]
    epochs = [[train[(i, epoch)]["image"] for i in range(len(train))] for epoch in (0, 1)]
    assert len(runs) == 2 * len(train)  # random: run on every read
    assert any(not torch.equal(a, b) for a, b in zip(*epochs))  # and flipped differently in another epoch
    runs.clear()
    flipped.datasets["val"][0]
    assert not runs  # the evaluation pipeline (the resize) is fixed: prepared


@pytest.mark.parametrize("uint8_images", [False, True])
def test_batched_reads_of_prepared_samples_give_the_batches_of_the_per_read_pipeline(uint8_images):
    """A prepared dataset builds a whole batch at once (``__getitems__``, which the DataLoader calls): the same
    keys, values and dtypes as collating the per-read pipeline's samples, and tensors of its own."""
    ShapesDataModule(task="classification", num_samples=40, image_size=40).export("shapes")
    options = {"root": "shapes", "image_size": 32, "batch_size": 4, "num_workers": 0, "uint8_images": uint8_images}
    plain, prepared = ImageFolderDataModule(**options, cache_images=False), ImageFolderDataModule(**options)
    plain.setup("fit"), prepared.setup("fit")
    assert prepared.datasets["train"].prepared is not None and plain.datasets["train"].prepared is None

    def same(ours: dict, theirs: dict) -> None:
        assert ours.keys() == theirs.keys()
        for name, value in ours.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, theirs[name]) and value.dtype == theirs[name].dtype, name
            else:
                assert value == theirs[name], name

    for split, keys in {"train": [(3, 1), (0, 1), (7, 1)], "val": [2, 0, 1]}.items():
        dataset, kind = prepared.datasets[split], prepared.datasets[split].kind
        batch = collate(dataset.__getitems__(keys), kind.list_keys)
        same(batch, collate([plain.datasets[split][key] for key in keys], kind.list_keys))
        batch["image"].zero_()  # a batch owns its tensors: the kept samples stay as they were
        same(collate(dataset.__getitems__(keys), kind.list_keys), collate([dataset[key] for key in keys], kind.list_keys))
    for split, loader in {"train": lambda m: m.train_dataloader(), "val": lambda m: m.val_dataloader()}.items():
        for ours, theirs in zip(loader(prepared), loader(plain), strict=True):  # the loaders' own batches, in order
            same(ours, theirs)


@pytest.mark.parametrize("cache_images", [True, "auto", False])
def test_set_up_decodes_each_file_once_when_it_caches(monkeypatch, cache_images):
    """The set-up check decodes every file to fail early on a broken one; when training caches the images, the cache
    takes those (``auto`` reads the first file of each split folder once more, to estimate the size) instead of
    decoding them again; testing, and ``cache_images: false``, keep nothing."""
    ShapesDataModule(task="classification", num_samples=40, image_size=32).export("shapes")
    files = len(list(Path("shapes").rglob("*.png")))
    decoded, checked = [], []
    monkeypatch.setattr(labelled, "read_image", lambda *args, **kwargs: decoded.append(args) or read_image(*args, **kwargs))
    monkeypatch.setattr(labelled, "check_images", lambda paths: checked.extend(paths) or check_images(paths))
    data = ImageFolderDataModule(root="shapes", image_size=32, cache_images=cache_images)
    data.setup("fit")
    if cache_images is False:
        assert not decoded and len(checked) == files
    else:
        estimates = len(data.split_roots) if cache_images == "auto" else 0
        assert len(decoded) == files + estimates and not checked
        assert isinstance(data.datasets["train"].source, CachedSource)
        assert data.datasets["train"].source.source.decoded is None  # the cache holds the images, once
    decoded.clear(), checked.clear()
    ImageFolderDataModule(root="shapes", image_size=32, cache_images=cache_images).setup("test")
    assert not decoded and len(checked) == files


def test_the_default_adamw_and_the_shipped_configs_run_the_fused_kernel():
    """The same update as the per-tensor loop, in one pass (the default optimiser and every shipped AdamW)."""
    task = ClassificationTask(model="lenet5", num_classes=3, in_channels=1)
    optimizer = task.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    custom = ClassificationTask(model="lenet5", num_classes=3, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert isinstance(custom.configure_optimizers()["optimizer"], torch.optim.SGD)
    for config in CONFIGS.glob("*.yaml"):
        text = config.read_text()
        assert "torch.optim.AdamW" not in text or "fused: true" in text, config.name
