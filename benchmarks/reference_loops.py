"""Plain PyTorch loops on the digit files, beside the shipped configs pointed at the same files: what a user
would write by hand, set against ``python -m visiontasks fit`` with only the data options overridden.

    python benchmarks/digit_scenes.py digits/
    python benchmarks/reference_loops.py --digits digits/ --configs lenet5 unet localization

For each config: ``fit`` (the CLI as a user runs it: whole process, default threads and workers, W&B off, the
budget's epochs), then the reference loop as its own process for the same number of epochs, and one table row
with both metrics, both wall times and their ratio. The reference loops are written with the usual care: the
same network (``create_model``, the same normalisation), the config's learning rate and batch size, AdamW and
PyTorch's ``OneCycleLR`` (warm-up then cosine, fastai's recipe), images decoded once into tensors, evaluation
on the validation split with torchmetrics. ``python benchmarks/reference_loops.py --only unet --epochs 20`` runs
one reference loop alone; for the U-Net, ``--loss ce+dice --class-weights inverse`` swaps the loop's plain
cross-entropy for the package's loss and inverse-frequency class weights, to see which one makes it learn the
digits (docs/segmentation.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
LOOPS = {  # config: (data folder, image size, channels, model, lr, batch) as the config trains on the digits
    "lenet5": ("classification", 32, 1, "lenet5", 3e-3, 32),
    "classification": ("classification", 64, 3, "resnet18", 1e-3, 32),
    "localization": ("localization", 80, 3, "resnet18", 2e-3, 32),
    "unet": ("segmentation", 96, 3, "unet", 3e-3, 8),
}


def _image(path: Path, size: int, channels: int, resample: int = Image.BILINEAR) -> np.ndarray:
    image = Image.open(path).convert("L" if channels == 1 else "RGB").resize((size, size), resample)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).float().div(255)


def load_classification(root: Path, split: str, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    classes = sorted(p.name for p in (root / "train").iterdir())
    files = [(path, classes.index(path.parent.name)) for path in sorted((root / split).glob("*/*.png"))]
    return _tensor([_image(p, size, channels) for p, _ in files]), torch.tensor([label for _, label in files])


def load_localization(root: Path, split: str, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with open(root / f"{split}.csv") as handle:
        rows = list(csv.DictReader(handle))
    images, labels, boxes = [], [], []
    for row in rows:
        path = root / row["image"]
        width, height = Image.open(path).size
        images.append(_image(path, size, channels))
        labels.append(int(row["label"]))
        scale = np.array([width, height, width, height], dtype=np.float32)
        boxes.append(np.array([float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")], dtype=np.float32) / scale)
    return _tensor(images), torch.tensor(labels), torch.tensor(np.stack(boxes))  # boxes in [0, 1]


def load_segmentation(root: Path, split: str, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = sorted((root / "images" / split).glob("*.png"))
    masks = [np.asarray(Image.open(root / "masks" / split / p.name).resize((size, size), Image.NEAREST)) for p in images]
    return _tensor([_image(p, size, channels) for p in images]), torch.from_numpy(np.stack(masks)).long()


def train(model: nn.Module, loss_of, tensors: tuple[torch.Tensor, ...], lr: float, batch: int, epochs: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = len(tensors[0]) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps * epochs, pct_start=0.1)
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(len(tensors[0]))[: steps * batch].split(batch):
            optimizer.zero_grad(set_to_none=True)
            loss_of(model, *(t[index] for t in tensors)).backward()
            optimizer.step()
            schedule.step()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 64) -> list:
    model.eval()
    return [model(images[i : i + batch]) for i in range(0, len(images), batch)]


def run_loop(config: str, digits: Path, epochs: int, loss: str = "ce", class_weights: str = "none") -> dict[str, float]:
    from torchmetrics.functional import accuracy, jaccard_index
    from torchvision.ops import box_convert, box_iou, generalized_box_iou_loss

    from visiontasks.models.localizer import Localizer
    from visiontasks.models.normalize import normalize
    from visiontasks.models.registry import create_model
    from visiontasks.models.segmentation_losses import SegmentationLoss

    folder, size, channels, name, lr, batch = LOOPS[config]
    root = digits / folder
    torch.manual_seed(0)
    if folder == "classification":
        train_set, (vx, vy) = load_classification(root, "train", size, channels), load_classification(root, "val", size, channels)
        model = create_model(name, "classification", num_classes=10, in_channels=channels)
        train(model, lambda m, x, y: F.cross_entropy(m(normalize(x)), y), train_set, lr, batch, epochs)
        scores = torch.cat(predict(model, normalize(vx)))
        return {"acc": float(accuracy(scores, vy, task="multiclass", num_classes=10))}
    if folder == "localization":
        train_set = load_localization(root, "train", size, channels)
        vx, vy, vbox = load_localization(root, "val", size, channels)
        model = Localizer(create_model(name, "classification", num_classes=10, in_channels=channels), 10)

        def loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
            logits, predicted = m(normalize(x))
            predicted = box_convert(predicted, "cxcywh", "xyxy")
            box_loss = generalized_box_iou_loss(predicted, box, reduction="mean") + F.l1_loss(predicted, box)
            return 0.8 * F.cross_entropy(logits, y) + 0.2 * box_loss

        train(model, loss, train_set, lr, batch, epochs)
        outputs = predict(model, normalize(vx))
        logits = torch.cat([o[0] for o in outputs])
        boxes = box_convert(torch.cat([o[1] for o in outputs]), "cxcywh", "xyxy")
        iou = box_iou(boxes, vbox).diagonal()
        right = logits.argmax(1) == vy
        return {"acc": float(right.float().mean()), "iou": float(iou.mean()), "loc_acc": float((right & (iou >= 0.5)).float().mean())}
    train_set, (vx, vmask) = load_segmentation(root, "train", size, channels), load_segmentation(root, "val", size, channels)
    model = create_model(name, "segmentation", num_classes=11, in_channels=channels, base_channels=16, depth=4,
                         batch_norm=True, upsampling="transpose")  # as configs/unet.yaml
    weight = None
    if class_weights == "inverse":  # total / (classes * count), as class_weights: auto
        counts = torch.bincount(train_set[1][train_set[1] != 255].flatten(), minlength=11).float()
        weight = counts.sum() / (11 * counts.clamp(min=1))
    criterion = SegmentationLoss(loss, ignore_index=255, weight=weight)
    train(model, lambda m, x, mask: criterion(m(normalize(x)), mask), train_set, lr, batch, epochs)
    predicted = torch.cat([o.argmax(1) for o in predict(model, normalize(vx))])
    return {"miou": float(jaccard_index(predicted, vmask, task="multiclass", num_classes=11, ignore_index=255, average="macro"))}


def fit_config(config: str, digits: Path, runs: Path, extra: list[str]) -> dict:
    """``fit`` of the shipped config on the digits as its own process, default threads; its metrics and epochs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from measure_configs import digits_data, last_values

    args = [sys.executable, "-m", "visiontasks", "fit", f"--config={ROOT / 'configs' / config}.yaml", f"--runs_dir={runs}",
            f"--experiment={config}-digits", "--trainer.logger=CSVLogger", "--trainer.enable_progress_bar=false",
            *digits_data(config, digits), *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env={**__import__("os").environ, "WANDB_MODE": "disabled"})
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode:
        raise SystemExit(f"{config} failed:\n{output[-3000:]}")
    folder = Path(re.findall(r"Run folder: (\S+)", output)[-1])
    budget = re.findall(r"Training budget: .*", output)
    values = last_values(folder)
    return {"seconds": seconds, "values": values, "epochs": int(values.get("epoch", 0)) + 1, "budget": budget[-1] if budget else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=Path, default=Path("digits"))
    parser.add_argument("--configs", nargs="*", default=list(LOOPS), choices=list(LOOPS))
    parser.add_argument("--runs", type=Path, default=Path("runs-reference"))
    parser.add_argument("--only", choices=list(LOOPS), help="run this reference loop alone (prints JSON)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--loss", default="ce", help="--only unet: the loop's loss (ce, ce+dice, dice, focal)")
    parser.add_argument("--class-weights", default="none", choices=["none", "inverse"], help="--only unet: class weights")
    parser.add_argument("--fit-args", nargs="*", default=[], help="extra options for every fit, e.g. --lr_find=true")
    options = parser.parse_args()
    if options.only:
        print(json.dumps(run_loop(options.only, options.digits.resolve(), options.epochs, options.loss, options.class_weights)))
        return
    print("| config | fit on digits | reference loop | fit / reference time |\n|---|---|---|---|", flush=True)
    for config in options.configs:
        fitted = fit_config(config, options.digits.resolve(), options.runs.resolve(), options.fit_args)
        start = time.perf_counter()
        loop = subprocess.run([sys.executable, __file__, "--only", config, "--digits", str(options.digits.resolve()),
                               "--epochs", str(fitted["epochs"])], capture_output=True, text=True, check=True)  # fmt: skip
        seconds = time.perf_counter() - start
        reference = json.loads(loop.stdout.strip().splitlines()[-1])
        ours = ", ".join(f"{k} {fitted['values'].get('val/' + k, float('nan')):.3f}" for k in reference)
        theirs = ", ".join(f"{k} {v:.3f}" for k, v in reference.items())
        print(f"| {config} | {ours}, {fitted['epochs']} epochs, {fitted['seconds']:.0f} s | {theirs}, {seconds:.0f} s | "
              f"{fitted['seconds'] / seconds:.2f} |", flush=True)  # fmt: skip
        print(f"  {fitted['budget']}", flush=True)


if __name__ == "__main__":
    main()
