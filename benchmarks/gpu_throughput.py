"""Training images per second on one NVIDIA GPU: the task through the Trainer with the GPU switches,
against a plain PyTorch loop with the same settings; then U-Net and Mask R-CNN through their tasks.

    python benchmarks/gpu_throughput.py                       # bf16-mixed + channels-last, batch 64
    python benchmarks/gpu_throughput.py --precision 16-mixed --compile --rounds 5

Without CUDA it says so and exits 0 (it cannot run on the CPU machines the tests run on).
Both ResNet-50 sides train the same network on the same random 224 px batches, already on the
GPU (so the loader is not measured); each round skips ``--warmup`` steps (cuDNN autotuning,
compilation) and times the next ``--steps``; the medians of interleaved rounds give the ratio.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report  # noqa: E402

from visiontasks import (  # noqa: E402
    ChannelsLast,
    ClassificationTask,
    Compile,
    InstanceSegmentationTask,
    SegmentationTask,
)
from visiontasks.models.normalize import normalize  # noqa: E402

AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16, "32-true": None}


class Clock(pl.Callback):
    """Seconds of the ``steps`` training steps after the first ``warmup`` ones."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.warmup + self.steps - 1:
            torch.cuda.synchronize()
            self.seconds = time.perf_counter() - self.start


class GpuBatches(torch.utils.data.IterableDataset):
    """The same few batches, over and over, made once on the GPU: the loader costs nothing."""

    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def __iter__(self):
        while True:
            yield from self.batches


def segmentation_batches(size: int, batch: int, classes: int) -> list[dict]:
    return [{"image": torch.rand(batch, 3, size, size, device="cuda"),
             "mask": torch.randint(classes, (batch, size, size), device="cuda")} for _ in range(4)]  # fmt: skip


def detection_batches(size: int, batch: int, classes: int) -> list[dict]:
    batches = []
    for _ in range(4):
        corners = torch.rand(batch, 3, 2, device="cuda") * size * 0.6
        boxes = torch.cat([corners, corners + size * 0.3], dim=2)
        masks = torch.zeros(batch, 3, size, size, dtype=torch.uint8, device="cuda")
        for i in range(batch):
            for k in range(3):
                x0, y0, x1, y1 = boxes[i, k].long().tolist()
                masks[i, k, y0:y1, x0:x1] = 1
        batches.append({"image": list(torch.rand(batch, 3, size, size, device="cuda")), "boxes": list(boxes),
                        "labels": list(torch.randint(classes, (batch, 3), device="cuda")), "masks": list(masks)})  # fmt: skip
    return batches


def trainer_images_per_second(task: pl.LightningModule, batches: list[dict], batch: int, args, channels_last: bool) -> float:
    clock = Clock(args.warmup, args.steps)
    callbacks = [clock, *([ChannelsLast()] if channels_last else []), *([Compile()] if args.compile else [])]
    trainer = pl.Trainer(accelerator="gpu", devices=1, precision=args.precision, max_steps=args.warmup + args.steps,
                         logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         limit_val_batches=0, callbacks=callbacks, default_root_dir="/tmp/gpu_throughput")  # fmt: skip
    loader = torch.utils.data.DataLoader(GpuBatches(batches), batch_size=None)
    trainer.fit(task, train_dataloaders=loader)
    return args.steps * batch / clock.seconds


def plain_images_per_second(model: nn.Module, batches: list[dict], batch: int, args) -> float:
    model = model.cuda().to(memory_format=torch.channels_last).train()
    if args.compile:
        model.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    dtype = AUTOCAST[args.precision]
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    start = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        data = batches[step % len(batches)]
        images = data["image"].contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(model(normalize(images)), data["label"])
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    torch.cuda.synchronize()
    return args.steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="bf16-mixed", choices=list(AUTOCAST))
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides (the Compile callback)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA GPU here; nothing measured (run it on a GPU machine).")
        return
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()}, {args.precision}, channels-last, compile={args.compile}, {args.rounds} rounds")
    size, batch, classes = 224, args.batch_size, 1000
    g = torch.Generator(device="cuda").manual_seed(0)
    batches = [{"image": torch.rand(batch, 3, size, size, device="cuda", generator=g),
                "label": torch.randint(classes, (batch,), device="cuda", generator=g)} for _ in range(4)]  # fmt: skip
    reference = ClassificationTask(model="resnet50", num_classes=classes)
    medians = interleaved({
        "task": lambda: trainer_images_per_second(copy.deepcopy(reference), batches, batch, args, channels_last=True),
        "plain": lambda: plain_images_per_second(copy.deepcopy(reference.model), batches, batch, args),
    }, args.rounds)  # fmt: skip
    report(f"ResNet-50 {size}px batch {batch} training", ("task + Trainer", medians["task"]),
           ("plain loop", medians["plain"]), "img/s", ">= 0.98")  # fmt: skip

    unet = SegmentationTask(num_classes=4, model="unet", model_options={"base_channels": 64, "depth": 4})
    unet_speed = trainer_images_per_second(unet, segmentation_batches(256, 16, 4), 16, args, channels_last=True)
    print(f"U-Net (64 base channels, depth 4) 256px batch 16 training: {unet_speed:.1f} img/s")
    detector = InstanceSegmentationTask(num_classes=3, model_options={"backbone": "resnet50", "min_size": 512, "max_size": 512})
    args.compile = False  # the detectors' data-dependent shapes recompile without end
    mask_rcnn = trainer_images_per_second(detector, detection_batches(512, 8, 3), 8, args, channels_last=False)
    print(f"Mask R-CNN ResNet-50-FPN 512px batch 8 training: {mask_rcnn:.1f} img/s")


if __name__ == "__main__":
    main()
