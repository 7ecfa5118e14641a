"""The shared data options checked when they are given (at parse time on the command line), one line each.

A bad value would otherwise surface later as a traceback from NumPy, albumentations or a loader
(``image_size=-5``, ``val_fraction=1.5``), or not at all.
"""

from __future__ import annotations

import math
import os
from typing import Any

from visiontasks.data.workers import usable_cpus
from visiontasks.errors import check_option

PREFIX = "--data.init_args."


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_data_options(
    batch_size: Any, num_workers: Any, image_size: Any, in_channels: Any, val_fraction: Any, test_fraction: Any, min_visibility: Any,
    seed: Any = 0,
) -> None:
    """Each option within its range, else an :class:`~visiontasks.errors.OptionError` naming it and the fix."""
    check_option(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 - 8, PREFIX + "seed", seed,
                 "give a seed in 0..4294967287 (NumPy's range).")  # fmt: skip
    check_option(_positive_int(batch_size), PREFIX + "batch_size", batch_size, "give a positive number of samples per batch.")
    check_option(num_workers == "auto" or (isinstance(num_workers, int) and num_workers >= 0), PREFIX + "num_workers",
                 num_workers, "give 0 (load in the main process), a positive number of worker processes, or auto.")  # fmt: skip
    check_option(num_workers == "auto" or num_workers <= max(32, 4 * usable_cpus()), PREFIX + "num_workers", num_workers,
                 f"more worker processes than this machine can run ({usable_cpus()} CPU cores); give at most "
                 f"{max(32, 4 * usable_cpus())}, or auto.")  # fmt: skip
    if image_size not in ("auto", None):
        sizes = [image_size] if not isinstance(image_size, (list, tuple)) else list(image_size)
        check_option(len(sizes) in (1, 2) and all(_positive_int(s) for s in sizes), PREFIX + "image_size", image_size,
                     "give a positive number of pixels (64) or [height, width], auto (follow the files) or null (keep each size).")  # fmt: skip
        _check_memory(batch_size, sizes[0] * sizes[-1], image_size, in_channels)
    check_option(in_channels in (1, 3) and not isinstance(in_channels, bool), PREFIX + "in_channels", in_channels,
                 "image files are read as 1 (grayscale) or 3 (RGB) channels.")  # fmt: skip
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_option(isinstance(fraction, (int, float)) and 0 <= fraction < 1, PREFIX + name, fraction,
                     "a share of the samples: give a number in [0, 1), e.g. 0.1.")  # fmt: skip
    check_option(val_fraction + test_fraction < 1, PREFIX + "val_fraction", val_fraction,
                 f"with test_fraction={test_fraction} nothing is left to train on; make the two add up to less than 1.")  # fmt: skip
    check_option(isinstance(min_visibility, (int, float)) and math.isfinite(min_visibility) and 0 <= min_visibility <= 1,
                 PREFIX + "min_visibility", min_visibility, "a share of a box's area: give a number in [0, 1].")  # fmt: skip


def _memory_bytes() -> int:
    """The machine's memory (0 where it cannot be told)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _check_memory(batch_size: int, pixels: int, image_size: Any, in_channels: Any) -> None:
    """A batch of ``image_size`` images larger than memory holds is refused before it is allocated: 100000 would make
    every image a 120 GB array, and the kernel end the process (or another one) on the way."""
    batch = batch_size * pixels * (in_channels if in_channels in (1, 3) else 3) * 4  # float32 tensors
    memory = _memory_bytes()
    check_option(not memory or batch <= memory // 2, PREFIX + "image_size", image_size,
                 f"a batch of {batch_size} such images is {batch / 2**30:.0f} GiB of float32, over half of this machine's "
                 f"{memory / 2**30:.0f} GiB; give a smaller image_size or batch_size.")  # fmt: skip


def check_class_names(class_names: Any) -> None:
    """``class_names`` given: each a name (text), none repeated (ignoring case and spaces): a repeat would make two
    outputs for one class, and labels name only the first."""
    if not class_names:
        return
    seen: dict[str, str] = {}
    for name in class_names:
        check_option(isinstance(name, str) and bool(name.strip()), PREFIX + "class_names", class_names, "each class needs a name (text).")
        key = " ".join(name.lower().split())
        check_option(key not in seen, PREFIX + "class_names", class_names,
                     f"{seen.get(key)!r} and {name!r} name one class (compared ignoring case and spaces); give each class once.")  # fmt: skip
        seen[key] = name
