"""The samples of one split: a source's samples at given indices, through one pipeline, as tensors.

Training samples are augmented with seeds of their own (so a resumed run repeats them); splits whose
pipelines draw no random numbers can be prepared once and then only copied each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from visiontasks.data.collate import collate
from visiontasks.data.sampling import sample_seed
from visiontasks.data.transforms import apply_pipeline, images_to_float, is_deterministic, to_tensors
from visiontasks.errors import DataError
from visiontasks.kinds import Kind

Source = Sequence[dict[str, Any]]
"""Indexable samples as numpy dicts (``image`` HxWxC plus targets); ``.labels`` (one class per sample)
enables stratifying, ``.paths`` (the image file of each sample) the check that splits share no image."""


class SampleDataset(Dataset):
    """Samples of a source at given indices, passed through one pipeline and turned into tensors.

    Training samples come as ``(i, epoch)`` from :class:`EpochSampler`; their augmentation is seeded
    from ``(seed, epoch, i)``, so it repeats exactly in a resumed run.
    """

    def __init__(
        self,
        source: Source,
        indices: Sequence[int],
        pipeline: Any,
        training: bool,
        kind: Kind,
        seed: int = 0,
        resize: Any = None,
        uint8_images: bool = False,
    ) -> None:
        self.source, self.indices, self.pipeline, self.training = source, list(indices), pipeline, training
        self.kind, self.seed, self.resize, self.uint8_images = kind, seed, resize, uint8_images
        self.prepared: list[dict[str, Any] | None] | None = None
        """Every sample already through the pipelines (see :meth:`prepare`), or ``None``: run them per read."""

    def __len__(self) -> int:
        return len(self.indices)

    def deterministic(self) -> bool:
        """The pipelines give each sample the same tensors every epoch (no random transform)."""
        return all(pipeline is None or is_deterministic(pipeline) for pipeline in (self.pipeline, self.resize))

    def prepare(self, limit: int | None = None) -> bool:
        """Run the whole (deterministic) pipeline over every sample once and keep the results, so each epoch only
        copies ready tensors (8-bit images stay 8-bit until read). Done when the pipelines draw no random
        numbers and the results fit in ``limit`` bytes (estimated from the first sample); returns whether done."""
        self.prepared = None
        if not self.deterministic() or len(self) == 0:
            return False
        first = self._make(0, keep_uint8=True)
        if limit is not None and tensor_bytes(first) * len(self) > limit:
            return False
        self.prepared = [first] + [self._make(i, keep_uint8=True) for i in range(1, len(self))]
        return True

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        i, epoch = key if isinstance(key, tuple) else (key, None)
        if self.prepared is not None:
            return fresh_copy(self.prepared[i], self.uint8_images)
        if epoch is not None:
            self.pipeline.set_random_seed(sample_seed(self.seed, epoch, i))
        return self._make(i)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> dict[str, Any] | list[dict[str, Any] | None]:
        """The DataLoader's read of a whole batch. Prepared samples come as the batch :func:`collate` would make
        of their reads, built at once: each key stacked straight from the kept samples (new tensors) and the
        8-bit images turned to float once per batch, not once per image. Otherwise one read per key."""
        if self.prepared is None:
            return [self[key] for key in keys]
        kept = [self.prepared[key[0] if isinstance(key, tuple) else key] for key in keys]
        batch = collate(kept, self.kind.list_keys)
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):  # stacked: a new tensor already
                if key == "image" and not self.uint8_images and value.dtype == torch.uint8:
                    batch[key] = images_to_float(value)
            elif isinstance(value, list):  # kept as one value per sample: copied as each read would
                batch[key] = [fresh_copy(v, self.uint8_images, key) for v in value]
        return batch

    def _make(self, i: int, keep_uint8: bool = False) -> dict[str, Any] | None:
        raw = self.source[self.indices[i]]
        sample = apply_pipeline(self.pipeline, raw, self.kind)
        original = None
        if self.resize is not None:  # evaluation: the transforms, then the resize to the network's size
            original, sample = sample, apply_pipeline(self.resize, sample, self.kind)
        # to map predictions back to the file's pixels (where evaluation scores them, against `original`); a
        # source that read a large file smaller says the file's own size
        sample["orig_size"] = tuple(raw.get("orig_size") or (raw if original is None else original)["image"].shape[:2])
        if self.kind.box and sample[self.kind.box] is None:
            if self.training:
                return None  # the augmentation cropped the object away: skip, don't learn a wrong box
            raise DataError(
                f"{sample.get('path', f'sample {self.indices[i]}')}: the eval transforms moved the box out "
                "of the image. Use eval transforms that keep the whole image (resize, not crop)."
            )
        sample = to_tensors(sample, self.kind, self.uint8_images or keep_uint8)
        if original is not None and self.kind.scored_in_original_pixels:
            tensors = to_tensors(original, self.kind)
            sample["original"] = {key: tensors[key] for key in self.kind.dtypes if key in tensors}
        return sample


def tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in a sample (nested dicts and lists too)."""
    if isinstance(value, torch.Tensor):
        return value.nbytes
    if isinstance(value, dict):
        return sum(map(tensor_bytes, value.values()))
    if isinstance(value, (list, tuple)):
        return sum(map(tensor_bytes, value))
    return 0


def fresh_copy(value: Any, uint8_images: bool, key: str = "") -> Any:
    """A prepared sample as a read would have made it: its own tensors (nothing shared with the kept one) and
    the image as float in [0, 1] unless ``uint8_images``."""
    if isinstance(value, dict):
        return {k: fresh_copy(v, uint8_images, k) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh_copy(v, uint8_images) for v in value]
    if isinstance(value, torch.Tensor):
        if key == "image" and not uint8_images and value.dtype == torch.uint8:
            return images_to_float(value)  # a new tensor
        return value.clone()
    return value
