"""Class balance of the training split: how often each class occurs, the loss weights that even it out,
and the per-image weights of the balanced sampler.

Everything is counted on the TRAINING samples only (the split's own indices into its source), before any
augmentation: single labels and multi-hot rows straight from the source's ``labels``, objects and mask pixels
from the samples themselves (read once, then kept on the dataset).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from visiontasks.errors import DataError
from visiontasks.kinds import Kind

log = logging.getLogger(__name__)


def label_table(source: Sequence[dict[str, Any]], indices: Sequence[int], kind: Kind, num_classes: int) -> np.ndarray:
    """Images x classes: how much of each class every image holds (its label, its objects or its mask pixels)."""
    labels = getattr(source, "labels", None)
    if labels is not None and not kind.per_object and not kind.mask:  # no image needs decoding
        return np.stack([kind.class_counts({kind.label: labels[i]}, num_classes) for i in indices])
    if not len(indices):
        return np.zeros((0, num_classes), np.int64)
    return np.stack([kind.class_counts(source[i], num_classes) for i in indices])


def training_table(dataset: Any, num_classes: int) -> np.ndarray:
    """The label table of a split's dataset (``source``, ``indices``, ``kind``), computed once and kept on it."""
    table = getattr(dataset, "label_table", None)
    if table is None or table.shape[1] != num_classes:
        table = label_table(dataset.source, dataset.indices, dataset.kind, num_classes)
        dataset.label_table = table
    return table


def inverse_frequency(counts: np.ndarray, images: int, multi_hot: bool) -> np.ndarray:
    """Loss weights from class counts. Single-label and per-pixel: ``total / (classes * count)`` (scikit-learn's
    ``balanced``: every class adds the same total to the loss). Multi-label: ``negatives / positives`` per class,
    the ``pos_weight`` of binary cross-entropy. A class without training samples keeps weight 1."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    if multi_hot:
        weights[present] = (images - counts[present]) / counts[present]
    else:
        weights[present] = counts.sum() / (len(counts) * counts[present])
    return weights


def class_weights(option: Sequence[float] | str | None, num_classes: int, table: np.ndarray | None, kind: Kind,
                  class_names: Sequence[str] = ()) -> np.ndarray | None:  # fmt: skip
    """The loss weights ``class_weights`` asks for: ``None``; an explicit list (one per class, else an error);
    or ``auto``: inverse frequency in ``table`` (the training label table of ``kind``; ``None`` when not known
    yet: ones, replaced at set-up), logged with the counts."""
    if option is None:
        return None
    if option == "auto":
        if table is None:
            return np.ones(num_classes)
        counts = table.sum(axis=0)
        weights = inverse_frequency(counts, len(table), kind.multi_hot)
        names = list(class_names) or [str(i) for i in range(num_classes)]
        unit = "pixels" if kind.mask else "objects" if kind.per_object else "images"
        log.info("class_weights auto, from the %d training images: %s %s; weights %s.", len(table), unit,
                 _by_name(names, counts, "d"), _by_name(names, weights, ".3g"))  # fmt: skip
        missing = [n for n, c in zip(names, counts) if c == 0]
        if missing:
            log.warning("class_weights auto: classes %s have no training samples; their weight stays 1.", missing)
        return weights
    if isinstance(option, str) or len(option) != num_classes:
        given = option if isinstance(option, str) else f"{len(option)} entries"
        raise DataError(f"class_weights: {given} for {num_classes} classes; give one weight per class, or auto.")
    return np.asarray(option, dtype=np.float64)


def sample_weights(table: np.ndarray) -> np.ndarray:
    """Per image, the chance weight of the balanced sampler: ``1 / images of its rarest class``, so that every
    class (counted by the images showing it) is drawn about equally often; images showing no class count as a
    class of their own."""
    present = table > 0
    images_per_class = present.sum(axis=0)
    background = ~present.any(axis=1)
    per_class = np.where(present, 1.0 / np.maximum(images_per_class, 1), 0.0).max(axis=1, initial=0.0)
    per_class[background] = 1.0 / max(int(background.sum()), 1)
    return per_class


def strata(table: np.ndarray, by_first: bool) -> np.ndarray:
    """One class per image to stratify folds by: the first label (``by_first``: single and multi-hot labels), else
    the rarest class the image shows (objects, mask pixels); ``classes`` for an image that shows none."""
    present = table > 0
    if by_first:
        first = present.argmax(axis=1)
    else:
        rarity = np.where(present, present.sum(axis=0)[None, :], np.iinfo(np.int64).max)
        first = rarity.argmin(axis=1)
    return np.where(present.any(axis=1), first, table.shape[1])


def _by_name(names: Sequence[str], values: np.ndarray, spec: str) -> str:
    return "{" + ", ".join(f"{n}: {int(v) if spec == 'd' else format(float(v), spec)}" for n, v in zip(names, values)) + "}"


def balanced_sampler_weights(dataset: Any, class_names: Sequence[str]) -> np.ndarray:
    """The balanced sampler's per-image weights for a training dataset, logged with the classes' image counts."""
    table = training_table(dataset, len(class_names))
    weights = sample_weights(table)
    shown = (table > 0).sum(axis=0)
    drawn = [(weights * (table[:, c] > 0)).sum() / weights.sum() for c in range(len(class_names))]
    log.info("balanced_sampling: training images per class %s; expected share of draws %s.",
             _by_name(class_names, shown, "d"), _by_name(class_names, np.asarray(drawn), ".2f"))  # fmt: skip
    return weights
