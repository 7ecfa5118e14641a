"""The data module every data source builds on: splits, loaders and the augmentation pipelines.

A subclass only says where samples come from (``make_sources``) and which classes exist; this
base turns that into seeded train/val/test splits, albumentations pipelines and data loaders.
"""

from __future__ import annotations

import abc
import functools
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from visiontasks.data.balance import balanced_sampler_weights
from visiontasks.data.cache import CachedSource, memory_limit, should_cache
from visiontasks.data.collate import collate
from visiontasks.data.dataset import SampleDataset, Source
from visiontasks.data.folds import fold_split
from visiontasks.data.image_size import auto_image_size, file_sizes, median_size
from visiontasks.data.inputs import InputImages
from visiontasks.data.leakage import check_leakage
from visiontasks.data.options import check_data_options
from visiontasks.data.sampling import EpochSampler, ShardSampler
from visiontasks.data.splits import split_off
from visiontasks.data.transforms import (
    TransformSpec,
    as_size,
    build_pipeline,
    images_to_float,
    pipeline_to_dict,
    seed_augmentation,
)
from visiontasks.data.workers import auto_workers
from visiontasks.errors import DataError
from visiontasks.kinds import IMAGES_ONLY, Kind, kind_of

log = logging.getLogger(__name__)


def _no_tensors(value: Any) -> bool:
    """A list of names, numbers or tuples of numbers (a batch's paths, ids, sizes): nothing to move to a device."""
    return isinstance(value, list) and all(
        isinstance(v, (str, int, float)) or (isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v)) for v in value
    )


def _split_files(splits: dict[str, tuple[Source, np.ndarray]]) -> dict[str, list[Path]]:
    """The image file of every sample, per split, for sources that know them (not the generated shapes)."""
    files: dict[str, list[Path]] = {}
    for name, (source, indices) in splits.items():
        paths = getattr(source, "paths", None)
        if paths is not None and not any(splits[other] is splits[name] for other in files):  # test may be val
            files[name] = [Path(paths[i]) for i in indices]
    return files


