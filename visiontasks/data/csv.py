"""Images listed in a CSV: ``image,label`` (paths relative to the CSV), plus box columns for localization.

Files as spreadsheets save them are read as they are: UTF-8 with or without a byte-order mark,
CRLF or LF line ends, and ``,``, ``;`` or tab between columns (found by ``csv.Sniffer``). A label
cell holds one label, or several (multi-label data), see :func:`split_labels`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.formats import BOX_COLUMNS, IMAGE_COLUMN, LABEL_COLUMN
from visiontasks.data.labelled import LabelledFiles
from visiontasks.data.options import check_class_names
from visiontasks.errors import DataError
from visiontasks.kinds import image_label_kind

log = logging.getLogger(__name__)

DELIMITERS = ",;\t"
INTEGER = re.compile(r"-?\d+")


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found.")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drops the byte-order mark spreadsheets write
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error}); save it as 'CSV UTF-8' from the spreadsheet.") from None
    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column only: the missing-column check below names it
        delimiter = ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = columns
    rows = list(reader)
    if not rows:
        raise DataError(f"{path}: the CSV has no rows.")
    return columns, rows


def _box(row: dict[str, str], where: str) -> list[float]:
    try:
        return [float(row[c]) for c in BOX_COLUMNS]
    except (TypeError, ValueError):  # an empty or short row gives "" or None
        found = [row.get(c) for c in BOX_COLUMNS]
        raise DataError(f"{where}: box columns {list(BOX_COLUMNS)} need pixel numbers, found {found}.") from None


def split_labels(cells: Sequence[str], class_names: Sequence[str] | None = None) -> list[list[str]]:
    """The labels of each cell: ``cat``, ``cat;dog`` or, as the Human Protein Atlas writes them, ``16 0``.

    ``;`` always separates labels. Spaces separate them only when every word is a label by itself
    (an integer, a name in ``class_names``, or a name found alone in another cell), so a class
    named ``golden retriever`` stays one label.
    """
    cells = [(cell or "").strip() for cell in cells]
    known = set(class_names) if class_names else {c for c in cells if c and not re.search(r"[;\s]", c)}
    labels = []
    for cell in cells:
        if ";" in cell:
            labels.append([part.strip() for part in cell.split(";") if part.strip()])
        elif cell in known or len(cell.split()) < 2:
            labels.append([cell] if cell else [])
        else:
            words = cell.split()
            several = all(INTEGER.fullmatch(w) for w in words) or all(w in known for w in words)
            labels.append(words if several else [cell])
    return labels


def _integer_classes(found: set[str], path: Path) -> list[str]:
    """Classes ``0..max`` for integer labels; a gap is an error, since it would be a class without images."""
    numbers = sorted(int(label) for label in found)
    missing = sorted(set(range(numbers[-1] + 1)) - set(numbers))
    if missing:
        raise DataError(
            f"{path}: integer labels {numbers} leave out {missing[:10]}: classes are numbered 0..N-1 without gaps. "
            "Fix the labels, or give class_names (one name per index) to declare classes without images."
        )
    return [str(n) for n in range(numbers[-1] + 1)]


def _refuse_near_duplicates(labels: Sequence[str], path: Path) -> None:
    """``Cat`` and ``cat `` would be two classes: a typo in a spreadsheet must not split a class."""
    seen: dict[str, str] = {}
    for label in sorted(set(labels)):
        key = " ".join(label.lower().split())
        if seen.get(key, label) != label:
            raise DataError(
                f"{path}: labels {seen[key]!r} and {label!r} differ only by case or spaces and would be two classes; "
                "write them the same way."
            )
        seen[key] = label


def _refuse_repeated_images(paths: Sequence[Path], where: Sequence[str]) -> None:
    """An image on two rows would be two samples (with two labels, or counted twice): one row per image."""
    first: dict[Path, str] = {}
    for path, origin in zip(paths, where):
        key = path.resolve()
        if key in first:
            raise DataError(
                f"{origin}: image {path} is listed again (first on {first[key]}); "
                "list each image once: several labels go in one cell (cat;dog)."
            )
        first[key] = origin


class CsvDataModule(VisionDataModule):
    """Images and labels from CSV files; with ``x_min,y_min,x_max,y_max`` columns it is a localization set.

    Labels are class names or integer indices; a cell with several labels (``cat;dog`` or ``3 16``)
    makes the set multi-label. Without ``class_names`` the classes are the sorted names found in the
    training CSV (or ``0..max`` for integer labels, without gaps); a val/test label that training
    lacks is an error.

    Args:
        csv_path: the training CSV (or the only one: it is then split by the seed).
        val_csv: optional validation CSV.
        test_csv: optional test CSV.
        class_names: the classes in label order; labels outside it are an error.
        image_column: column holding the image path, relative to the CSV's folder.
        label_column: column holding the label(s).
        group_column: column naming each image's group (a patient, a scan, a video), when the CSV has it:
            cross-validation (``cv``, ``fold``) keeps every group in one fold.
        **kwargs: the shared options of :class:`VisionDataModule`.
    """

    def __init__(
        self,
        csv_path: str,
        val_csv: str | None = None,
        test_csv: str | None = None,
        class_names: list[str] | None = None,
        image_column: str = IMAGE_COLUMN,
        label_column: str = LABEL_COLUMN,
        group_column: str = "group",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_class_names(class_names)
        self.image_column, self.label_column, self.group_column = image_column, label_column, group_column
        files = {"train": csv_path, "val": val_csv, "test": test_csv}
        self.tables = {split: (Path(p), *_read_rows(Path(p))) for split, p in files.items() if p is not None}
        if len(self.tables) == 1:
            self.tables = {"all": self.tables["train"]}
        has_boxes = []
        for path, columns, _ in self.tables.values():
            missing = {image_column, label_column} - set(columns)
            if missing:
                raise DataError(f"{path}: missing column(s) {sorted(missing)}; found {columns}.")
            has_boxes.append(set(BOX_COLUMNS) <= set(columns))
        if any(has_boxes) and not all(has_boxes):
            raise DataError(f"Some CSVs have box columns {BOX_COLUMNS} and some do not: give them to all or none.")
        cells = iter(split_labels([row[label_column] for _, _, rows in self.tables.values() for row in rows], class_names))
        self.labels = {split: [next(cells) for _ in rows] for split, (_, _, rows) in self.tables.items()}
        several = self._first_row_with_several_labels()
        if several and has_boxes[0]:
            raise DataError(f"{several}: several labels in a row with box columns; localization takes one object per image.")
        if several:
            log.info("%s: several labels in one cell, so the data is multi-label.", several)
        self.task = image_label_kind(box=has_boxes[0], multi_hot=bool(several)).name
        self.given_class_names = bool(class_names)
        every = [label for cells in self.labels.values() for labels in cells for label in labels]
        _refuse_near_duplicates([*(class_names or []), *every], next(iter(self.tables.values()))[0])
        self.class_names = list(class_names) if class_names else self._found_classes()
        self._warn_classes_without_training_images()

    def _first_row_with_several_labels(self) -> str | None:
        """Where the first cell with several labels is (``file row n: 'cell'``), if any: it makes the set multi-label."""
        for split, cells in self.labels.items():
            path, _, rows = self.tables[split]
            for n, (labels, row) in enumerate(zip(cells, rows)):
                if len(labels) > 1:
                    return f"{path} row {n + 2}: {row[self.label_column].strip()!r}"
        return None

    def _found_classes(self) -> list[str]:
        """Classes of the training CSV: its integers ``0..max``, or its sorted names."""
        split = "train" if "train" in self.labels else "all"
        found = {label for labels in self.labels[split] for label in labels}
        if not found:
            raise DataError(f"{self.tables[split][0]}: no labels found in column {self.label_column!r}.")
        if all(INTEGER.fullmatch(label) for label in found):
            return _integer_classes(found, self.tables[split][0])
        return sorted(found)

    def _warn_classes_without_training_images(self) -> None:
        split = "train" if "train" in self.labels else "all"
        found = {label for labels in self.labels[split] for label in labels}
        empty = [name for i, name in enumerate(self.class_names) if name not in found and str(i) not in found]
        if empty:
            log.warning(
                "%s: classes %s of class_names have no training images; the task cannot learn them.",
                self.tables[split][0], empty,
            )  # fmt: skip

    def _label_index(self, value: str, where: str) -> int:
        if value in self.class_names:
            return self.class_names.index(value)
        if INTEGER.fullmatch(value):
            index = int(value)
            if 0 <= index < self.num_classes:
                return index
            raise DataError(f"{where}: label {index} is out of range for {self.num_classes} classes {self.class_names}.")
        raise DataError(f"{where}: unknown label {value!r}; known classes are {self.class_names}.")

    def _target(self, labels: list[str], where: str, split: str) -> Any:
        """A class index, or a multi-hot vector for multi-label data; a label training lacks is an error."""
        if split in ("val", "test") and not self.given_class_names:
            unseen = [label for label in labels if label not in self.class_names]
            if unseen:
                raise DataError(
                    f"{where}: label {unseen[0]!r} does not occur in the training CSV {self.tables['train'][0]} "
                    f"(classes {self.class_names}); a class needs training images: add some, or remove the row."
                )
        indices = [self._label_index(label, where) for label in labels]
        if not self.kind.multi_hot:
            if len(indices) != 1:
                raise DataError(f"{where}: empty label cell; every row needs a label in column {self.label_column!r}.")
            return indices[0]
        target = np.zeros(self.num_classes, dtype=np.float32)
        target[indices] = 1.0
        return target

    def make_sources(self) -> dict[str, Source]:
        sources = {}
        for split, (path, _, rows) in self.tables.items():
            where = [f"{path} row {n + 2}" for n in range(len(rows))]
            paths = [self._image_path(path, row, origin) for row, origin in zip(rows, where)]
            targets = [self._target(labels, origin, split) for labels, origin in zip(self.labels[split], where)]
            boxes = None
            if self.kind.box:
                boxes = np.array([_box(row, origin) for row, origin in zip(rows, where)], dtype=np.float32)
            labels = np.stack(targets) if self.kind.multi_hot else targets
            groups = [(row.get(self.group_column) or "").strip() for row in rows] if self.group_column in rows[0] else None
            source = LabelledFiles(paths, labels, self.in_channels, boxes, groups)
            sources[split] = source.check(where, keep=self.keep_decoded)
            _refuse_repeated_images(paths, where)  # after each row's own checks, which name a bad cell more precisely
        return sources

    def _image_path(self, csv_path: Path, row: dict[str, str], where: str) -> Path:
        name = (row[self.image_column] or "").strip()
        if not name:
            raise DataError(f"{where}: empty {self.image_column!r} cell; every row needs an image path.")
        image_path = csv_path.parent / PureWindowsPath(name).as_posix() if "\\" in name else csv_path.parent / name
        if not image_path.is_file():
            raise DataError(f"{where}: image file {image_path} not found.")
        return image_path
