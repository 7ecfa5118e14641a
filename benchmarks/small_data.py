"""Small and imbalanced data on the real digits (scikit-learn's 8x8 scans as 28x28 files, see digit_scenes.py).

    python benchmarks/small_data.py imbalance --variants plain     # and "class_weights auto", "balanced sampler"
    python benchmarks/small_data.py cv --epochs 10                 # 5-fold cross-validation: mean ± std per metric

- imbalance: digits ``--common`` (default 3) and ``--rare`` (default 8); training keeps every image of the
  common digits and 1 in 20 of the rare one; validation and test keep all theirs. LeNet-5, the same epochs,
  batch size and seeds for every variant (run the variants side by side, one process each, or all in one).
  Balanced error rate (BER) = 1 - mean recall over the classes on the test split, median over the seeds.
  The plain models are also tested with test-time augmentation: ``hflip``, and the two rescalings
  (a mirrored digit can be another digit: hflip shows what a view that CAN change the label does).
- cv: ``python -m visiontasks cv --folds 5`` on the training images of the same digits, all of them (their
  test split left out).

Runs are small (LeNet-5 at 28 px on a few hundred images, one torch thread) and written under ``--root``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digit_scenes import DigitScenesDataModule  # noqa: E402

from visiontasks.cli import main  # noqa: E402
from visiontasks.data.export import export_splits  # noqa: E402

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false",
         "--pictures.curves=false", "--pictures.grid=0", "--pictures.overlays=0", "--pictures.filters=false",
         "--pictures.top_losses=0", "--pictures.grad_cam=0"]  # fmt: skip
TTA_VIEWS = {"no TTA": False, "hflip": ["hflip"], "scale_up+scale_down": ["scale_up", "scale_down"]}
VARIANTS = {
    "plain": [],
    "class_weights auto": ["--model.init_args.class_weights=auto"],
    "balanced sampler": ["--data.init_args.balanced_sampling=true"],
}


def digits(root: Path, rare: str, keep_one_in: int, common: list[str]) -> dict[str, Path]:
    """The digit files (once), and CSVs of the digits ``common + [rare]`` only, where training keeps every
    ``keep_one_in``-th image of ``rare``; validation and test keep all of theirs. Returns the CSV of each split."""
    folder = root / "classification"
    if not (folder / "train.csv").is_file():
        export_splits(DigitScenesDataModule("classification"), folder)
    name = f"{''.join(common)}_rare{rare}"
    paths = {}
    for split in ("train", "val", "test"):
        with open(folder / f"{split}.csv") as handle:
            rows = [row for row in csv.DictReader(handle) if row["label"] in (*common, rare)]
        if split == "train":
            rare_rows = [row for row in rows if row["label"] == rare]
            rows = [row for row in rows if row["label"] != rare] + rare_rows[keep_one_in - 1 :: keep_one_in]
        paths[split] = folder / f"{split}_{name}.csv"
        with open(paths[split], "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        counts = {d: sum(r["label"] == d for r in rows) for d in sorted({r["label"] for r in rows})}
        print(f"{split} images per digit: {counts}")
    return paths


def data_args(csvs: dict[str, Path], classes: list[str] | None = None, batch_size: int = 16) -> list[str]:
    names = [f"--data.init_args.class_names={json.dumps(classes)}"] if classes else []
    return ["--model=visiontasks.ClassificationTask", "--model.init_args.model=lenet5",
            "--data=visiontasks.CsvDataModule", *(f"--data.init_args.{key}={csvs[split]}" for key, split in
                                                  (("csv_path", "train"), ("val_csv", "val"), ("test_csv", "test")) if split in csvs),
            *names, "--model.init_args.optimizer=torch.optim.AdamW", "--model.init_args.optimizer.lr=0.003",
            "--data.init_args.image_size=28", "--data.init_args.in_channels=1", f"--data.init_args.batch_size={batch_size}",
            "--data.init_args.num_workers=0", "--trainer.accelerator=cpu", "--trainer.devices=1"]  # fmt: skip


def fit(args: list[str], runs: Path, seed: int, epochs: int) -> Any:
    return main(["fit", *args, f"--seed_everything={seed}", f"--trainer.max_epochs={epochs}", f"--runs_dir={runs}",
                 "--experiment=small_data", *QUIET])  # fmt: skip


def test(cli: Any, tta: Any = False) -> dict[str, float]:
    cli.model.hparams.tta = tta
    tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)[0]
    return {"ber": 1 - tested["test/recall"], "acc": tested["test/acc"]}


def imbalance(root: Path, rare: str, common: list[str], seeds: list[int], epochs: int, variants: list[str]) -> None:
    """Every variant per seed, then the medians; the plain models are also tested with test-time augmentation."""
    csvs = digits(root, rare, 20, common)
    results: dict[str, list[float]] = {name: [] for name in variants}
    accuracy: dict[str, list[float]] = {name: [] for name in TTA_VIEWS}
    for seed in seeds:  # the variants take turns within each seed: the machine's noise hits them alike
        for name in variants:
            extra = VARIANTS[name]
            cli = fit([*data_args(csvs, sorted([*common, rare])), *extra], root / "runs", seed, epochs)
            scores = test(cli)
            results[name].append(scores["ber"])
            print(f"seed {seed} {name}: BER {scores['ber']:.4f}, accuracy {scores['acc']:.4f}")
            if name == "plain":
                for view, option in TTA_VIEWS.items():
                    accuracy[view].append(test(cli, option)["acc"])
                print(f"seed {seed} plain, test accuracy: " + ", ".join(f"{v} {a[-1]:.4f}" for v, a in accuracy.items()))
    ber = {name: statistics.median(values) for name, values in results.items()}
    print(f"\nDigits {common} and 1:20 rare digit {rare}, LeNet-5, {epochs} epochs, seeds {seeds}: test balanced error rate (median)")
    for name, value in ber.items():
        versus = "" if name == "plain" or "plain" not in ber else f"  ratio to plain {value / ber['plain']:.3f} (cut {1 - value / ber['plain']:.0%}, target >= 25%)"
        print(f"  {name:20s} BER {value:.4f}{versus}")
    if not accuracy["no TTA"]:
        return
    plain = statistics.median(accuracy["no TTA"])
    print("\nThe plain models' test accuracy (median) by test-time augmentation:")
    for view, values in accuracy.items():
        print(f"  {view:20s} {statistics.median(values):.4f}  ({statistics.median(values) - plain:+.4f} vs no TTA)")


def cross_validation(root: Path, digit_names: list[str], folds: int, epochs: int) -> None:
    """``cv`` on the training images of ``digit_names`` (all of them, balanced); their test split stays out."""
    csvs = digits(root, digit_names[-1], 1, digit_names[:-1])
    args = data_args({"train": csvs["train"], "test": csvs["test"]}, sorted(digit_names))
    main(["cv", *args, f"--folds={folds}", f"--trainer.max_epochs={epochs}", f"--runs_dir={root / 'runs'}",
          "--experiment=digits_cv", "--seed_everything=0", *QUIET])  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["imbalance", "cv"])
    parser.add_argument("--root", type=Path, default=Path("small_data_bench"))
    parser.add_argument("--rare", default="8", help="imbalance: the rare digit")
    parser.add_argument("--common", nargs="+", default=["3"], help="imbalance: the other digits (all ten: 0 1 ... 9)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), help="imbalance: which")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the runs are tiny; the machine is shared)")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    sys.argv = sys.argv[:1]  # the commands below get their arguments from here, not from the command line
    if options.what == "cv":
        cross_validation(options.root, [*options.common, options.rare], options.folds, options.epochs)
    else:
        imbalance(options.root, options.rare, options.common, options.seeds, options.epochs, options.variants)
