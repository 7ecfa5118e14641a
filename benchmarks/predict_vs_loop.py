"""``task.predict`` on a folder of photos vs a plain inference loop over the same files, same model.

    python benchmarks/predict_vs_loop.py                         # resnet18 classifier, 200 photos, 64 px
    python benchmarks/predict_vs_loop.py --images 400 --size 128 --rounds 5

The plain loop is what a user would write by hand: read each file with PIL, resize, stack a batch,
normalise, run the model under ``inference_mode``, softmax. Rounds alternate between the two so both
see the same machine load; the medians and their ratio (plain time / predict time: >= 0.95x means
``predict`` costs at most 5 % more) are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from visiontasks import ClassificationTask
from visiontasks.models.normalize import normalize


def write_photos(folder: Path, count: int) -> list[Path]:
    """JPEG photos of mixed sizes, as a user's folder holds them."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        height, width = int(rng.integers(160, 320)), int(rng.integers(160, 320))
        path = folder / f"photo{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def plain_loop(task: ClassificationTask, paths: list[Path], size: int, batch_size: int, device: torch.device) -> list[int]:
    labels = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            arrays = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in paths[start : start + batch_size]]
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255).to(device)
            labels.extend(task.model(normalize(images)).softmax(dim=1).argmax(dim=1).tolist())
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task = ClassificationTask(model=args.model, num_classes=3).to(device).eval()
    task.saved_inputs = {"image_size": [args.size, args.size], "in_channels": 3}  # as a restored checkpoint holds
    with tempfile.TemporaryDirectory() as folder:
        paths = write_photos(Path(folder), args.images)
        task.predict(paths[:4], device=device)  # warm-up (kernels, caches) outside the clock
        plain_loop(task, paths[:4], args.size, args.batch_size, device)
        timings: dict[str, list[float]] = {"predict": [], "plain": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            results = task.predict(folder, batch_size=args.batch_size, device=device)
            timings["predict"].append(time.perf_counter() - start)
            start = time.perf_counter()
            labels = plain_loop(task, paths, args.size, args.batch_size, device)
            timings["plain"].append(time.perf_counter() - start)
        agree = np.mean([task.class_names.index(r.label) == label for r, label in zip(results, labels)])
    predict, plain = statistics.median(timings["predict"]), statistics.median(timings["plain"])
    print(f"{args.model} on {args.images} photos at {args.size}px, batch {args.batch_size}, {device.type}: "
          f"task.predict {args.images / predict:.0f} img/s, plain loop {args.images / plain:.0f} img/s, "
          f"ratio {plain / predict:.2f}x (same labels on {agree:.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
