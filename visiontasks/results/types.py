"""Typed per-image predictions, in the original image's pixels, that draw and save themselves.

``task.predict(...)``, the ``predict`` command's writer and the pictures all use these objects, so a
prediction is formatted, drawn and written in one place whatever front end made it.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from visiontasks.data.formats import BOX_COLUMNS
from visiontasks.data.images import read_picture
from visiontasks.results.draw import draw_caption, draw_objects, enlarge, instance_map, mask_overlay, resized_mask
from visiontasks.results.formats import coco_entries, write_coco, write_csv, write_mask_png


def network_picture(image: Tensor, size: tuple[int, int]) -> np.ndarray:
    """The network's input (CxHxW in [0, 1]) resized back to ``size``, as HxWx3 uint8: the picture of a
    prediction on generated data, which has no file."""
    resized = F.interpolate(image[None].float().cpu(), size=tuple(size), mode="bilinear", align_corners=False)[0]
    pixels = resized.expand(3, -1, -1).mul(255).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).numpy()


@dataclass(kw_only=True)
class Result(abc.ABC):
    """What every prediction carries: where the image came from and its size (height, width).

    Args:
        path: the image file ('' for arrays, tensors and generated data).
        orig_size: (height, width) of the original image; boxes and masks are in its pixels.
        class_names: the task's class names, for captions.
        picture: the original image (HxWx3 uint8) when it has no file; otherwise read from ``path`` when drawn.
        tta: the test-time augmentation views averaged into the prediction (empty: none); rows then say so.
    """

    path: str = ""
    orig_size: tuple[int, int]
    class_names: list[str] = field(default_factory=list, repr=False)
    picture: np.ndarray | None = field(default=None, repr=False)
    tta: tuple[str, ...] = ()

    default_file: ClassVar[str] = "predictions.csv"
    """The file ``save`` writes when given a folder (``{name}`` is the image's file stem)."""
    drawn_by_default: ClassVar[bool] = False
    """The predict writer also saves the drawn image unless told not to (masks are hard to read by eye)."""

    @property
    def name(self) -> str:
        """The image's file stem, ``image`` when it has no file."""
        return Path(self.path).stem or "image"

    def image(self) -> np.ndarray:
        """The original image as HxWx3 uint8: :attr:`picture`, or else a new array read from the file."""
        if self.picture is not None:
            return self.picture
        if not self.path:
            raise ValueError("this result keeps no picture and has no image file to read one from")
        return read_picture(self.path)

    def _drawable(self) -> tuple[np.ndarray, bool]:
        """:meth:`image`, and whether it may be drawn on in place (a new array read from the file, not the caller's
        picture): a 12000 px photo is then drawn without a second full-size copy."""
        picture = self.image()
        return picture, picture is not self.picture

    @abc.abstractmethod
    def plot(self, **options: Any) -> np.ndarray:
        """The original image with the prediction drawn on it (HxWx3 uint8)."""

    @abc.abstractmethod
    def row(self) -> dict[str, Any]:
        """The prediction as one flat row (the predict command's CSV columns)."""

    def tta_column(self) -> dict[str, str]:
        """``{"tta": "hflip+scale_up"}`` for a row when test-time augmentation made the prediction, else nothing."""
        return {"tta": "+".join(self.tta)} if self.tta else {}

    def classes(self) -> list[tuple[str, float]] | None:
        """The classes given to the whole image, with their scores; ``None`` for predictions per object or pixel."""
        return None

    def summary(self) -> str | None:
        """The image's classes as a short caption (``label (score)``); ``None`` for predictions per object or pixel."""
        return None

    def objects(self) -> tuple[np.ndarray, list[int], list[float]] | None:
        """The boxes (Nx4 xyxy, in the image's pixels), class indices and scores of the objects found, if any."""
        return None

    def class_map(self, size: tuple[int, int]) -> tuple[np.ndarray, bool] | None:
        """The prediction as one map of class indices at ``size`` (HxW uint8), and whether its 0 is a background
        added before the classes (``label + 1``, instance masks) rather than class 0; ``None`` without masks."""
        return None

    def entry(self, folder: Path, name: str, index: int) -> dict[str, Any]:
        """What the predict writer keeps of this image: its CSV ``row``, its ``coco`` result entries (``None``
        where the task has none) and the ``files`` written for it now into ``folder`` as ``name`` (masks)."""
        return {"row": self.row(), "coco": None, "files": []}

    def enlarged(self, factor: int) -> Result:
        """This result, its picture and its geometry scaled up by a whole ``factor`` (pixels stay sharp)."""
        size = (self.orig_size[0] * factor, self.orig_size[1] * factor)
        changes = {"orig_size": size, "picture": enlarge(self.image(), factor), "path": "", **self.enlarged_geometry(factor)}
        return dataclasses.replace(self, **changes)

    def enlarged_geometry(self, factor: int) -> dict[str, Any]:
        """The fields holding pixel geometry (boxes, masks), scaled up by ``factor``."""
        return {}

    def target(self, path: str | Path) -> Path:
        """``path`` itself when it names a file, else :attr:`default_file` inside the folder ``path``; a file per
        image never replaces another's: ``image-2.png``, ``image-3.png``... when the name is taken."""
        path = Path(path)
        if path.suffix:
            return path
        target = path / self.default_file.format(name=self.name)
        count = 1
        while "{name}" in self.default_file and target.exists():
            count += 1
            target = path / self.default_file.format(name=f"{self.name}-{count}")
        return target

    def save(self, path: str | Path = ".") -> Path:
        """Write the prediction in the task's format to ``path`` (a file, or a folder for the default name);
        CSV rows and COCO entries are added to what the file already holds. Returns the file written."""
        target = self.target(path)
        write_csv(target, [self.row()], append=True)
        return target


@dataclass(kw_only=True)
class ClassificationResult(Result):
    """One image's classes: ``label`` and ``score`` (lists for a multi-label task), the ``top_k`` ranked
    (class, score) pairs and ``probabilities`` of every class."""

    label: str | list[str]
    score: float | list[float]
    top_k: list[tuple[str, float]] = field(default_factory=list)
    probabilities: np.ndarray | None = field(default=None, repr=False)

    def caption(self) -> str:
        if isinstance(self.label, list):
            return ", ".join(f"{name} {score:.2f}" for name, score in zip(self.label, self.score)) or "(none)"  # type: ignore[arg-type]
        return f"{self.label} {self.score:.2f}"

    def plot(self, **options: Any) -> np.ndarray:
        return draw_caption(self.image(), self.caption())

    def row(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label, "score": self.score,
                "top_k": [f"{name}:{score:.4f}" for name, score in self.top_k], **self.tta_column()}  # fmt: skip

    def classes(self) -> list[tuple[str, float]]:
        labels = self.label if isinstance(self.label, list) else [self.label]
        scores = self.score if isinstance(self.score, list) else [self.score]
        return list(zip(labels, scores))

    def summary(self) -> str:
        return f"{self.label} ({self.score})"


@dataclass(kw_only=True)
class LocalizationResult(Result):
    """One image's object: ``label``, ``score`` and ``box`` (x_min, y_min, x_max, y_max in the image's pixels)."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    def plot(self, **options: Any) -> np.ndarray:
        index = self.class_names.index(self.label) if self.label in self.class_names else 0
        picture, own = self._drawable()
        return draw_objects(picture, np.asarray([self.box]), [index], [f"{self.label} {self.score:.2f}"], in_place=own)

    def row(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label, "score": self.score,
                **{key: round(float(v), 1) for key, v in zip(BOX_COLUMNS, self.box)}}  # fmt: skip

    def classes(self) -> list[tuple[str, float]]:
        return [(self.label, self.score)]

    def summary(self) -> str:
        return f"{self.label} ({self.score})"

    def objects(self) -> tuple[np.ndarray, list[int], list[float]]:
        index = self.class_names.index(self.label) if self.label in self.class_names else 0
        return np.asarray([self.box]), [index], [float(self.score)]

    def enlarged_geometry(self, factor: int) -> dict[str, Any]:
        return {"box": tuple(v * factor for v in self.box)}


@dataclass(kw_only=True)
class DetectionResult(Result):
    """One image's objects: ``boxes`` (Nx4 xyxy pixels), ``labels`` (N, 0-based), ``scores`` (N) and, for
    instance segmentation, ``masks`` (NxHxW 0/1); ``category_ids`` are the data's ids (COCO) of the labels."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    category_ids: list[int]
    masks: np.ndarray | None = field(default=None, repr=False)
    image_id: int | None = None

    default_file: ClassVar[str] = "predictions.json"

    @property
    def names(self) -> list[str]:
        return [self.class_names[int(label)] for label in self.labels]

    def plot(self, threshold: float = 0.5, alpha: float = 0.4, **options: Any) -> np.ndarray:
        """Objects scoring at least ``threshold`` drawn in their class colour, with class and score."""
        keep = np.asarray(self.scores) >= threshold
        captions = [f"{name} {score:.2f}" for name, score, k in zip(self.names, self.scores.tolist(), keep) if k]
        masks = self.masks[keep] if self.masks is not None else None
        picture, own = self._drawable()
        return draw_objects(picture, self.boxes[keep], self.labels[keep], captions, masks, alpha, in_place=own)

    def coco(self, image_id: int | None = None) -> list[dict[str, Any]]:
        """COCO result entries; an image without a COCO id takes ``image_id`` (default 0) and its ``file_name``."""
        own = self.image_id is not None
        entries = coco_entries(self.boxes, self.scores, [self.category_ids[int(i)] for i in self.labels],
                               int(self.image_id if own else image_id or 0), self.masks)  # fmt: skip
        if not own:
            for entry in entries:
                entry["file_name"] = Path(self.path).name
        return entries

    def row(self) -> dict[str, Any]:
        return {"path": self.path, "labels": self.names, "scores": [round(float(s), 4) for s in self.scores],
                "boxes": [[round(float(v), 1) for v in box] for box in self.boxes]}  # fmt: skip

    def save(self, path: str | Path = ".") -> Path:
        target = self.target(path)
        write_coco(target, self.coco(), append=True)
        return target

    def objects(self) -> tuple[np.ndarray, list[int], list[float]]:
        return np.asarray(self.boxes).reshape(-1, 4), [int(k) for k in self.labels], [float(s) for s in self.scores]

    def class_map(self, size: tuple[int, int], min_score: float = 0.5) -> tuple[np.ndarray, bool] | None:
        """The instance masks of objects scoring at least ``min_score`` (as :meth:`plot` draws them)."""
        if self.masks is None:
            return None
        keep = np.asarray(self.scores) >= min_score
        return instance_map(np.asarray(self.masks)[keep], [int(k) for k in np.asarray(self.labels)[keep]], size), True

    def entry(self, folder: Path, name: str, index: int) -> dict[str, Any]:
        entries = self.coco(index)
        for entry in entries:  # every entry names its file, COCO ids or not
            entry.setdefault("file_name", Path(self.path).name)
        return {"row": self.row(), "coco": entries, "files": []}

    def enlarged_geometry(self, factor: int) -> dict[str, Any]:
        changes: dict[str, Any] = {"boxes": np.asarray(self.boxes) * factor}
        if self.masks is not None:
            changes["masks"] = np.stack([enlarge(m, factor) for m in self.masks]) if len(self.masks) else self.masks
        return changes


@dataclass(kw_only=True)
class SegmentationResult(Result):
    """One image's class per pixel: ``mask`` (HxW uint8 class indices at the image's size)."""

    mask: np.ndarray = field(repr=False)

    default_file: ClassVar[str] = "{name}.png"
    drawn_by_default: ClassVar[bool] = True

    def plot(self, alpha: float = 0.5, **options: Any) -> np.ndarray:
        """The image with every non-background class tinted by its colour."""
        picture, own = self._drawable()
        return mask_overlay(picture, self.mask, alpha, in_place=own)

    def row(self) -> dict[str, Any]:
        counts = np.bincount(self.mask.ravel(), minlength=len(self.class_names))
        return {"path": self.path, **{name: int(n) for name, n in zip(self.class_names, counts)}, **self.tta_column()}

    def save(self, path: str | Path = ".") -> Path:
        target = self.target(path)
        write_mask_png(target, self.mask)
        return target

    def class_map(self, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
        return resized_mask(np.asarray(self.mask), size), False

    def entry(self, folder: Path, name: str, index: int) -> dict[str, Any]:
        return {"row": self.row(), "coco": None, "files": [self.save(folder / f"{name}.png")]}

    def enlarged_geometry(self, factor: int) -> dict[str, Any]:
        return {"mask": enlarge(self.mask, factor)}


__all__ = ["ClassificationResult", "DetectionResult", "LocalizationResult", "Result", "SegmentationResult"]
