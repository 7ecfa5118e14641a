"""Reading one COCO JSON file into checked per-image records; pycocotools indexes it and decodes masks.

Everything a file can get wrong is found here, at set-up, with the file named, before
pycocotools sees it (a NaN polygon coordinate makes pycocotools allocate tens of GB): a JSON
that is not COCO, ids that are not integers or not unique, annotations pointing to unknown
images or categories, NaN or negative box sizes, polygons that are not finite point lists or
lie far outside their image, boxes that disagree with their polygons, RLEs of another size,
missing image files. Boxes that stick out of the image are clipped and empty ones dropped,
with a count in the log, since labelling tools produce them routinely.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

import numpy as np

from visiontasks.data.formats import xywh_to_xyxy
from visiontasks.data.images import check_images
from visiontasks.errors import DataError

if TYPE_CHECKING:  # pycocotools is imported where a file is read: not every command reads COCO
    from pycocotools.coco import COCO

log = logging.getLogger(__name__)

REQUIRED_KEYS = {
    "images": ("id", "file_name"),
    "annotations": ("image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


@dataclass
class CocoImage:
    """One image of a COCO file and its usable annotations (labels are contiguous, 0-based)."""

    path: Path
    image_id: int
    height: int
    width: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # N x 4 xyxy pixels
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    iscrowd: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    segmentations: list[Any] = field(default_factory=list)  # raw COCO polygons / RLE, None where absent

    def keep(self, which: np.ndarray | list[int]) -> None:
        """Keep only the annotations at ``which`` (indices or a boolean mask)."""
        index = np.arange(len(self.labels))[which]
        self.boxes, self.labels, self.iscrowd = self.boxes[index], self.labels[index], self.iscrowd[index]
        self.segmentations = [self.segmentations[i] for i in index]


def read_coco(path: Path) -> COCO:
    """The file as an indexed ``COCO`` object, after checking it has COCO's structure."""
    if not path.is_file():
        raise DataError(f"{path}: COCO annotation file not found.")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark (Windows editors) is dropped
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a valid JSON file ({error}).") from error
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list) for key in REQUIRED_KEYS):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(
            f"{path}: not a COCO JSON file: it needs 'images', 'annotations' and 'categories' lists "
            f"(found {found}). Export COCO format from your labelling tool."
        )
    for key, fields in REQUIRED_KEYS.items():
        for n, entry in enumerate(data[key]):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise DataError(f"{path}: {key}[{n}] lacks {missing}; COCO {key} need {list(fields)}.")
    for n, annotation in enumerate(data["annotations"]):
        annotation.setdefault("id", n + 1)
        annotation.setdefault("iscrowd", 0)
    _check_ids(data, path)
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


ID_FIELDS = {"images": ("id",), "annotations": ("id", "image_id", "category_id"), "categories": ("id",)}


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63  # an int64, as tensors hold ids


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_ids(data: dict[str, list], path: Path) -> None:
    """Ids are JSON integers, unique per list; category names unique; image sizes positive integers.

    pycocotools indexes by id: a repeated image id silently drops an image and moves its boxes onto
    the other, a repeated category merges two classes, and ``"2"`` is not the category ``2``.
    """
    for key, fields in ID_FIELDS.items():
        for n, entry in enumerate(data[key]):
            for name in fields:
                value = entry[name]
                if not _is_integer(value):
                    fix = f"write {value.strip()} without quotes" if isinstance(value, str) and value.strip().isdigit() else "use whole numbers (of 64 bits)"
                    raise DataError(f"{path}: {key}[{n}] has {name} {value!r} ({type(value).__name__}); COCO ids are integers: {fix}.")
        seen: dict[int, int] = {}
        for n, entry in enumerate(data[key]):
            if entry["id"] in seen:
                raise DataError(
                    f"{path}: {key}[{n}] repeats id {entry['id']} of {key}[{seen[entry['id']]}]; ids must be unique: "
                    f"renumber the {key} (and what refers to them)."
                )
            seen[entry["id"]] = n
    names: dict[str, dict] = {}
    for entry in data["categories"]:
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            raise DataError(f"{path}: category {entry['id']} has name {entry['name']!r}; give each category a name (text).")
        key = " ".join(str(entry["name"]).lower().split())
        if key in names:
            first = names[key]
            raise DataError(
                f"{path}: categories {first['id']} ({first['name']!r}) and {entry['id']} ({entry['name']!r}) have one name "
                "(compared ignoring case and spaces); give each category one entry, or distinct names."
            )
        names[key] = entry
    files: dict[str, int] = {}
    for n, entry in enumerate(data["images"]):
        name = entry["file_name"]
        if not isinstance(name, str) or not name.strip() or name.strip() in (".", ".."):
            raise DataError(f"{path}: images[{n}] has file_name {name!r}; give the image file's path, relative to the images folder.")
        entry["file_name"] = PureWindowsPath(name).as_posix() if "\\" in name else name  # Windows tools write img\\a.jpg
        if entry["file_name"] in files:
            raise DataError(
                f"{path}: images[{n}] repeats file_name {entry['file_name']!r} of images[{files[entry['file_name']]}]; list each "
                "image once (its annotations would be split between two entries): merge the entries."
            )
        files[entry["file_name"]] = n
        for name in ("height", "width"):
            if name in entry and entry[name] is not None and not (_is_integer(entry[name]) and entry[name] > 0):
                raise DataError(f"{path}: image {entry['id']} has {name} {entry[name]!r}; it must be a positive integer (or left out).")
    for annotation in data["annotations"]:
        if not (_is_integer(annotation["iscrowd"]) and annotation["iscrowd"] in (0, 1)):
            raise DataError(f"{path}: annotation {annotation['id']} has iscrowd {annotation['iscrowd']!r}; COCO's iscrowd is 0 or 1.")


