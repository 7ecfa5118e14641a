"""Reading images from disk into the arrays the transform pipeline expects.

Every image is read upright: the EXIF orientation a phone camera writes is applied (PIL's
``ImageOps.exif_transpose``), so a mask drawn on the photo as viewers show it fits. A file over
PIL's pixel limit (a decompression-bomb guard) is a :class:`DataError` naming it.

Memory follows the image, not the decoder: an image over :data:`LARGE_PIXELS` that the network sees
smaller anyway is shrunk while it is read (``fit``), and one drawn at full size is decoded straight
into 3 bytes a pixel (:func:`read_picture`).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from visiontasks.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
_ORIENTATION = 0x0112  # the EXIF tag; 1 = upright
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}  # fmt: skip
"""What makes an image of each EXIF orientation upright (as ``ImageOps.exif_transpose`` does)."""
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F")
"""Modes ``Image.reduce`` averages (not palettes: their indices are not colours)."""

LARGE_PIXELS = 4096 * 4096
"""Above this many pixels an image is read with bounded memory (see the module's note); below it, as always."""

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


def reduction(size: tuple[int, int], fit: tuple[int, int]) -> int:
    """The whole factor an image of ``size`` (width, height) may be shrunk by when it is resized to ``fit`` next:
    its shorter side stays at least twice ``fit``'s longer side, so the resize still interpolates (the
    orientation does not matter); 1 for images up to :data:`LARGE_PIXELS`, which are read as they are."""
    if size[0] * size[1] <= LARGE_PIXELS:
        return 1
    return max(1, min(size) // (2 * max(fit)))


def _shrunk(image: Image.Image, fit: tuple[int, int]) -> Image.Image:
    """``image`` (opened, not decoded) decoded and shrunk by :func:`reduction` in 8 bits, upright: a JPEG by
    its decoder's own scaling (1/2 to 1/8: never decoded at full size), then by averaging whole blocks (a
    large RGB or grey PNG from OpenCV's 3-byte decode, see :func:`_rgb_decode`; others with PIL's)."""
    image_format, orientation, mode = image.format, _orientation(image, image.filename), image.mode
    factor = reduction(image.size, fit)
    if image_format == "JPEG":
        image.draft(None, (image.width // factor, image.height // factor))
    pixels = _rgb_decode(image, image.filename) if image_format == "PNG" else None
    if pixels is not None:
        import cv2

        size = (image.width // factor, image.height // factor)
        image = Image.fromarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))  # whole blocks averaged
        image = image.convert("L") if mode == "L" else image
    else:
        image.load()
        factor = max(1, min(image.size) // (2 * max(fit)))  # what the decoder's scaling left
        if factor > 1 and image.mode in _REDUCIBLE_MODES:
            image = image.reduce(factor)
    if orientation in _UPRIGHT:
        image = image.transpose(_UPRIGHT[orientation])
    image.format = image_format
    return image


@contextmanager
def open_image(path: str | Path, fit: tuple[int, int] | None = None, decode: bool = True) -> Iterator[Image.Image]:
    """Open and fully decode ``path``; any failure becomes a DataError that names the file.

    ``fit``: the (height, width) the caller resizes the image to next; a large image is then read smaller
    (see :func:`reduction`). ``decode=False``: only opened (size, mode, format and EXIF are read)."""
    try:
        with Image.open(path) as image:
            if decode and fit is not None and reduction(image.size, fit) > 1:
                image = _shrunk(image, fit)
            elif decode:
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


def read_image(path: str | Path, channels: int = 3, fit: tuple[int, int] | None = None) -> np.ndarray:
    """An HxWxC array (uint8, or float32 in [0, 1] for 16-bit files) with ``channels`` channels.

    Grayscale, palette, RGBA and 16-bit files are all converted, so a data set can mix them. ``fit``: the
    (height, width) the caller resizes to next; a large image then comes smaller (see :func:`reduction`).
    """
    if channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3 for image files, got {channels}")
    with open_image(path, fit) as image:
        return image_array(image, channels)


def upright_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of ``path`` as it is read (EXIF orientation applied), from its header alone."""
    with open_image(path, decode=False) as image:
        turned = _orientation(image, path) in (5, 6, 7, 8)
        return (image.width, image.height) if turned else (image.height, image.width)


def read_picture(path: str | Path) -> np.ndarray:
    """The image as HxWx3 uint8 to draw on: a new, writable array (drawing may change it in place).

    A large 8-bit RGB or grey PNG or JPEG is decoded by :func:`_rgb_decode` and turned upright as
    :func:`open_image` turns it (a rotated view then); every other image is read by :func:`read_image`."""
    with open_image(path, decode=False) as header:
        picture = _rgb_decode(header, path)
        orientation = _orientation(header, path) if picture is not None else 1
    if picture is not None:
        return _upright(picture, orientation)
    array = read_image(path, 3)
    return array.copy() if array.dtype == np.uint8 else (array * 255).round().astype(np.uint8)  # 16-bit files


def _rgb_decode(header: Image.Image, path: str | Path) -> np.ndarray | None:
    """A large 8-bit RGB or grey PNG or JPEG (``header``: opened, not decoded) decoded by OpenCV straight into one
    HxWx3 RGB array as stored (not turned upright): PIL would hold 4 bytes a pixel and then copy them into
    numpy (2.3x the memory). ``None`` for other images, or an OpenCV that cannot decode into a given array."""
    if header.width * header.height <= LARGE_PIXELS or header.mode not in ("RGB", "L") or header.format not in ("PNG", "JPEG"):
        return None
    import cv2  # here, not at the top: start-up time (OpenCV comes with albumentations)

    shape = (header.height, header.width, 3)
    try:  # into a given array: the binding would copy OpenCV's own
        pixels = cv2.imread(str(path), np.empty(shape, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    except (AttributeError, TypeError, cv2.error):
        return None
    return pixels if pixels is not None and pixels.shape == shape else None


def _orientation(image: Image.Image, path: str | Path) -> int:
    """The EXIF orientation of an opened image, without decoding it where the file allows: a PNG may keep its
    EXIF after the pixels (PIL then decodes it to find out), so its chunks are listed first."""
    if image.format == "PNG" and "exif" not in image.info and b"eXIf" not in _png_chunks(path):
        return 1
    return image.getexif().get(_ORIENTATION, 1)


def _png_chunks(path: str | Path) -> list[bytes]:
    """The chunk types of a PNG file, in order, read by skipping from one chunk header to the next."""
    kinds = []
    with open(path, "rb") as file:
        file.seek(8)  # the signature
        while len(header := file.read(8)) == 8 and kinds[-1:] != [b"IEND"]:
            length, kind = struct.unpack(">I4s", header)
            kinds.append(kind)
            file.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    return kinds


def _upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (HxWxC) as :data:`_UPRIGHT` turns an image of EXIF ``orientation``: a view, never a copy."""
    turned = {2: array[:, ::-1], 3: array[::-1, ::-1], 4: array[::-1], 5: array.transpose(1, 0, 2),
              6: np.rot90(array, -1), 7: array[::-1, ::-1].transpose(1, 0, 2), 8: np.rot90(array)}  # fmt: skip
    return turned.get(orientation, array)


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
        with open_image(path, fit=(128, 128)):  # decoded whole; a large one kept small (only success counts)
            pass
    except DataError as error:
        return f"{path} ({error.__cause__ or error})"
    return None


def readable_images(paths: Sequence[Path], workers: int = 8) -> tuple[list[Path], list[str]]:
    """The files that decode, and ``"<path> (<why not>)"`` for each that does not, for sources that skip bad files."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        failures = list(pool.map(_failure, paths))
    return [p for p, failure in zip(paths, failures) if failure is None], [f for f in failures if f is not None]