class VisionDataModule(pl.LightningDataModule, abc.ABC):
    """Shared splits, pipelines and loaders; subclasses provide samples through ``make_sources``.

    Args:
        batch_size: samples per batch (per device).
        num_workers: data loader worker processes; ``auto``: one per CPU core this process may use, less one
            for the main process, shared among the devices of the machine (at most 8 each).
        image_size: the network's input size: every image is resized to it (``64`` or ``[height, width]``).
            ``auto`` (default) follows the training files: no resize when they share one size, else their
            median size rounded to a multiple of 32 (logged). ``null`` keeps every image's own size.
        in_channels: 1 for grayscale, 3 for RGB; files are converted on reading.
        train_transforms: albumentations transforms for training, e.g.
            ``[{class_path: HorizontalFlip, init_args: {p: 0.5}}]``; the resize is appended.
        eval_transforms: transforms for validation, test and predict (before the resize).
        val_fraction: share of the training pool held out for validation when no val split exists.
        test_fraction: share of all samples held out for testing when no test split exists.
        seed: seed of the splits (and of generated data).
        min_visibility: boxes keeping less than this share of their area after a crop are dropped.
        predict_dir: a folder of images to predict on; ``None`` predicts on the test split.
        pin_memory: pin host memory for faster GPU copies (default: when a GPU is present).
        uint8_images: batches carry 8-bit images, made float in [0, 1] on the device after the copy:
            4x fewer bytes through the workers and to the GPU, the same numbers (16-bit files stay float).
        cache_images: keep the decoded files in memory, so each is decoded once instead of every epoch;
            ``auto``: when they fit (up to 4 GiB and a quarter of the free memory). Generated data is never cached.
            The set-up's check of every file hands its decoded images to the cache (one decode per file), and the
            splits whose transforms draw no random numbers (the resize alone) are kept after them too (when that
            fits as well), so their epochs only copy ready tensors.
        balanced_sampling: draw each training epoch with replacement so that every class (counted by the images
            that show it) comes about equally often; seeded by the epoch, so resume and DDP shards stay exact.
        fold: ``[k, n]``: validate on fold ``k`` of ``n`` of the training data (stratified by class, grouped by the
            data's groups, seeded) and train on the others, instead of ``val_fraction``; the ``cv`` command sets it.
    """

    task: str = "classification"
    """The kind of samples this module gives, by name (see :mod:`visiontasks.kinds`)."""

    def __init__(
        self,
        batch_size: int = 16,
        num_workers: int | Literal["auto"] = 0,
        image_size: int | list[int] | Literal["auto"] | None = "auto",
        in_channels: int = 3,
        train_transforms: list[TransformSpec] | None = None,
        eval_transforms: list[TransformSpec] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.3,
        seed: int = 0,
        min_visibility: float = 0.3,
        predict_dir: str | None = None,
        pin_memory: bool | None = None,
        uint8_images: bool = False,
        cache_images: bool | Literal["auto"] = "auto",
        balanced_sampling: bool = False,
        fold: list[int] | None = None,
    ) -> None:
        super().__init__()
        check_data_options(batch_size, num_workers, image_size, in_channels, val_fraction, test_fraction, min_visibility, seed)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size: tuple[int, int] | str | None = image_size if image_size == "auto" else as_size(image_size)
        self.auto_size = image_size == "auto"  # a checkpoint's training size then wins over the files at hand
        self.input_size: tuple[int, int] | None = None
        """(height, width) the network mostly sees, known after set-up: ``image_size``, else the median file size."""
        self.in_channels = in_channels
        self.train_transforms = train_transforms
        self.eval_transforms = eval_transforms
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.min_visibility = min_visibility
        self.predict_dir = predict_dir
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.uint8_images = uint8_images
        self.cache_images = cache_images
        self.balanced_sampling = balanced_sampling
        self.fold = fold
        self.class_names: list[str] = []
        self.datasets: dict[str, Dataset] = {}
        self._resume_batches = 0  # batches of the current epoch a resumed run already trained on
        self._fitting = False  # set-up for training: the files are read every epoch (so cached, as cache_images says)

    @property
    def kind(self) -> Kind:
        """The schema of this module's samples: their targets and how they are augmented and batched."""
        return kind_of(self.task)

    @property
    def keep_decoded(self) -> bool | str:
        """Whether a source's set-up check keeps the images it decodes for the cache made next (``auto``: when they
        fit), so that each file is decoded once, not twice: ``cache_images`` when setting up for training."""
        return self.cache_images if self._fitting else False

    @property
    def num_classes(self) -> int:
        """Classes the task must predict (the CLI passes this to the task)."""
        return len(self.class_names)

    @property
    def multilabel(self) -> bool:
        """Several labels per image (multi-hot targets); the task must be multi-label too."""
        return self.kind.multi_hot

    @abc.abstractmethod
    def make_sources(self) -> dict[str, Source]:
        """Samples by split: ``{"all": ...}`` to split here, or any of ``train``/``val``/``test``."""

    def split_sources(self) -> dict[str, tuple[Source, np.ndarray]]:
        """Given splits are used as they are; missing test and val splits are carved out of the rest."""
        sources = self.make_sources()
        train = sources.get("train", sources.get("all"))
        if train is None or len(train) == 0:
            raise DataError(f"{type(self).__name__}: no training samples found.")
        pool = np.arange(len(train))
        labels = getattr(train, "labels", None)
        if labels is not None and np.ndim(labels) != 1:  # multi-hot rows: no single class to stratify by
            labels = None
        splits: dict[str, tuple[Source, np.ndarray]] = {}
        if self.fold and "val" in sources:
            raise DataError(f"{type(self).__name__}: fold {self.fold} makes the validation split from the training "
                            "data, but the data gives one (val_csv, val/...): leave it out for cross-validation.")  # fmt: skip
        for name in ("test", "val"):
            if name == "val" and self.fold:
                pool, taken = fold_split(train, pool, self.fold, self.seed, self.kind, self.class_names)
                splits[name] = (train, taken)
            elif name in sources:
                splits[name] = (sources[name], np.arange(len(sources[name])))
            elif name == "val" or ("all" in sources and self.test_fraction > 0):
                fraction = self.val_fraction if name == "val" else self.test_fraction
                pool, taken = split_off(pool, fraction, self.seed + len(splits), labels)
                splits[name] = (train, taken)
        splits["train"] = (train, pool)
        if "test" not in splits:
            log.info("No test split given: testing on the validation split.")
            splits["test"] = splits["val"]
        for name, (_, indices) in splits.items():
            if len(indices) == 0:
                raise DataError(
                    f"{type(self).__name__}: the {name} split is empty; add data or change val_fraction/test_fraction."
                )
        check_leakage(_split_files(splits))
        return splits

    def pipeline(self, training: bool) -> Any:
        """Training: the user's transforms and the resize in one pipeline. Evaluation: the transforms only;
        the resize comes separately (:meth:`resize`), so targets stay at hand in the file's pixels."""
        if training:
            return build_pipeline(self.train_transforms, self.image_size, self.kind, self.min_visibility)
        return build_pipeline(self.eval_transforms, None, self.kind)

    def resize(self, kind: Kind) -> Any:
        """The resize to ``image_size`` as a pipeline of its own, for evaluation and prediction (``None``: no resize)."""
        return build_pipeline(None, self.image_size, kind) if self.image_size is not None else None

    def predict_fit(self) -> tuple[int, int] | None:
        """The size photos to predict on are resized to when no eval transform comes first: a large file is then
        read smaller (:attr:`InputImages.fit`)."""
        return self.image_size if isinstance(self.image_size, tuple) and not self.eval_transforms else None

    def dataset(self, source: Source, indices: Sequence[int], training: bool, kind: Kind) -> SampleDataset:
        pipeline = self.pipeline(training) if kind is self.kind else build_pipeline(self.eval_transforms, None, kind)
        resize = None if training else self.resize(kind)
        return SampleDataset(source, indices, pipeline, training, kind, self.seed, resize, self.uint8_images)

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_dir is not None:
            if not Path(self.predict_dir).is_dir():
                raise DataError(f"{self.predict_dir}: predict folder not found.")
            source = InputImages(self.predict_dir, self.in_channels)
            if self.image_size == "auto":  # no training files here: the photos' own sizes decide
                self.image_size = auto_image_size(file_sizes(source, range(len(source))))
            source.fit = self.predict_fit()
            self.datasets["predict"] = self.dataset(source, range(len(source)), False, IMAGES_ONLY)  # images, no targets
            return
        if "train" in self.datasets:
            return
        self._fitting = stage in (None, "fit")  # only training reads the files again and again
        try:
            splits = self.split_sources()
        finally:
            self._fitting = False
        if stage in (None, "fit"):
            splits = self.cached(splits)
        sizes = file_sizes(*splits["train"])
        self.input_size = self.image_size if isinstance(self.image_size, tuple) else median_size(sizes)
        if self.image_size == "auto":
            self.image_size = auto_image_size(sizes)
            self.input_size = self.image_size or self.input_size
        for name, (source, indices) in splits.items():
            self.datasets[name] = self.dataset(source, indices, name == "train", self.kind)
        self.datasets["predict"] = self.datasets["test"]
        if stage in (None, "fit"):
            self.prepare(("train", "val"))
        if self.image_size is not None and self.kind.scored_in_original_pixels:
            log.info(
                "Validation and test metrics are computed in each file's own pixels: predictions are resized "
                "from %s back to the file's size and scored against its annotation.", "x".join(map(str, self.image_size))
            )

    def prepare(self, names: Sequence[str]) -> None:
        """Splits read every epoch whose images are cached and whose pipelines draw no random numbers (the resize
        alone, as with no ``train_transforms``) run them once here: an epoch then only copies ready tensors."""
        for name in names:
            dataset = self.datasets[name]
            if isinstance(dataset, SampleDataset) and isinstance(dataset.source, CachedSource):
                if dataset.prepare(limit=memory_limit()):
                    log.info("Prepared the %d %s samples once: their transforms are not random.", len(dataset), name)

    def cached(self, splits: dict[str, tuple[Source, np.ndarray]]) -> dict[str, tuple[Source, np.ndarray]]:
        """The splits with their sources decoded into memory where ``cache_images`` says so (a source shared
        by several splits is cached once)."""
        cached: dict[int, Source] = {}
        for source, _ in splits.values():
            if id(source) not in cached:
                decoded = getattr(source, "decoded", None) is not None  # its check kept them: decided already
                cached[id(source)] = CachedSource(source) if decoded or should_cache(source, self.cache_images) else source
                if decoded:  # the cache holds the check's decoded images now
                    source.decoded = None
        return {name: (cached[id(source)], indices) for name, (source, indices) in splits.items()}

    def _world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.world_size if trainer is not None else 1

    def workers(self) -> int:
        """``num_workers``, with ``auto`` resolved from the CPU cores and the devices sharing them."""
        if self.num_workers != "auto":
            return self.num_workers
        trainer = getattr(self, "trainer", None)
        return auto_workers(trainer.num_devices if trainer is not None else 1)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Lightning's move of every tensor to ``device``, skipping the per-image lists of file names, ids and sizes
        (walking them item by item cost more than the copy of the images)."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        moved = {}
        for key, value in batch.items():
            moved[key] = value if _no_tensors(value) else super().transfer_batch_to_device(value, device, dataloader_idx)
        return moved

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``uint8_images``: the batch's images become float in [0, 1] here, on the device."""
        if isinstance(batch, dict) and "image" in batch:
            batch["image"] = images_to_float(batch["image"])
        return batch

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        dataset = self.datasets[split]
        workers = self.workers()
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        world = self._world_size()
        if world > 1 and not shuffle and len(dataset) < world:
            raise DataError(
                f"{type(self).__name__}: the {split} split has {len(dataset)} images for {world} processes; every process "
                "needs one: add data, raise val_fraction/test_fraction, or use fewer devices."
            )
        sampler: Sampler | None = ShardSampler(dataset, world, rank) if world > 1 else None
        if shuffle:
            weights = balanced_sampler_weights(dataset, self.class_names) if self.balanced_sampling else None
            sampler = EpochSampler(dataset, self.seed, world, rank, skip=self._resume_batches * self.batch_size, weights=weights)
            self._resume_batches = 0
            if trainer is not None:
                # workers fetch ahead as soon as the loader is made, before Lightning sets the epoch: a
                # resumed run must start from its own epoch, not epoch 0
                sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=functools.partial(collate, list_keys=dataset.kind.list_keys),
            worker_init_fn=seed_augmentation if workers > 0 else None,
            drop_last=shuffle and len(dataset) // world > self.batch_size,
        )

    def state_dict(self) -> dict[str, Any]:
        """Where training stood, kept in checkpoints: a run resumed from a mid-epoch (step) checkpoint skips
        the batches of that epoch it already trained on, and so goes on exactly as if never stopped."""
        size = self.image_size if self.image_size != "auto" else None
        state: dict[str, Any] = {"image_size": list(size) if size else None}  # what the network was trained at
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.state.fn != "fit":
            return state
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return state | {"epoch": trainer.current_epoch, "batches_done": done, "batches": trainer.num_training_batches}

    def input_settings(self) -> dict[str, Any]:
        """How evaluation prepares an image (eval transforms as albumentations' serialised pipeline, training size,
        channels), kept in the task's checkpoints so that ``task.predict`` prepares new images alike."""
        import albumentations as A

        size = self.image_size if isinstance(self.image_size, tuple) else None
        return {"image_size": list(size) if size else None, "in_channels": self.in_channels,
                "eval_transforms": pipeline_to_dict(build_pipeline(self.eval_transforms, None, IMAGES_ONLY))}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.auto_size and "image_size" in state_dict:
            self.use_trained_size(as_size(state_dict["image_size"]))
        done, total = state_dict.get("batches_done", 0), state_dict.get("batches", 0)
        self._resume_batches = done if 0 < done < total else 0  # an epoch-end checkpoint starts the next epoch
        if self._resume_batches:  # Lightning cannot tell that the sampler takes care of it
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")

    def use_trained_size(self, size: tuple[int, int] | None) -> None:
        """Evaluate and predict at the size the restored network was trained at (``image_size: auto``)."""
        if size == self.image_size:
            return
        log.info("image_size auto: using the checkpoint's training size %s.", "x".join(map(str, size)) if size else "(none: no resize)")
        self.image_size = size
        for dataset in self.datasets.values():
            if isinstance(dataset, SampleDataset) and not dataset.training:
                dataset.resize = self.resize(dataset.kind)
                if isinstance(dataset.source, InputImages):
                    dataset.source.fit = self.predict_fit()
                if dataset.prepared is not None:  # made at the old size
                    dataset.prepare(limit=memory_limit())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
