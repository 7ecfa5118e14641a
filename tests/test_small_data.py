"""Small and imbalanced data: class weights, the balanced sampler, focal loss, k-fold cross-validation and TTA."""

from __future__ import annotations

import csv

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import run_cli
from PIL import Image

from visiontasks.data.balance import sample_weights
from visiontasks.data.sampling import EpochSampler
from visiontasks.kinds import kind_of

FAST = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--pictures.curves=false",
        "--pictures.grid=0", "--pictures.overlays=0", "--pictures.filters=false", "--pictures.top_losses=0", "--pictures.grad_cam=0",
        "--trainer.limit_test_batches=1", "--trainer.logger=false"]  # fmt: skip


def write_images(folder: Path, labels: list[str], groups: list[str] | None = None, name: str = "train.csv") -> Path:
    """Tiny 16x16 grayscale images, a bright square top-left (``a``) or bottom-right (else), listed in a CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image,label" + (",group" if groups else "")]
    for i, label in enumerate(labels):
        pixels = np.full((16, 16), 20, np.uint8)
        corner = (slice(1, 7), slice(1, 7)) if label == "a" else (slice(9, 15), slice(9, 15))
        pixels[corner] = 200 + (i % 5) * 10
        pixels[15, :2] = i, sum(map(ord, name)) % 256  # no two files alike (the leakage check compares bytes)
        file = f"{Path(name).stem}_{i}.png"
        Image.fromarray(pixels).save(folder / file)
        rows.append(f"{file},{label}" + (f",{groups[i]}" if groups else ""))
    path = folder / name
    path.write_text("\n".join(rows) + "\n")
    return path


def csv_config(path: Path, data: dict, model: dict | None = None) -> Path:
    """A config training LeNet-5 on a CSV data set (grayscale, 32 px)."""
    config = {
        "seed_everything": 0,
        "model": {"class_path": "visiontasks.ClassificationTask", "init_args": {"model": "lenet5", **(model or {})}},
        "data": {"class_path": "visiontasks.CsvDataModule",
                 "init_args": {"image_size": 32, "in_channels": 1, "batch_size": 4, **data}},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


# --------------------------------------------------------------------------------------------------
# Class weights, focal loss, the balanced sampler


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    """A LeNet-5 fit on 16 ``a`` and 4 ``b`` images with ``class_weights: auto`` and the focal loss, and its log."""
    import os

    folder = tmp_path_factory.mktemp("weighted")
    train = write_images(folder / "data", ["a"] * 16 + ["b"] * 4)
    val = write_images(folder / "data", ["a", "b"], name="val.csv")
    test = write_images(folder / "data", ["b"] * 12, name="test.csv")  # would flip the weights if counted
    config = csv_config(folder / "c.yaml", {"csv_path": str(train), "val_csv": str(val), "test_csv": str(test)},
                        {"class_weights": "auto", "loss": "focal"})  # fmt: skip
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("visiontasks").addHandler(handler)
    logging.getLogger("visiontasks").setLevel(logging.INFO)
    here = os.getcwd()
    os.chdir(folder)
    try:
        cli = run_cli("fit", "--config", str(config), *FAST)
    finally:
        os.chdir(here)
        logging.getLogger("visiontasks").removeHandler(handler)
    return cli, config, folder / cli.run.path, records


def test_auto_class_weights_come_from_the_training_labels_only(weighted_run):
    cli, _, _, log = weighted_run
    # balanced: 20 / (2 classes * count) for a (16 images) and b (4 images)
    assert cli.model.criterion.weight.tolist() == pytest.approx([20 / 32, 20 / 8])
    assert "class_weights auto, from the 20 training images: images {a: 16, b: 4}; weights {a: 0.625, b: 2.5}." in log


def test_class_weights_of_the_wrong_length_fail_in_one_line(tmp_path):
    train = write_images(tmp_path / "data", ["a"] * 6 + ["b"] * 6)
    config = csv_config(tmp_path / "c.yaml", {"csv_path": str(train)}, {"class_weights": [1.0, 2.0, 3.0]})
    with pytest.raises(SystemExit) as failure:
        run_cli("fit", "--config", str(config), *FAST)
    assert str(failure.value) == (
        "visiontasks: error: class_weights: 3 entries for 2 classes; give one weight per class, or auto."
    )


def test_multilabel_focal_loss_is_torchvisions_and_weights_positives():
    from torchvision.ops import sigmoid_focal_loss

    from visiontasks.models.classification_losses import ClassificationLoss

    logits, target = torch.randn(6, 3), (torch.rand(6, 3) > 0.5).float()
    plain = ClassificationLoss("focal", multilabel=True)(logits, target)
    assert plain == pytest.approx(float(sigmoid_focal_loss(logits, target, alpha=-1, reduction="mean")))
    weighted = ClassificationLoss("focal", multilabel=True, weight=torch.tensor([1.0, 1.0, 5.0]))(logits, target)
    assert float(weighted) > float(plain) if target[:, 2].any() else float(weighted) == float(plain)


def imbalanced_table(rare: int = 5, common: int = 95) -> np.ndarray:
    labels = np.array([1] * rare + [0] * common)
    return np.stack([kind_of("classification").class_counts({"label": label}, 2) for label in labels])


def test_balanced_sampler_draws_classes_equally_and_resumes_and_shards_exactly():
    table = imbalanced_table()
    weights = sample_weights(table)
    dataset = range(len(table))
    sampler = EpochSampler(dataset, seed=3, weights=weights)
    sampler.set_epoch(4)
    drawn = [index for index, epoch in sampler]
    assert len(drawn) == len(table) and {epoch for _, epoch in sampler} == {4}
    rare_share = np.mean([table[i, 1] > 0 for i in drawn])
    assert 0.35 < rare_share < 0.65  # 5 % of the images, about half of the draws
    # resumed after 30 samples: the same epoch's remaining draws, in order
    resumed = EpochSampler(dataset, seed=3, skip=30, weights=weights)
    resumed.set_epoch(4)
    assert [index for index, _ in resumed] == drawn[30:]
    # two processes: each its own slice of the same draw, together all of it
    shards = []
    for rank in (0, 1):
        shard = EpochSampler(dataset, seed=3, num_replicas=2, rank=rank, weights=weights)
        shard.set_epoch(4)
        shards.append([index for index, _ in shard])
    assert len(shards[0]) == len(shards[1]) == 50
    assert [i for pair in zip(*shards) for i in pair] == drawn
    other = EpochSampler(dataset, seed=3, weights=weights)
    other.set_epoch(5)
    assert [index for index, _ in other] != drawn  # a new draw every epoch


# --------------------------------------------------------------------------------------------------
# k-fold cross-validation


@pytest.mark.slow  # three fits and validations: ~25 s here
def test_cv_folds_partition_the_data_repeat_with_the_seed_and_write_the_table(tmp_path, capsys):
    labels = ["a"] * 12 + ["b"] * 6
    train = write_images(tmp_path / "data", labels)
    test = write_images(tmp_path / "data", ["a", "b", "a", "b"], name="test.csv")
    config = csv_config(tmp_path / "cv.yaml", {"csv_path": str(train), "test_csv": str(test)})
    result = run_cli("cv", "--config", str(config), "--folds", "3", *FAST, "--trainer.accelerator=cpu",
                     "--trainer.enable_progress_bar=false")  # fmt: skip
    assert [run.name for run in result.runs] == ["fold-1", "fold-2", "fold-3"]
    assert all((run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file() for run in result.runs)
    assert result.folder.parent == Path("runs/cv") and result.folder.name.startswith("cv-")
    folds = [row.split(",") for row in (result.folder / "cv_folds.csv").read_text().splitlines()[1:]]
    images = [image for _, image in folds]
    assert sorted(images) == sorted(str(tmp_path / "data" / f"train_{i}.png") for i in range(18))  # each image once
    assert not any(Path(image).name.startswith("test_") for image in images)  # the test split stays out of the folds
    for k in (1, 2, 3):  # stratified: 4 a and 2 b in each validation fold
        fold = [image for f, image in folds if f == str(k)]
        assert sum(labels[int(Path(i).stem.split("_")[1])] == "b" for i in fold) == 2 and len(fold) == 6
    table = result.table.read_text().splitlines()
    assert table[0].startswith("fold,") and "val/acc" in table[0] and [r.split(",")[0] for r in table[1:]] == ["1", "2", "3", "mean", "std"]
    accuracies = [float(r.split(",")[table[0].split(",").index("val/acc")]) for r in table[1:4]]
    assert np.mean(accuracies) == pytest.approx(result.summary()["val/acc"][0])
    assert (result.folder / "cv_results.png").stat().st_size > 1000
    assert "mean ± std" in capsys.readouterr().out
    # the folds repeat with the seed: fold 2 made again on its own gives the same validation images
    from visiontasks import CsvDataModule

    again = CsvDataModule(csv_path=str(train), test_csv=str(test), fold=[2, 3], image_size=32, in_channels=1)
    again.setup("fit")
    paths = again.datasets["val"].source.paths
    assert sorted(str(paths[i]) for i in again.datasets["val"].indices) == sorted(i for f, i in folds if f == "2")


def fold_of(groups: list[str], folds: int, seed: int = 0, fold: int = 1, tmp: Path = Path("data")) -> list[set[str]]:
    from visiontasks import CsvDataModule

    labels = ["a" if i % 3 else "b" for i in range(len(groups))]
    train = write_images(tmp, labels, groups)
    found = []
    for k in range(1, folds + 1):
        data = CsvDataModule(csv_path=str(train), fold=[k, folds], seed=seed, test_fraction=0.0, image_size=32, in_channels=1)
        data.setup("fit")
        val = data.datasets["val"]
        found.append({val.source.groups[i] for i in val.indices})
    return found


def test_cv_keeps_every_group_in_one_fold_and_repeats_with_the_seed():
    groups = [f"patient{i % 8}" for i in range(48)]
    found = fold_of(groups, folds=4)
    assert all(found) and set().union(*found) == {f"patient{i}" for i in range(8)}
    assert sum(len(f) for f in found) == 8  # no patient in two validation folds
    assert fold_of(groups, folds=4) == found and fold_of(groups, folds=4, seed=1) != found


@pytest.mark.parametrize(
    "groups, labels, folds, message",
    [
        ([f"p{i % 4}" for i in range(12)] + ["big"] * 12, None, 3,
         "fold: group 'big' has 12 of the 24 training images, more than a validation fold of ~8 holds with 3 folds"),
        (None, ["a"] * 10 + ["b"] * 2, 3,
         "fold: class 'b' has 2 images in the training data, fewer than the 3 folds: use --folds 2 or fewer"),
        ([f"p{i % 2}" for i in range(12)], None, 3, "fold: the group column names 2 groups for 3 folds; use --folds 2 or fewer."),
    ],
)  # fmt: skip
def test_bad_cv_input_fails_in_one_line(tmp_path, groups, labels, folds, message):
    labels = labels or ["a" if i % 2 else "b" for i in range(len(groups))]
    train = write_images(tmp_path / "data", labels, groups)
    config = csv_config(tmp_path / "cv.yaml", {"csv_path": str(train), "test_fraction": 0.0})
    with pytest.raises(SystemExit) as failure:
        run_cli("cv", "--config", str(config), "--folds", str(folds), *FAST, "--trainer.accelerator=cpu")
    assert str(failure.value).startswith(f"visiontasks: error: {message}"), failure.value
    assert not list(Path("runs").glob("cv/cv-*/fold-*/checkpoints/*.ckpt"))  # failed before training


# --------------------------------------------------------------------------------------------------
# Test-time augmentation


def test_tta_averages_the_views_and_results_say_so():
    from visiontasks import ClassificationTask, SegmentationTask

    torch.manual_seed(0)
    image = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    plain = ClassificationTask(model="lenet5", num_classes=3, in_channels=1)
    flipped = ClassificationTask(model="lenet5", num_classes=3, in_channels=1, tta=True)
    flipped.load_state_dict(plain.state_dict())
    before, after = plain.predict(image)[0], flipped.predict(image)[0]
    assert before.tta == () and after.tta == ("hflip",) and after.row()["tta"] == "hflip" and "tta" not in before.row()
    x = torch.from_numpy(image)[None, None]
    with torch.no_grad():
        expected = (plain(x).softmax(1) + plain(x.flip(-1)).softmax(1)) / 2
    assert after.probabilities == pytest.approx(expected[0].numpy(), abs=1e-5)
    assert not np.allclose(after.probabilities, before.probabilities, atol=1e-4)

    segmenter = SegmentationTask(num_classes=3, in_channels=1, model_options={"depth": 2}, tta=["vflip", "scale_up"])
    results = segmenter.predict(np.random.default_rng(1).random((40, 48), dtype=np.float32))
    assert results[0].tta == ("vflip", "scale_up") and results[0].mask.shape == (40, 48)
    assert results[0].row()["tta"] == "vflip+scale_up"
    with pytest.raises(Exception, match="tta: unknown view 'rotate'; choose from hflip, vflip, scale_up, scale_down"):
        SegmentationTask(num_classes=3, model_options={"depth": 2}, tta=["rotate"]).predict(np.zeros((32, 32, 3), np.float32))


@pytest.mark.slow  # a test and a predict command: ~10 s here
def test_tta_at_test_and_predict_from_the_cli_is_recorded(weighted_run):
    _, config, run, _ = weighted_run
    checkpoint = str(run / "checkpoints" / "last.ckpt")
    tested = run_cli("test", "--config", str(config), f"--ckpt_path={checkpoint}", "--model.init_args.tta=[hflip,scale_down]", *FAST)
    assert yaml.safe_load((tested.run.stage_dir / "config.yaml").read_text())["model"]["init_args"]["tta"] == ["hflip", "scale_down"]
    predicted = run_cli("predict", "--config", str(config), f"--ckpt_path={checkpoint}", "--model.init_args.tta=true", *FAST)
    with open(predicted.run.stage_dir / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(row["tta"] == "hflip" for row in rows)


@pytest.mark.slow  # two processes, two folds: ~1 min here
def test_two_process_cv_runs_every_fold_on_both_processes_and_writes_one_table():
    from helpers import CONFIGS
    from test_ddp import SMALL, launch, succeeded

    done = succeeded(launch("cv", "--config", str(CONFIGS / "lenet5.yaml"), *SMALL, "--folds=2", "--trainer.logger=CSVLogger"))
    (folder,) = Path("runs", "lenet5").iterdir()
    assert folder.name.startswith("cv-") and sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["fold-1", "fold-2"]
    for fold in ("fold-1", "fold-2"):  # each fold an ordinary run, its metrics logged once
        assert (folder / fold / "checkpoints" / "last.ckpt").is_file() and (folder / fold / "csv" / "metrics.csv").is_file()
    rows = (folder / "cv_results.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "mean", "std"]
    assert done.stdout.count("mean ± std") == 1  # printed by rank zero alone
