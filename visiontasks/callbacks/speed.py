"""GPU speed switches as Trainer callbacks: off unless a config lists them (``trainer.callbacks``).

    python -m visiontasks fit --config configs/unet.yaml --trainer.callbacks+=ChannelsLast
    python -m visiontasks fit --config configs/classification.yaml --trainer.callbacks+=Compile

Neither changes what a network computes, only how fast: results agree with the switch off up to
floating-point rounding (docs/speed.md says when each pays).
"""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class ChannelsLast(Callback):
    """Keeps weights and image batches in the channels-last (NHWC) memory layout.

    Pays on NVIDIA GPUs with tensor cores under ``16-mixed``/``bf16-mixed`` precision for convolution
    networks (ResNet, U-Net: typically 10-30 % faster); little or nothing on CPUs and in float32.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)

    @staticmethod
    def _convert(batch: Any) -> None:
        images = batch.get("image") if isinstance(batch, dict) else None
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            batch["image"] = images.contiguous(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._convert(batch)

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:  # fmt: skip
        self._convert(batch)

    on_test_batch_start = on_predict_batch_start = on_validation_batch_start


class Compile(Callback):
    """Compiles the task's network with ``torch.compile`` (in place: checkpoints keep their keys).

    Pays on GPUs for long runs at a fixed image size (classification, U-Net): the first steps
    spend 0.5-2 minutes compiling, later ones run faster. Not for short runs, images of varying
    size (``image_size: null``) or the detectors, whose data-dependent shapes recompile often.

    Args:
        mode: ``default``, ``reduce-overhead`` (CUDA graphs) or ``max-autotune``.
        backend: the compiler (``inductor``; ``eager``/``aot_eager`` only check that the graph captures).
        dynamic: compile for varying shapes (``None``: decide after the first change).
    """

    def __init__(
        self,
        mode: Literal["default", "reduce-overhead", "max-autotune"] = "default",
        backend: str = "inductor",
        dynamic: bool | None = None,
    ) -> None:
        self.options = {"mode": mode if backend == "inductor" else None, "backend": backend, "dynamic": dynamic}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        model = getattr(pl_module, "model", None)
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"Compile: {type(pl_module).__name__} has no `model` network to compile.")
        if getattr(model, "_compiled_call_impl", None) is None:  # a second stage on the same task: compiled already
            model.compile(**self.options)
