"""Class folders on disk (``root/<class>/*.png`` or ``root/{train,val,test}/<class>/...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.images import list_images
from visiontasks.data.labelled import LabelledFiles
from visiontasks.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


class ImageFolderDataModule(VisionDataModule):
    """Images sorted into one folder per class, the layout most people start with.

    Without ``train/`` inside ``root`` the classes are split into train/val/test by the seed
    (stratified); with ``train/`` (and optionally ``val/``, ``test/``) those folders are used.

    Args:
        root: the data folder.
        **kwargs: the shared options of :class:`VisionDataModule`.
    """

    def __init__(self, root: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data folder not found.")
        self.split_roots = {s: self.root / s for s in SPLIT_NAMES if (self.root / s).is_dir()}
        if self.split_roots and "train" not in self.split_roots:
            raise DataError(f"{self.root}: has {sorted(self.split_roots)} folders but no train/ folder.")
        if not self.split_roots:
            self.split_roots = {"all": self.root}
        train_root = self.split_roots.get("train", self.root)
        self.class_names = _class_folders(train_root)
        if not self.class_names:
            raise DataError(f"{train_root}: no class folders found; expected {train_root}/<class name>/<image>.png")
        for split, folder in self.split_roots.items():
            found = _class_folders(folder)
            if found != self.class_names:
                raise DataError(
                    f"{folder}: class folders {found} differ from {train_root}'s {self.class_names}. "
                    "Every split needs the same class folders (an empty split folder is not allowed either)."
                )

    def make_sources(self) -> dict[str, Source]:
        sources = {}
        for split, folder in self.split_roots.items():
            paths, labels = [], []
            for label, name in enumerate(self.class_names):
                images = list_images(folder / name)
                if not images:
                    raise DataError(f"{folder / name}: class folder has no images; add some or remove the folder.")
                paths += images
                labels += [label] * len(images)
            sources[split] = LabelledFiles(paths, labels, self.in_channels).check(keep=self.keep_decoded)
        return sources
