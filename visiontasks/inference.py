"""``task.predict(inputs)``: a restored task on the user's own images, without a Trainer or a data module.

Images are prepared as evaluation prepared them (the eval transforms and training size kept in the
checkpoint), batched, run on the GPU when there is one, and come back as typed results in the
original images' pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from visiontasks.data.collate import collate
from visiontasks.data.inputs import ImageInput, input_dataset
from visiontasks.kinds import IMAGES_ONLY
from visiontasks.results import Result


def _single_images(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch of images of different sizes (kept as a list) as batches of one image each."""
    images = batch["image"]
    if isinstance(images, Tensor):
        return [batch]
    return [{key: value[i][None] if key == "image" else value[i : i + 1] for key, value in batch.items()} for i in range(len(images))]


def predict_images(
    task: pl.LightningModule, inputs: ImageInput | Sequence[ImageInput], batch_size: int = 16, device: str | torch.device | None = None
) -> list[Result]:
    """Typed results of ``task`` (a :class:`BaseTask`) on ``inputs``, in order; see :meth:`BaseTask.predict`."""
    settings = {"in_channels": task.hparams.in_channels, **task.input_settings()}
    dataset = input_dataset(inputs, settings)
    target = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else task.device)
    loader = DataLoader(dataset, batch_size=batch_size, pin_memory=target.type == "cuda",
                        collate_fn=functools.partial(collate, list_keys=IMAGES_ONLY.list_keys))  # fmt: skip
    training = task.training
    task.to(target).eval()
    results: list[Result] = []
    try:
        with torch.inference_mode():
            for batch in loader:
                for part in _single_images(batch):
                    part["image"] = part["image"].to(target, non_blocking=True)
                    results.extend(task.results(part))
    finally:
        task.train(training)
    return results
