"""Training steps through a task and the Lightning Trainer against a plain PyTorch loop, side by side.

    python benchmarks/train_step.py                 # ResNet-18, 64 px, batch 32, 16 steps, 1 thread
    python benchmarks/train_step.py --model resnet50 --size 128 --rounds 3

Both sides train the same network from the same weights on the same batches with the same
optimiser (fused AdamW, lr 1e-3); the task adds what it always does: loss logging, training metrics,
the learning-rate schedule, its hooks and callbacks. Two ratios, medians of interleaved rounds:
- steps: the 16 steps only, from the start of the first to the end of the last (per-step overhead);
- whole run: ``trainer.fit`` from call to return (set-up, the epoch-end metrics and ``last.ckpt``)
  against the plain loop plus a ``torch.save`` of its model and optimiser, as a script keeps its work.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report  # noqa: E402

from visiontasks import ClassificationTask  # noqa: E402
from visiontasks.models.normalize import normalize  # noqa: E402


class RandomImages(Dataset):
    """Fixed random images and labels as the batch dicts the tasks take."""

    def __init__(self, count: int, size: int, classes: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(count, 3, size, size, generator=g)
        self.labels = torch.randint(classes, (count,), generator=g)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


class StepClock(pl.Callback):
    """Time from the start of the first training step to the end of the last one."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def plain_loop(model: nn.Module, loader: DataLoader, folder: Path,
               standardize: Callable[[torch.Tensor], torch.Tensor] = normalize) -> dict[str, float]:
    begin = time.perf_counter()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as the task's default
    criterion = nn.CrossEntropyLoss()
    batches = iter(loader)
    batch = next(batches)
    start = time.perf_counter()
    while batch is not None:
        optimizer.zero_grad()
        loss = criterion(model(standardize(batch["image"])), batch["label"])
        loss.backward()
        optimizer.step()
        batch = next(batches, None)
    steps = time.perf_counter() - start
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, folder / "plain.pt")
    return {"steps": steps, "run": time.perf_counter() - begin}


def through_task(task: ClassificationTask, loader: DataLoader, steps: int, folder: Path) -> dict[str, float]:
    begin = time.perf_counter()
    clock = StepClock()
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[clock], default_root_dir=folder,
    )  # fmt: skip
    trainer.fit(task, train_dataloaders=loader)
    return {"steps": clock.end - clock.start, "run": time.perf_counter() - begin}


def arguments(doc: str, model: str) -> argparse.Namespace:
    """The command line both training-step benchmarks take (this one and timm_step.py), applied: threads, seed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=model)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    return args


def compare(args: argparse.Namespace, task_name: str, plain: Callable[[DataLoader, Path], dict[str, float]],
            plain_name: str, target: str) -> None:
    """Interleave the task (``task_name``) and ``plain`` over the same batches; print both ratios."""
    data = RandomImages(args.steps * args.batch_size, args.size, args.classes)
    loader = DataLoader(data, batch_size=args.batch_size, drop_last=True)
    reference = ClassificationTask(model=task_name, num_classes=args.classes)
    with tempfile.TemporaryDirectory() as folder:
        sides = {
            "task": lambda: through_task(copy.deepcopy(reference), loader, args.steps, Path(folder)),
            "plain": lambda: plain(reference, loader, Path(folder)),
        }
        medians = interleaved(sides, args.rounds)
    print(f"{args.steps} training steps, {task_name} {args.size}px, batch {args.batch_size}, {args.threads} thread(s), "
          f"{args.rounds} rounds")  # fmt: skip
    for part in ("steps", "run"):
        ratio = report(part, ("task + Trainer", medians[f"task/{part}"]), (plain_name, medians[f"plain/{part}"]),
                       "s", target)  # fmt: skip
        print(f"  overhead {100 * (ratio - 1):+.1f} %")


def main() -> None:
    args = arguments(__doc__, "resnet18")
    compare(args, args.model, lambda task, loader, folder: plain_loop(copy.deepcopy(task.model), loader, folder),
            "plain loop", "<= 1.02")


if __name__ == "__main__":
    main()
