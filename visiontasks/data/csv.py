"""Images listed in a CSV: ``image,label`` (paths relative to the CSV), plus box columns for localization."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from visiontasks.data.base import Source, VisionDataModule
from visiontasks.data.export import BOX_COLUMNS
from visiontasks.data.labelled import LabelledFiles
from visiontasks.errors import DataError


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found.")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    if not rows:
        raise DataError(f"{path}: the CSV has no rows.")
    return columns, rows


def _box(row: dict[str, str], where: str) -> list[float]:
    try:
        return [float(row[c]) for c in BOX_COLUMNS]
    except (TypeError, ValueError):  # an empty or short row gives "" or None
        found = [row.get(c) for c in BOX_COLUMNS]
        raise DataError(f"{where}: box columns {list(BOX_COLUMNS)} need pixel numbers, found {found}.") from None


class CsvDataModule(VisionDataModule):
    """Images and labels from CSV files; with ``x_min,y_min,x_max,y_max`` columns it is a localization set.

    Labels are class names or integer indices. Without ``class_names`` the classes are the sorted
    names found in the CSVs (or ``0..max`` for integer labels).

    Args:
        csv_path: the training CSV (or the only one: it is then split by the seed).
        val_csv: optional validation CSV.
        test_csv: optional test CSV.
        class_names: the classes in label order; labels outside it are an error.
        image_column: column holding the image path, relative to the CSV's folder.
        label_column: column holding the label.
        **kwargs: the shared options of :class:`VisionDataModule`.
    """

    def __init__(
        self,
        csv_path: str,
        val_csv: str | None = None,
        test_csv: str | None = None,
        class_names: list[str] | None = None,
        image_column: str = "image",
        label_column: str = "label",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_column, self.label_column = image_column, label_column
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
        self.task = "localization" if has_boxes[0] else "classification"
        found = [row[label_column].strip() for _, _, rows in self.tables.values() for row in rows]
        if class_names:
            self.class_names = list(class_names)
        elif all(label.lstrip("-").isdigit() for label in found):
            self.class_names = [str(i) for i in range(max(int(label) for label in found) + 1)]
        else:
            self.class_names = sorted(set(found))

    def _label_index(self, value: str, where: str) -> int:
        value = value.strip()
        if value in self.class_names:
            return self.class_names.index(value)
        if value.lstrip("-").isdigit():
            index = int(value)
            if 0 <= index < self.num_classes:
                return index
            raise DataError(f"{where}: label {index} is out of range for {self.num_classes} classes {self.class_names}.")
        raise DataError(f"{where}: unknown label {value!r}; known classes are {self.class_names}.")

    def make_sources(self) -> dict[str, Source]:
        sources = {}
        for split, (path, _, rows) in self.tables.items():
            folder = path.parent
            where = [f"{path} row {n + 2}" for n in range(len(rows))]
            paths = [folder / row[self.image_column].strip() for row in rows]
            for origin, image_path in zip(where, paths):
                if not image_path.is_file():
                    raise DataError(f"{origin}: image file {image_path} not found.")
            labels = [self._label_index(row[self.label_column], origin) for row, origin in zip(rows, where)]
            boxes = None
            if self.task == "localization":
                boxes = np.array([_box(row, origin) for row, origin in zip(rows, where)], dtype=np.float32)
            sources[split] = LabelledFiles(paths, labels, self.in_channels, boxes).check(where)
        return sources
