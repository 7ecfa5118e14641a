"""k-fold cross-validation splits: stratified by class, grouped when the data names groups, seeded.

The pool is the training data left after the test split (which the folds never touch). Fold ``k`` of ``n``
validates on the ``k``-th part of scikit-learn's ``StratifiedKFold`` (``StratifiedGroupKFold`` when the source
has ``groups``: a patient, a scan, a video stays in one fold) and trains on the rest, so the ``n`` validation
sets partition the pool and the same seed gives the same folds.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from visiontasks.data.balance import label_table, strata
from visiontasks.errors import DataError
from visiontasks.kinds import Kind


def fold_split(
    source: Sequence[dict[str, Any]], pool: np.ndarray, fold: Sequence[int], seed: int, kind: Kind,
    class_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(train, val)`` indices of fold ``fold = (k, n)`` (``k`` counted from 1) of ``pool`` (indices into ``source``)."""
    k, n = check_fold(fold)
    table = label_table(source, pool, kind, len(class_names))
    classes = strata(table, by_first=not kind.per_object and not kind.mask)
    names = [*class_names, "(no class)"]
    for value, count in sorted(Counter(classes.tolist()).items()):
        if count < n:
            raise DataError(
                f"fold: class {names[value]!r} has {count} images in the training data, fewer than the {n} folds: "
                f"use --folds {max(2, count)} or fewer, or add images of {names[value]!r}."
            )
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold  # here: start-up time of every command

    groups = getattr(source, "groups", None)
    if groups is None:
        splitter: Any = StratifiedKFold(n_splits=n, shuffle=True, random_state=seed)
        parts = splitter.split(pool, classes)
    else:
        pool_groups = np.asarray([groups[i] for i in pool])
        check_groups(pool_groups, n)
        splitter = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # its "least populated class" warning: checked above, per image
            warnings.simplefilter("ignore", UserWarning)
            parts = splitter.split(pool, classes, pool_groups)
    train, val = list(parts)[k - 1]
    return np.sort(pool[train]), np.sort(pool[val])


def check_fold(fold: Sequence[int]) -> tuple[int, int]:
    """``(k, n)`` with ``2 <= n`` and ``1 <= k <= n``, else one line saying so."""
    if len(fold) != 2:
        raise DataError(f"fold: {list(fold)} is not [k, n]: validate on fold k of n (e.g. fold: [1, 5]).")
    k, n = (int(v) for v in fold)
    if n < 2 or not 1 <= k <= n:
        raise DataError(f"fold: [{k}, {n}] needs at least 2 folds and 1 <= k <= n (e.g. fold: [1, 5]).")
    return k, n


def check_groups(groups: np.ndarray, n: int) -> None:
    """Every group must fit in one validation fold (a ``n``-th of the images), and there must be ``n`` groups."""
    names, sizes = np.unique(groups, return_counts=True)
    if len(names) < n:
        raise DataError(f"fold: the group column names {len(names)} groups for {n} folds; use --folds {len(names)} or fewer.")
    largest, fold_size = int(sizes.argmax()), len(groups) / n
    if sizes[largest] > fold_size:
        raise DataError(
            f"fold: group {str(names[largest])!r} has {sizes[largest]} of the {len(groups)} training images, more than a "
            f"validation fold of ~{fold_size:.0f} holds with {n} folds: use fewer folds, or split that group."
        )
