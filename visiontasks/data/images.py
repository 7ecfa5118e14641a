"""Reading images from disk into the arrays the transform pipeline expects.

Every image is read upright: the EXIF orientation a phone camera writes is applied (PIL's
``ImageOps.exif_transpose``), so a mask drawn on the photo as viewers show it fits. A file over
PIL's pixel limit (a decompression-bomb guard) is a :class:`DataError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import logging

import numpy as np
from PIL import Image, ImageOps

from visiontasks.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
_ORIENTATION = 0x0112  # the EXIF tag; 1 = upright

log = logging.getLogger(__name__)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted so runs are reproducible.

    What is left out and may be meant as data is logged by name: dangling links and sub-folders
    holding images (only the folder's own files are read)."""
    images, dangling, nested = [], [], []
    for path in sorted(folder.iterdir()):
        if path.is_file() and is_image_file(path):
            images.append(path)
        elif path.is_symlink() and not path.exists() and is_image_file(path):
            dangling.append(f"{path} (a link to the missing {path.readlink()})")
        elif path.is_dir() and not path.name.startswith(".") and any(is_image_file(p) for p in path.iterdir()):
            nested.append(f"{path}/ (a sub-folder with images; only {folder}'s own files are read)")
    if dangling or nested:
        log.warning("%s: left out %s", folder, "; ".join(dangling + nested))
    return images


def image_array(image: Image.Image, channels: int) -> np.ndarray:
    """A PIL image as HxWxC (uint8, or float32 in [0, 1] for 16-bit images) with ``channels`` channels."""
    if image.mode in _HIGH_DEPTH_MODES:
        array = np.asarray(image, dtype=np.float32)
        scale = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = (array / scale)[..., None]
        return np.repeat(array, channels, axis=2) if channels == 3 else array
    mode = "L" if channels == 1 else "RGB"
    array = np.asarray(image if image.mode == mode else image.convert(mode))  # no full-size copy when the mode fits
    return array[..., None] if channels == 1 else array


@contextmanager
def open_image(path: str | Path) -> Iterator[Image.Image]:
    """Open and fully decode ``path``; any failure becomes a DataError that names the file."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.getexif().get(_ORIENTATION, 1) != 1:
                image_format, image = image.format, ImageOps.exif_transpose(image)  # a copy, upright as viewers show it
                image.format = image_format
            yield image
    except DataError:
        raise  # the caller's own check of the opened image
    except FileNotFoundError as error:
        raise DataError(  # at set-up: a wrong path; mid-epoch: a file deleted or moved while the command ran
            f"{path}: image file not found (was it moved or deleted while the data was in use?). Put it back or fix the "
            "path, and keep the data folder unchanged while a command reads it."
        ) from error
    except Image.DecompressionBombError as error:
        raise DataError(
            f"{path}: the image has more pixels than PIL's limit of {Image.MAX_IMAGE_PIXELS} (a decompression-bomb "
            "guard); downscale the file, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it."
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"{path}: cannot read this image ({error}). It may be corrupt or truncated: "
            "replace it or remove it from the data set."
        ) from error


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """An HxWxC array (uint8, or float32 in [0, 1] for 16-bit files) with ``channels`` channels.

    Grayscale, palette, RGBA and 16-bit files are all converted, so a data set can mix them.
    """
    if channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3 for image files, got {channels}")
    with open_image(path) as image:
        return image_array(image, channels)


def _checked_size(path: Path) -> tuple[int, int]:
    with open_image(path) as image:
        return image.height, image.width


def check_images(paths: Sequence[Path], workers: int = 8) -> list[tuple[int, int]]:
    """Decode every image once at set-up and return (height, width) of each.

    A broken file then fails before training starts, with its path, instead of hours later.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_checked_size, paths))


def _failure(path: Path) -> str | None:
    try:
        _checked_size(path)
    except DataError as error:
        return f"{path} ({error.__cause__ or error})"
    return None


def readable_images(paths: Sequence[Path], workers: int = 8) -> tuple[list[Path], list[str]]:
    """The files that decode, and ``"<path> (<why not>)"`` for each that does not, for sources that skip bad files."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        failures = list(pool.map(_failure, paths))
    return [p for p, failure in zip(paths, failures) if failure is None], [f for f in failures if f is not None]
