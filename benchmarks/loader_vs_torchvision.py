"""The training data loader against torchvision's ImageFolder + transforms.v2 doing the same work, side by side.

    python benchmarks/loader_vs_torchvision.py                   # 2000 shapes (1260 train PNGs), 0 and 2 workers
    python benchmarks/loader_vs_torchvision.py --images 5000 --workers 0 2 4

Same files (the shapes written as class folders), same work per image: decode the PNG, resize to
``--size``, random horizontal flip, float tensor in [0, 1], batches of 32. Ours is measured with
``cache_images: false`` (decoding every epoch, as torchvision does) and with the default
``cache_images: auto`` (decoded once at set-up, not counted: it is paid once per run). Images per
second of one epoch, medians of interleaved rounds; the ratio is ours / torchvision's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report  # noqa: E402

from visiontasks import ImageFolderDataModule, ShapesDataModule  # noqa: E402


def images_per_second(loader: DataLoader) -> float:
    start, count = time.perf_counter(), 0
    for batch in loader:
        images = batch["image"] if isinstance(batch, dict) else batch[0]
        count += len(images)
    return count / (time.perf_counter() - start)


def ours(root: Path, size: int, workers: int, cache: bool | str) -> DataLoader:
    data = ImageFolderDataModule(root=str(root), image_size=size, batch_size=32, num_workers=workers, cache_images=cache,
                                 train_transforms=[{"class_path": "HorizontalFlip", "init_args": {"p": 0.5}}])  # fmt: skip
    data.setup("fit")
    return data.train_dataloader()


def torchvision_loader(root: Path, size: int, workers: int) -> DataLoader:
    transform = v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True), v2.RandomHorizontalFlip(),
                            v2.ToDtype(torch.float32, scale=True)])  # fmt: skip
    dataset = datasets.ImageFolder(str(root / "train"), transform=transform)
    return DataLoader(dataset, batch_size=32, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                      drop_last=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64, help="the network's input size")
    parser.add_argument("--file-size", type=int, default=96, help="the files' size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "shapes"
        ShapesDataModule(task="classification", num_samples=args.images, image_size=args.file_size).export(root)
        for workers in args.workers:
            loaders = {"ours": ours(root, args.size, workers, False), "cached": ours(root, args.size, workers, "auto"),
                       "torchvision": torchvision_loader(root, args.size, workers)}  # fmt: skip
            for loader in loaders.values():
                iter(loader)  # start persistent workers before the clock
            medians = interleaved({name: lambda loader=loader: images_per_second(loader) for name, loader in loaders.items()},
                                  args.rounds)  # fmt: skip
            title = f"{workers} workers, {args.file_size} px PNGs to {args.size} px"
            report(title, ("ours", medians["ours"]), ("torchvision", medians["torchvision"]), "img/s", ">= 1.5")
            report(title + ", cache_images auto", ("ours", medians["cached"]), ("torchvision", medians["torchvision"]),
                   "img/s", ">= 1.5")  # fmt: skip


if __name__ == "__main__":
    main()