def categories(coco: COCO) -> list[tuple[int, str]]:
    """(id, name) of every category, sorted by id: label ``i`` is the ``i``-th."""
    return sorted((int(c["id"]), str(c["name"])) for c in coco.dataset["categories"])


def _checked_box(bbox: Any, where: str) -> list[float]:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DataError(f"{where}: bbox {bbox!r} is not [x, y, width, height].")
    if not all(_is_number(v) for v in bbox):  # "5" or true would be read as 5.0 or 1.0: never cast silently
        raise DataError(f"{where}: bbox {bbox!r} holds a non-number; COCO boxes are 4 pixel numbers, without quotes.")
    x, y, w, h = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise DataError(f"{where}: bbox {bbox!r} holds NaN or infinity; fix or remove the annotation.")
    if w < 0 or h < 0:
        raise DataError(f"{where}: bbox {bbox!r} has a negative width or height; COCO boxes are [x, y, width, height].")
    return [x, y, w, h]


def _check_segmentation(segmentation: Any, height: int, width: int, where: str) -> np.ndarray | None:
    """Check polygons or RLE before pycocotools reads them; return the polygons' extent (x0, y0, x1, y1)."""
    if isinstance(segmentation, list):
        points = [_checked_polygon(polygon, height, width, where) for polygon in segmentation]
        every = np.concatenate(points)
        return np.array([*every.min(0), *every.max(0)])
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        _check_rle(segmentation, height, width, where)
        return None
    raise DataError(f"{where}: segmentation is neither polygons nor RLE; instance segmentation needs one of them.")


def _checked_polygon(polygon: Any, height: int, width: int, where: str) -> np.ndarray:
    shown = str(polygon)[:60]
    if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
        raise DataError(f"{where}: polygon {shown} is not a flat [x1, y1, x2, y2, ...] list of 3 or more points.")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon):
        raise DataError(f"{where}: polygon {shown} holds a non-number; coordinates are pixel numbers.")
    points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise DataError(f"{where}: polygon {shown} holds NaN or infinity; fix or remove the annotation.")
    far = (points < -width) | (points > 2 * np.array([width, height]))
    if far.any():  # pycocotools rasterises every pixel on the way: far-off points cost gigabytes
        raise DataError(f"{where}: polygon {shown} lies far outside the {width}x{height} image; coordinates are pixels of this image.")
    return points


def _check_rle(rle: dict[str, Any], height: int, width: int, where: str) -> None:
    size, counts = rle["size"], rle["counts"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_integer(v) for v in size)):
        raise DataError(f"{where}: RLE size {size!r} is not [height, width].")
    if list(size) != [height, width]:
        raise DataError(f"{where}: RLE size {size} differs from the image's [{height}, {width}].")
    if isinstance(counts, list):
        if not all(_is_integer(v) and v >= 0 for v in counts):
            raise DataError(f"{where}: RLE counts hold a negative or non-integer run; counts are run lengths.")
        if sum(counts) != height * width:
            raise DataError(f"{where}: RLE counts add up to {sum(counts)} pixels, the {width}x{height} image has {height * width}.")
    elif not isinstance(counts, str) or not counts.isascii() or not _decodes(rle, height, width):
        raise DataError(f"{where}: RLE counts {str(counts)[:40]!r} are neither a list of run lengths nor a compressed RLE string.")


