"""A timm classifier's training steps through ClassificationTask and the Trainer against the same timm model in a
plain PyTorch loop, side by side (target: ratio <= 1.03).

    python benchmarks/timm_step.py                          # timm resnet10t, 64 px, batch 32, 16 steps, 1 thread
    python benchmarks/timm_step.py --model convnext_atto --rounds 3

The plain side builds the network with ``timm.create_model`` itself, copies the task's initial weights, and
standardises the batches with the model's pretrained config (``timm.data.resolve_data_config``), as a timm
script does; everything else (data, optimiser, the two ratios) is benchmarks/train_step.py's.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import timm
import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report  # noqa: E402
from train_step import RandomImages, through_task  # noqa: E402

from visiontasks import ClassificationTask  # noqa: E402


def plain_timm_loop(name: str, weights: dict[str, torch.Tensor], classes: int, loader: DataLoader, folder: Path) -> dict[str, float]:
    begin = time.perf_counter()
    model = timm.create_model(name, num_classes=classes)
    model.load_state_dict(weights)
    config = timm.data.resolve_data_config(model=model)
    mean, std = (torch.tensor(config[key]).view(1, -1, 1, 1) for key in ("mean", "std"))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as the task's default
    criterion = nn.CrossEntropyLoss()
    batches = iter(loader)
    batch = next(batches)
    start = time.perf_counter()
    while batch is not None:
        optimizer.zero_grad()
        loss = criterion(model((batch["image"] - mean) / std), batch["label"])
        loss.backward()
        optimizer.step()
        batch = next(batches, None)
    steps = time.perf_counter() - start
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, folder / "plain.pt")
    return {"steps": steps, "run": time.perf_counter() - begin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet10t", help="a timm name")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    data = RandomImages(args.steps * args.batch_size, args.size, args.classes)
    loader = DataLoader(data, batch_size=args.batch_size, drop_last=True)
    reference = ClassificationTask(model=f"timm/{args.model}", num_classes=args.classes)
    weights = copy.deepcopy(reference.model.state_dict())

    with tempfile.TemporaryDirectory() as folder:
        sides = {
            "task": lambda: through_task(copy.deepcopy(reference), loader, args.steps, Path(folder)),
            "plain": lambda: plain_timm_loop(args.model, weights, args.classes, loader, Path(folder)),
        }
        medians = interleaved(sides, args.rounds)
    print(f"{args.steps} training steps, timm {args.model} {args.size}px, batch {args.batch_size}, "
          f"{args.threads} thread(s), {args.rounds} rounds")  # fmt: skip
    for part in ("steps", "run"):
        ratio = report(part, ("task + Trainer", medians[f"task/{part}"]), ("plain timm loop", medians[f"plain/{part}"]),
                       "s", "<= 1.03")  # fmt: skip
        print(f"  overhead {100 * (ratio - 1):+.1f} %")


if __name__ == "__main__":
    main()
