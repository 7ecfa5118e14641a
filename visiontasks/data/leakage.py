"""Training images must not be scored on, or the scores measure memory instead of learning.

The same file in train and in val or test is an error (val and test may share files: a common
choice when a data set has no test split, and nothing is learned from either). Byte-identical copies under different names are only a
warning: public sets contain them (blank frames, re-uploads) and the user may know. Only files
whose byte sizes match across splits are hashed, so the check costs little.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from visiontasks.errors import DataError

log = logging.getLogger(__name__)

SHOWN = 3  # files named in a message


def _named(pairs: list[str]) -> str:
    more = f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else ""
    return ", ".join(pairs[:SHOWN]) + more


def check_leakage(files: dict[str, list[Path]]) -> None:
    """Raise if one file is in two splits; warn about identical copies. ``files`` maps split -> its files."""
    folders: dict[Path, Path] = {}
    resolved = {split: {_resolve(path, folders): path for path in paths} for split, paths in files.items()}
    for first, second in _scored_against_training(resolved):
        shared = sorted(set(resolved[first]) & set(resolved[second]))
        if shared:
            names = _named([str(resolved[first][path]) for path in shared])
            raise DataError(
                f"The {first} and {second} splits share {len(shared)} image file(s) ({names}): a score on images trained "
                "on means nothing. Keep each image in one split (a CSV listing an image twice counts too)."
            )
    _warn_identical(resolved)


def _resolve(path: Path, folders: dict[Path, Path]) -> Path:
    """``path.resolve()``, resolving each folder once (thousands of files share a few folders): one ``lstat`` a file."""
    if path.is_symlink():
        return path.resolve()
    folder = folders.get(path.parent)
    if folder is None:
        folder = folders[path.parent] = path.parent.resolve()
    return folder / path.name


def _scored_against_training(splits: dict) -> list[tuple[str, str]]:
    """The pairs of splits that must not share images: training with each of the others."""
    return [(first, second) for first, second in combinations(splits, 2) if "train" in (first, second)]


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def _warn_identical(resolved: dict[str, dict[Path, Path]]) -> None:
    by_size: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for split, paths in resolved.items():
        for path in paths:
            by_size[path.stat().st_size].append((split, path))
    by_digest: dict[str, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for candidates in by_size.values():
        if len({split for split, _ in candidates}) > 1:
            for split, path in candidates:
                by_digest[_digest(path)][split].append(resolved[split][path])
    for first, second in _scored_against_training(resolved):
        pairs = [f"{copy} = {same[second][0]}" for same in by_digest.values() if second in same for copy in same.get(first, [])]
        if pairs:
            log.warning(
                "The %s and %s splits share %d byte-identical image(s) under other names (%s); "
                "remove the copies, or the scores overstate.",
                first, second, len(pairs), _named(pairs),
            )  # fmt: skip