def _decodes(rle: dict[str, Any], height: int, width: int) -> bool:
    """A compressed RLE string pycocotools can read and that covers the image (it reads a damaged one as garbage)."""
    from pycocotools import mask as mask_utils

    try:
        compressed = {"size": [height, width], "counts": rle["counts"].encode("ascii")}
        return mask_utils.decode(compressed).shape == (height, width) and 0 <= mask_utils.area(compressed) <= height * width
    except (ValueError, TypeError):
        return False


def _check_box_fits_polygon(box: list[float], extent: np.ndarray, where: str) -> None:
    """The bbox is the polygons' extent, as COCO defines it; a few pixels (or 10 %) of slack for rounding."""
    x, y, w, h = box
    slack = np.maximum(2.0, 0.1 * np.array([w, h, w, h]))
    if (np.abs(np.array([x, y, x + w, y + h]) - extent) > slack).any():
        x0, y0, x1, y1 = extent.round(1).tolist()
        raise DataError(
            f"{where}: bbox {[x, y, w, h]} disagrees with its polygon, which spans [{x0}, {y0}, {x1 - x0:.1f}, {y1 - y0:.1f}] "
            "(x, y, width, height); fix the bbox or the polygon (bbox is the polygon's extent)."
        )


def _file_sizes(paths: Sequence[Path], where: Path) -> list[tuple[int, int]]:
    """(height, width) of each file, decoded once now: a missing or broken file fails at set-up, named."""
    missing = next((path for path in paths if not path.is_file()), None)
    if missing is not None:
        raise DataError(f"{missing}: image file not found (listed in {where}). Check the images folder.")
    return check_images(paths)


def coco_images(coco: COCO, path: Path, images_dir: Path, label_of: dict[int, int], masks: bool) -> list[CocoImage]:
    """Checked records of every image in ``coco``, in file order, with contiguous labels.

    Args:
        coco: the file read by :func:`read_coco`.
        path: the file, for messages.
        images_dir: the folder ``file_name`` is relative to.
        label_of: COCO category id -> label; other ids are an error.
        masks: the annotations must carry segmentations (instance segmentation).
    """
    entries = coco.dataset["images"]
    paths = [images_dir / str(entry["file_name"]) for entry in entries]
    sizes = _file_sizes(paths, path)
    records: dict[int, CocoImage] = {}
    for entry, file_path, (height, width) in zip(entries, paths, sizes):
        expected = (int(entry.get("height") or height), int(entry.get("width") or width))
        if expected != (height, width):
            raise DataError(
                f"{file_path}: the file is {width}x{height} but {path} says {expected[1]}x{expected[0]}; "
                "fix width/height in the JSON."
            )
        records[entry["id"]] = CocoImage(file_path, entry["id"], height, width)

    found: dict[int, tuple[list, list, list, list]] = {i: ([], [], [], []) for i in records}
    clipped = dropped = 0
    for annotation in coco.dataset["annotations"]:
        where = f"{path}: annotation {annotation['id']}"
        record = records.get(annotation["image_id"])
        if record is None:
            raise DataError(f"{where} refers to image_id {annotation['image_id']}, which is not among the file's images.")
        if annotation["category_id"] not in label_of:
            raise DataError(
                f"{where} has category_id {annotation['category_id']}, which is not a known category "
                f"(ids {sorted(label_of)})."
            )
        checked = _checked_box(annotation["bbox"], where)
        segmentation = annotation.get("segmentation") or None
        if masks or segmentation is not None:
            extent = _check_segmentation(segmentation, record.height, record.width, where)
            if extent is not None and not annotation["iscrowd"]:
                _check_box_fits_polygon(checked, extent, where)
        given = xywh_to_xyxy(checked)
        box = np.clip(given, 0, [record.width, record.height] * 2)
        if box[2] <= box[0] or box[3] <= box[1]:
            dropped += 1  # empty, or wholly outside the image
            continue
        clipped += not np.allclose(box, given)
        boxes, labels, crowd, segmentations = found[record.image_id]
        boxes.append(box)
        labels.append(label_of[annotation["category_id"]])
        crowd.append(int(bool(annotation["iscrowd"])))
        segmentations.append(segmentation)
    for image_id, (boxes, labels, crowd, segmentations) in found.items():
        record = records[image_id]
        record.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        record.labels = np.asarray(labels, dtype=np.int64)
        record.iscrowd = np.asarray(crowd, dtype=np.int64)
        record.segmentations = segmentations
    if clipped or dropped:
        log.warning("%s: %d boxes clipped to their image, %d empty or outside boxes dropped.", path, clipped, dropped)
    return list(records.values())
