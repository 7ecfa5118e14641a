"""What predictions run on, for the ``predict`` command (``predict_dir``) and ``task.predict`` alike: image
files, folders, PIL images, numpy arrays and tensors, one or many.

Each input becomes a sample like the data modules' (``image`` HxWxC with the task's channels, ``path``),
read only when its batch comes, plus ``picture``: the caller's own image (HxWx3 uint8) to draw on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from visiontasks.data.dataset import SampleDataset
from visiontasks.data.images import image_array, is_image_file, list_images, read_image, readable_images, upright_size
from visiontasks.data.transforms import as_size, build_pipeline, pipeline_from_dict
from visiontasks.errors import DataError
from visiontasks.kinds import IMAGES_ONLY

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, Image.Image, np.ndarray, torch.Tensor]
"""A file or folder path, a PIL image, an HxWxC / HxW array (uint8, or float in [0, 1]) or a CxHxW tensor."""


def _expand(inputs: ImageInput | Sequence[ImageInput]) -> list[Any]:
    """One list of single images: folders become their image files, a BxCxHxW tensor its B images."""
    if isinstance(inputs, (str, Path, Image.Image, np.ndarray)) or (isinstance(inputs, torch.Tensor) and inputs.ndim < 4):
        inputs = [inputs]
    items: list[Any] = []
    for item in inputs:
        if isinstance(item, (str, Path)):
            path = Path(item)
            if path.is_dir():
                found = list_images(path)
                if not found:
                    raise DataError(f"{path}: no images found (looked for .png, .jpg, .tif, ...).")
                items.extend(found)
            elif not path.is_file():
                raise DataError(f"{path}: image file not found. Check the path.")
            elif not is_image_file(path):
                raise DataError(f"{path}: not an image file (.png, .jpg, .tif, ...).")
            else:
                items.append(path)
        elif isinstance(item, torch.Tensor) and item.ndim == 4:
            items.extend(item)
        elif isinstance(item, (Image.Image, np.ndarray, torch.Tensor)):
            items.append(item)
        else:
            raise DataError(f"cannot predict on a {type(item).__name__}: give file or folder paths, PIL images, numpy arrays or tensors.")
    return items


def _as_array(item: np.ndarray | torch.Tensor) -> np.ndarray:
    """An HxWxC array (uint8 or float32 in [0, 1]) from an HxW / HxWxC array or a CxHxW / HxW tensor."""
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu()
        item = (item[None] if item.ndim == 2 else item).permute(1, 2, 0).numpy()
    array = np.asarray(item)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise DataError(f"cannot predict on an array of shape {array.shape}: give HxW, HxWx1, HxWx3 or HxWx4 (tensors CxHxW).")
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
        if array.min() < 0 or array.max() > 1:
            raise DataError(f"a float image must hold values in [0, 1], this one ranges over [{array.min():.3g}, {array.max():.3g}].")
    return array


def _channels(array: np.ndarray, channels: int) -> np.ndarray:
    """``array`` (HxWx1/3/4) with ``channels`` channels, as the files are converted: alpha dropped, grey repeated,
    colour to grey by the ITU-R 601 weights (what PIL's ``convert("L")`` uses)."""
    array = array[..., :3] if array.shape[2] == 4 else array
    if array.shape[2] == channels:
        return array
    if channels == 3:
        return np.repeat(array, 3, axis=2)
    grey = array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return (grey.round().clip(0, 255).astype(np.uint8) if array.dtype == np.uint8 else grey)[..., None]


def _picture(array: np.ndarray) -> np.ndarray:
    """The image to draw on: HxWx3 uint8."""
    rgb = _channels(array, 3)
    return rgb if rgb.dtype == np.uint8 else (rgb * 255).round().astype(np.uint8)


class InputImages(Sequence):
    """The images to predict on, as samples: of the ``predict`` command (``predict_dir``) and of ``task.predict``.

    Files are read when their sample is asked for. An unreadable file is skipped with one warning that names
    it and why (kept in ``skipped``), so one bad photo does not cost the predictions of all the others; when
    none is left, that is an error.
    """

    def __init__(self, inputs: ImageInput | Sequence[ImageInput], channels: int, fit: tuple[int, int] | None = None) -> None:
        items = _expand(inputs)
        if not items:
            raise DataError("nothing to predict on: the list of inputs is empty.")
        files = [item for item in items if isinstance(item, Path)]
        readable, self.skipped = readable_images(files) if files else ([], [])
        if self.skipped:
            log.warning("Skipped %d unreadable images: %s", len(self.skipped), "; ".join(self.skipped))
            kept = set(readable)
            items = [item for item in items if not isinstance(item, Path) or item in kept]
        if not items:
            where = inputs if isinstance(inputs, (str, Path)) else "the inputs"
            raise DataError(f"{where}: none of the {len(files)} images can be read ({self.skipped[0]}).")
        self.items = items
        self.channels = channels
        self.fit = fit
        """The (height, width) the images are resized to next, with no transform before: a large file is then
        read smaller (:func:`~visiontasks.data.images.reduction`); ``orig_size`` keeps the file's own size."""

    @property
    def paths(self) -> list[Path] | None:
        """The file of every sample when all are files (their sizes are then read from the headers), else ``None``."""
        return self.items if all(isinstance(item, Path) for item in self.items) else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        if isinstance(item, Path):
            sample = {"image": read_image(item, self.channels, self.fit), "path": str(item), "picture": None}
            return sample if self.fit is None else {**sample, "orig_size": upright_size(item)}
        array = image_array(item, self.channels) if isinstance(item, Image.Image) else _as_array(item)
        original = image_array(item, 3) if isinstance(item, Image.Image) else array
        return {"image": _channels(array, self.channels), "path": "", "picture": _picture(original)}


def input_dataset(inputs: ImageInput | Sequence[ImageInput], settings: dict[str, Any]) -> SampleDataset:
    """``inputs`` as a dataset prepared as evaluation prepared images: the eval transforms (albumentations'
    serialised pipeline), then the resize to the training size; ``settings`` as the checkpoint keeps them."""
    import albumentations as A  # here, not at the top: start-up time of every command

    given = settings.get("eval_transforms")
    pipeline = pipeline_from_dict(given) if given else build_pipeline(None, None, IMAGES_ONLY)
    size = as_size(settings.get("image_size"))
    source = InputImages(inputs, settings.get("in_channels") or 3, fit=None if pipeline.transforms else size)
    resize = build_pipeline(None, size, IMAGES_ONLY) if size else None
    return SampleDataset(source, range(len(source)), pipeline, False, IMAGES_ONLY, resize=resize)
