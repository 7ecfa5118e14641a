"""Images per second out of the shapes data loader with 0 and N workers, side by side.

    python benchmarks/loader_workers.py                  # classification at 64 px, 0 vs 2 workers
    python benchmarks/loader_workers.py --task segmentation --size 128 --workers 4

Decides the ``num_workers`` the shipped configs use: on-the-fly rendering and augmentation run
in the workers while the model trains in the main process.
"""

from __future__ import annotations

import argparse
import time

from visiontasks import ShapesDataModule


def images_per_second(task: str, size: int, workers: int, samples: int, batch_size: int) -> float:
    data = ShapesDataModule(task=task, num_samples=samples, image_size=size, batch_size=batch_size,
                            num_workers=workers, test_fraction=0.0, val_fraction=0.05,
                            train_transforms=[{"class_path": "HorizontalFlip", "init_args": {"p": 0.5}}])  # fmt: skip
    data.setup("fit")
    loader = data.train_dataloader()
    iter(loader)  # start the workers before the clock
    start = time.perf_counter()
    count = sum(len(batch["image"]) for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="classification")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    single = images_per_second(args.task, args.size, 0, args.samples, args.batch_size)
    multi = images_per_second(args.task, args.size, args.workers, args.samples, args.batch_size)
    print(f"{args.task} {args.size}px: 0 workers {single:.0f} img/s, {args.workers} workers {multi:.0f} img/s, "
          f"ratio {multi / single:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
