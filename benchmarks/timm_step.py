"""A timm classifier's training steps through ClassificationTask and the Trainer against the same timm model in a
plain PyTorch loop, side by side (target: ratio <= 1.03).

    python benchmarks/timm_step.py                          # timm resnet10t, 64 px, batch 32, 16 steps, 1 thread
    python benchmarks/timm_step.py --model convnext_atto --rounds 3

The plain side builds the network with ``timm.create_model`` itself, copies the task's initial weights, and
standardises the batches with the model's pretrained config (``timm.data.resolve_data_config``), as a timm
script does; everything else (data, optimiser, the two ratios) is benchmarks/train_step.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import timm
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import arguments, compare, plain_loop  # noqa: E402

from visiontasks import ClassificationTask  # noqa: E402


def plain_timm_loop(name: str, task: ClassificationTask, loader: DataLoader, folder: Path) -> dict[str, float]:
    """The task's initial weights in a model timm builds, standardised as its pretrained config says."""
    model = timm.create_model(name, num_classes=task.num_classes)
    model.load_state_dict(task.model.state_dict())
    config = timm.data.resolve_data_config(model=model)
    mean, std = (torch.tensor(config[key]).view(1, -1, 1, 1) for key in ("mean", "std"))
    return plain_loop(model, loader, folder, lambda images: (images - mean) / std)


def main() -> None:
    args = arguments(__doc__, "resnet10t")
    compare(args, f"timm/{args.model}", lambda task, loader, folder: plain_timm_loop(args.model, task, loader, folder),
            "plain timm loop", "<= 1.03")


if __name__ == "__main__":
    main()
