"""End to end on a small real set: ``fit`` of configs/lenet5.yaml on 7.2k digit PNGs against a plain
script that decodes the images once and trains the same network, both as fresh processes, side by side.

    python benchmarks/digits_end_to_end.py                   # 8 epochs, 3 interleaved rounds, target <= 1.5x
    python benchmarks/digits_end_to_end.py --epochs 2 --rounds 1 --cache-images false

The digits are scikit-learn's 1797 scans upscaled to 28x28, each written 4 times shifted by a pixel
or two (7188 files, class folders train/ and val/). Both sides: LeNet-5 at 32 px, AdamW lr 3e-3,
batch 32, a validation pass every epoch, 1 thread each. The command includes what a user waits for:
start-up, set-up (the in-memory cache of decoded images, ``cache_images: auto``), checkpoints.

The same work on both sides: the fit runs with lenet5.yaml's ``train_transforms`` off
(``--data.train_transforms=null``), so its only transform is the resize from 28 to 32 px, which the plain script does once per file too (the fit now also runs it once per file
at set-up: a pipeline without random transforms is prepared once). What only the fit does: the set-up's checks
(every file decoded, no file in two splits), training metrics every step, AUROC (and the other metrics) at
validation, ``last.ckpt`` and the best checkpoint, ``metrics.csv`` and the run pictures (``curves.png``,
``val_predictions.png``, ``filters.png``). With the config's random augmentations the training samples go
through albumentations every epoch, which this benchmark does not measure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report, seconds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIFTS = [(0, 0), (1, 0), (0, 1), (-1, -1)]

PLAIN = r'''
import sys, torch
from pathlib import Path
import numpy as np
from PIL import Image
from torch import nn
from visiontasks.models.registry import create_model
torch.set_num_threads(1)
torch.manual_seed(0)
root, epochs = Path(sys.argv[1]), int(sys.argv[2])
def load(split):
    images, labels = [], []
    for label, folder in enumerate(sorted(p for p in (root / split).iterdir())):
        for path in sorted(folder.iterdir()):
            image = Image.open(path).convert("L").resize((32, 32), Image.BILINEAR)
            images.append(np.asarray(image)); labels.append(label)
    x = torch.tensor(np.stack(images)).unsqueeze(1).float().div(255)
    return (x - 0.449) / 0.226, torch.tensor(labels)
(x, y), (vx, vy) = load("train"), load("val")
model = create_model("lenet5", "classification", num_classes=10, in_channels=1)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=True)  # as configs/lenet5.yaml
for epoch in range(epochs):
    model.train()
    for i in torch.randperm(len(x)).split(32):
        optimizer.zero_grad(); nn.functional.cross_entropy(model(x[i]), y[i]).backward(); optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(vx).argmax(1) == vy).float().mean().item()
print(f"plain val/acc {accuracy:.3f}")
'''


def write_digits(root: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))
    val = set(order[: len(order) // 5].tolist())
    for i, (scan, label) in enumerate(zip(digits.images, digits.target)):
        base = Image.fromarray((scan * (255 / 16)).astype(np.uint8)).resize((24, 24), Image.BICUBIC)
        for k, (dx, dy) in enumerate(SHIFTS):
            canvas = Image.new("L", (28, 28))
            canvas.paste(base, (2 + dx, 2 + dy))
            folder = root / ("val" if i in val else "train") / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            canvas.save(folder / f"{i:04d}_{k}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-images", default="auto", help="the data module's cache_images: auto, true, false")
    args = parser.parse_args()
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        data = write_digits(Path(folder) / "digits")
        fit = [sys.executable, "-m", "visiontasks", "fit", "--config", str(ROOT / "configs" / "lenet5.yaml"),
               "--data=ImageFolderDataModule", f"--data.root={data}", "--data.image_size=32", "--data.in_channels=1",
               "--data.batch_size=32", "--data.num_workers=0", f"--data.cache_images={args.cache_images}",
               "--data.train_transforms=null",
               f"--trainer.max_epochs={args.epochs}", "--trainer.enable_progress_bar=false",
               f"--runs_dir={folder}/runs", "--trainer.logger=false"]  # fmt: skip
        plain = [sys.executable, "-c", PLAIN, str(data), str(args.epochs)]

        def run(command: list[str]) -> float:
            return seconds(lambda: subprocess.run(command, check=True, env=env, cwd=folder, stdout=subprocess.DEVNULL))

        medians = interleaved({"fit": lambda: run(fit), "plain": lambda: run(plain)}, args.rounds)
    report(f"lenet5, 7188 digit PNGs, {args.epochs} epochs, cache_images={args.cache_images}",
           ("visiontasks fit", medians["fit"]), ("plain script", medians["plain"]), "s", "<= 1.5")  # fmt: skip


if __name__ == "__main__":
    main()
