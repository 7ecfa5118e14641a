"""The shared data options checked when they are given (at parse time on the command line), one line each.

A bad value would otherwise surface later as a traceback from NumPy, albumentations or a loader
(``image_size=-5``, ``val_fraction=1.5``), or not at all.
"""

from __future__ import annotations

import math
from typing import Any

from visiontasks.errors import check_option

PREFIX = "--data.init_args."


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_data_options(
    batch_size: Any, num_workers: Any, image_size: Any, in_channels: Any, val_fraction: Any, test_fraction: Any, min_visibility: Any
) -> None:
    """Each option within its range, else an :class:`~visiontasks.errors.OptionError` naming it and the fix."""
    check_option(_positive_int(batch_size), PREFIX + "batch_size", batch_size, "give a positive number of samples per batch.")
    check_option(num_workers == "auto" or (isinstance(num_workers, int) and num_workers >= 0), PREFIX + "num_workers",
                 num_workers, "give 0 (load in the main process), a positive number of worker processes, or auto.")  # fmt: skip
    if image_size not in ("auto", None):
        sizes = [image_size] if not isinstance(image_size, (list, tuple)) else list(image_size)
        check_option(len(sizes) in (1, 2) and all(_positive_int(s) for s in sizes), PREFIX + "image_size", image_size,
                     "give a positive number of pixels (64) or [height, width], auto (follow the files) or null (keep each size).")  # fmt: skip
    check_option(in_channels in (1, 3) and not isinstance(in_channels, bool), PREFIX + "in_channels", in_channels,
                 "image files are read as 1 (grayscale) or 3 (RGB) channels.")  # fmt: skip
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_option(isinstance(fraction, (int, float)) and 0 <= fraction < 1, PREFIX + name, fraction,
                     "a share of the samples: give a number in [0, 1), e.g. 0.1.")  # fmt: skip
    check_option(val_fraction + test_fraction < 1, PREFIX + "val_fraction", val_fraction,
                 f"with test_fraction={test_fraction} nothing is left to train on; make the two add up to less than 1.")  # fmt: skip
    check_option(isinstance(min_visibility, (int, float)) and math.isfinite(min_visibility) and 0 <= min_visibility <= 1,
                 PREFIX + "min_visibility", min_visibility, "a share of a box's area: give a number in [0, 1].")  # fmt: skip
