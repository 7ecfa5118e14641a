"""``RunPictures``: every picture of a run, in the run folder and (with W&B) in the W&B run, from rank zero.

One callback with a switch per picture; the pictures themselves are drawn by the modules beside it.
The CLI adds it to every command (options under ``pictures:`` in a config, ``--pictures.<name>`` on
the command line); in plain Python each task brings one unless the Trainer already has one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import Callback
from torch import Tensor

from visiontasks.kinds import IMAGES_ONLY, Kind, kind_of
from visiontasks.pictures.curves import FAST_PNG
from visiontasks.pictures.grid import prediction_grid
from visiontasks.pictures.interpretation import (
    TopLosses,
    cam_layer,
    filters_figure,
    first_conv,
    grad_cam,
    heat_overlay,
    pictures_figure,
)
from visiontasks.pictures.history import HISTORY_FILE, EpochHistory, show_train_loss_every_epoch
from visiontasks.pictures.overlays import log_overlays
from visiontasks.pictures.truth import truth_of
from visiontasks.pictures.wandb_views import wandb_run
from visiontasks.results import network_picture
from visiontasks.runs import stage_dir

GRID_FILE = "val_predictions.png"
CURVES_SHARE = 0.05
"""``curves.png``, ``val_predictions.png`` and ``filters.png`` are redrawn once their last drawing took at most this
share of the time since: every epoch, unless epochs are shorter than twenty drawings (then every few epochs); the
curves and the filters always when training ends."""


def sample_kind(pl_module: Any) -> Kind:
    """The kind of samples the task trains on: its target keys hold the ground truth the pictures draw."""
    kinds = getattr(pl_module, "kinds", ())
    return kind_of(kinds[0]) if kinds else IMAGES_ONLY


class RunPictures(Callback):
    """Pictures of a run. Each switch turns one picture on (default) or off.

    Args:
        curves: ``metrics.csv`` and ``curves.png`` (loss and each metric per epoch, train vs val): the table
            rewritten every epoch, the picture too unless epochs last less than twenty drawings of it (then every few
            epochs, see :data:`CURVES_SHARE`) and always at the end; ``train/loss`` is also logged at least once
            per epoch, however short.
        grid: how many images of the first validation batch ``val_predictions.png`` shows each epoch (every few
            epochs when epochs are short, as ``curves.png``), the prediction drawn beside the ground truth (0: none).
        overlays: how many images of the first validation batch go to W&B each epoch as ``val/examples``,
            with ground truth and prediction as two groups of boxes and masks (0: none; W&B logger only).
        filters: ``filters.png``, the first convolution's filters as pictures, every epoch (every few epochs when
            epochs are short, and at the end).
        top_losses: at test, ``top_losses.png`` shows this many test images with the highest loss, worst
            first (0: none; costs one more forward pass over the test set, per image for detectors).
        grad_cam: at test, ``grad_cam.png`` shows this many images of the first test batch with the class
            activation map (Grad-CAM) of the predicted class laid over them (classifiers; 0: none).
    """

    def __init__(
        self, curves: bool = True, grid: int = 8, overlays: int = 8, filters: bool = True, top_losses: int = 8,
        grad_cam: int = 8,
    ) -> None:  # fmt: skip
        self.curves, self.grid, self.overlays = curves, grid, overlays
        self.filters, self.top_losses, self.grad_cam = filters, top_losses, grad_cam
        self.worst: TopLosses | None = None
        self.history = EpochHistory()
        self.pending_epoch: int | None = None
        self.curves_behind = False  # rows not drawn in curves.png yet
        self.curves_drawn_at: float | None = None
        self.drawn_at: dict[str, float] = {}  # when the grid and the filters were last drawn
        self.calls: dict[str, list[float]] = defaultdict(list)
        """Seconds each drawing of each picture took in this process (``benchmarks/pictures.py`` reads them)."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.calls[name].append(time.perf_counter() - start)

    def _due(self, name: str) -> bool:
        """Whether an epoch's picture is due: never drawn yet, or its last drawing took at most ``CURVES_SHARE`` of
        the time since (a LeNet-5 epoch of 1000 images is about as long as drawing its grid and filters)."""
        last = self.drawn_at.get(name)
        return last is None or self.calls[name][-1] <= CURVES_SHARE * (time.perf_counter() - last)

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds spent on each picture in this process, all drawings together."""
        return {name: sum(times) for name, times in self.calls.items()}

    # ----- curves ---------------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.curves:
            self.curves_behind, self.curves_drawn_at = False, None
            show_train_loss_every_epoch(trainer)
            self.history.start(stage_dir(trainer) / HISTORY_FILE, trainer.current_epoch)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        if self.curves:
            self.history.add_loss(outputs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.pending_epoch = trainer.current_epoch  # its metrics are complete once the task's own hook has run

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_history(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_history(trainer, final=True)
        if "filters" in self.drawn_at:  # the trained filters, whichever epoch drew them last
            self._draw_filters(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.state.fn == "fit" and self.curves_behind and trainer.is_global_zero:  # e.g. stopped by Ctrl+C
            self._draw_curves(trainer)

    def _write_history(self, trainer: pl.Trainer, final: bool = False) -> None:
        if not self.curves:
            return
        if self.pending_epoch is not None:
            self.history.end_epoch(trainer, self.pending_epoch)
            self.pending_epoch = None
            if trainer.is_global_zero:
                with self.timed("metrics_csv"):
                    self.history.save_table(stage_dir(trainer))
                self.curves_behind = True
        if not self.curves_behind or not trainer.is_global_zero:
            return
        since = None if self.curves_drawn_at is None else time.perf_counter() - self.curves_drawn_at
        if final or since is None or self.calls["curves"][-1] <= CURVES_SHARE * since:
            self._draw_curves(trainer)

    def _draw_curves(self, trainer: pl.Trainer) -> None:
        with self.timed("curves"):
            self.history.save_curves(stage_dir(trainer))
        self.curves_behind, self.curves_drawn_at = False, time.perf_counter()

    # ----- validation predictions: the run folder's grid and W&B's overlays ---------------------------------
    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """The first validation batch (the same images every epoch: validation is not shuffled), rank zero only."""
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero or not batch:
            return
        run = wandb_run(trainer) if self.overlays else None
        grid = self.grid if self.grid and self._due("grid") else 0
        count = max(grid, self.overlays if run is not None else 0)
        if count == 0:
            return
        with self.timed("predictions"):
            images = list(batch["image"])[:count]
            results = pl_module.results({k: v[:count] for k, v in batch.items()})
            truths = [truth_of(batch, i, sample_kind(pl_module)) for i in range(len(results))]
        if grid:
            with self.timed("grid"):
                pictures = [network_picture(image, tuple(image.shape[-2:])) for image in images[:grid]]
                figure = prediction_grid(pictures, results[:grid], truths[:grid], pl_module.class_names)
                self._save(trainer, figure, GRID_FILE)
            self.drawn_at["grid"] = time.perf_counter()
        if run is not None:
            with self.timed("overlays"):
                n = self.overlays
                log_overlays(run, "val/examples", images[:n], results[:n], truths[:n], pl_module.class_names, trainer.global_step)

    def _save(self, trainer: pl.Trainer, picture: Any, filename: str, wandb_key: str | None = None) -> None:
        """Write ``picture`` (a matplotlib figure, closed after, or an HxWx3 array) into the folder of the command,
        and to W&B as ``wandb_key``."""
        folder = stage_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(picture, np.ndarray):
            Image.fromarray(picture).save(folder / filename, **FAST_PNG)
        else:
            picture.savefig(folder / filename, dpi=100, bbox_inches="tight", pil_kwargs=FAST_PNG)
        run = wandb_run(trainer) if wandb_key else None
        if run is not None:
            import wandb

            run.log({wandb_key: wandb.Image(picture), "trainer/global_step": trainer.global_step})
        if not isinstance(picture, np.ndarray):
            plt.close(picture)

    # ----- interpretation ---------------------------------------------------------------------------------
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._due("filters"):
            self._draw_filters(trainer, pl_module)

    def _draw_filters(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.filters or not trainer.is_global_zero:
            return
        conv = first_conv(getattr(pl_module, "model", pl_module))
        if conv is not None:
            with self.timed("filters"):
                self._save(trainer, filters_figure(conv.weight), "filters.png", "filters")
            self.drawn_at["filters"] = time.perf_counter()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.worst = TopLosses(self.top_losses) if self.top_losses else None

    def on_test_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not batch:
            return
        if self.worst is not None:
            with self.timed("top_losses"):
                losses = pl_module.sample_losses(batch)
                if losses is None:  # a task without a loss: no top-losses picture
                    self.worst = None
                else:
                    self.worst.add(losses, batch)
        if batch_idx == 0 and self.grad_cam and trainer.is_global_zero and getattr(pl_module, "explained_by_grad_cam", False):
            layer = cam_layer(pl_module, batch["image"]) if isinstance(batch["image"], Tensor) else None
            if layer is not None:
                with self.timed("grad_cam"):
                    self._save_grad_cam(trainer, pl_module, batch, layer)

    def _save_grad_cam(self, trainer: pl.Trainer, pl_module: Any, batch: dict[str, Any], layer: Any) -> None:
        images = batch["image"][: self.grad_cam]
        maps, classes = grad_cam(pl_module, images, layer)
        names, pictures, titles = pl_module.class_names, [], []
        for image, heat, predicted, truth in zip(images, maps, classes.tolist(), (truth_of(batch, i, sample_kind(pl_module)) for i in range(len(images)))):
            picture = network_picture(image, tuple(image.shape[-2:]))
            pictures.append(heat_overlay(picture, heat.numpy()))
            titles.append(f"{truth.caption(names) if truth else ''}\nGrad-CAM of {names[predicted]}")
        self._save(trainer, pictures_figure(pictures, titles), "grad_cam.png", "test/grad_cam")

    def on_test_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if self.worst is None or not self.worst.heap:
            return
        worst = self.worst.worst_first()
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size  # every process kept its own worst: draw the worst of all
            torch.distributed.all_gather_object(gathered, worst)
            worst = sorted((e for part in gathered for e in part), key=lambda e: -e[0])[: self.top_losses]
        if not trainer.is_global_zero:
            return
        with self.timed("top_losses"):
            results, pictures, truths, notes = [], [], [], []
            for loss, sample in worst:
                on_device = {k: v.to(pl_module.device) if isinstance(v, Tensor) else v for k, v in sample.items()}
                results += pl_module.results(on_device)
                image = sample["image"][0]
                pictures.append(network_picture(image, tuple(image.shape[-2:])))
                truths.append(truth_of(sample, 0, sample_kind(pl_module)))
                notes.append(f"loss {loss:.3f}")
            figure = prediction_grid(pictures, results, truths, pl_module.class_names, notes=notes)
            self._save(trainer, figure, "top_losses.png", "test/top_losses")
