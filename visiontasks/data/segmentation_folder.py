"""Images and their class masks in two folders, matched by file name (``images/a.jpg`` <-> ``masks/a.png``).

Split folders may come kind-first (``images/train``, ``masks/train``) or split-first
(``train/images``, ``train/masks``, as many public sets ship); both are found without options.

Masks are index PNGs (each pixel's value is its class number, grey-scale or palette, as Pascal
VOC ships them, 255 = unlabelled) or colour PNGs read through a colour-to-class map. Every pair
is read once at set-up, so a missing, broken or mislabelled mask fails before training starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.images import check_images, list_images, open_image, read_image
from visiontasks.data.options import check_class_names
from visiontasks.errors import DataError

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
IGNORE = 255
INDEX_MODES = ("L", "P", "1", "I", "I;16", "I;16B", "I;16L")
LOSSLESS_FORMATS = ("PNG", "BMP", "TIFF", "GIF", "PPM")  # a JPEG mask changes class numbers at every edge


class MaskReader:
    """Turns a mask file into an HxW uint8 array of class numbers (255 = ignore), or says what is wrong."""

    def __init__(
        self, class_names: Sequence[str], class_colors: Sequence[Sequence[int]] | None, ignore_colors: Sequence[Sequence[int]]
    ) -> None:
        self.class_names = list(class_names)
        self.colors = None
        if class_colors is not None:
            if len(class_colors) != len(class_names):
                raise DataError(f"class_colors has {len(class_colors)} colours for {len(class_names)} class_names.")
            codes = [_code(c) for c in class_colors] + [_code(c) for c in ignore_colors]
            self.colors = dict(zip(codes, [*range(len(class_colors)), *[IGNORE] * len(ignore_colors)]))

    def __call__(self, path: Path) -> np.ndarray:
        with open_image(path) as image:
            if image.format not in LOSSLESS_FORMATS:
                raise DataError(
                    f"{path}: mask saved as {image.format}; masks must be lossless ({', '.join(LOSSLESS_FORMATS)}): JPEG and "
                    "WebP change class numbers along every edge. Save masks as PNG from the labelling tool."
                )
            if image.mode == "F":
                raise DataError(
                    f"{path}: mask holds floating-point values (mode F); save integer class numbers (8-bit PNG)."
                )
            if self.colors is not None:
                return self._by_colour(path, np.asarray(image.convert("RGB")))
            if image.mode == "LA":
                image = image.convert("L")
            array = np.asarray(image)
            if image.mode not in INDEX_MODES:
                array = self._grey_from_colour(path, image.mode, array)
        values = np.unique(array)
        unknown = values[(values < 0) | ((values >= len(self.class_names)) & (values != IGNORE))]
        if len(unknown):
            raise DataError(
                f"{path}: mask values {unknown[:10].tolist()} are not class numbers 0..{len(self.class_names) - 1} "
                f"of class_names {self.class_names} (255 = ignore). Add the missing class names in order, or fix the mask; "
                "for colour masks give data.init_args.class_colors."
            )
        return array.astype(np.uint8)

    def _grey_from_colour(self, path: Path, mode: str, array: np.ndarray) -> np.ndarray:
        """Index masks saved as RGB(A) with equal channels are fine; real colour needs ``class_colors``."""
        rgb = array[..., :3]
        if (rgb == rgb[..., :1]).all():
            return rgb[..., 0]
        raise DataError(
            f"{path}: mask is a colour ({mode}) image. Either save index masks (one channel whose value is the "
            "class number) or give data.init_args.class_colors: the RGB colour of each class, in class_names order."
        )

    def _by_colour(self, path: Path, rgb: np.ndarray) -> np.ndarray:
        codes, inverse = np.unique(_code(rgb.reshape(-1, 3).T), return_inverse=True)
        unknown = [c for c in codes.tolist() if c not in self.colors]
        if unknown:
            shown = [tuple((c >> s) & 255 for s in (16, 8, 0)) for c in unknown[:10]]
            raise DataError(
                f"{path}: mask colours {shown} belong to no class of class_colors (nor ignore_colors). "
                "Add them to class_colors (with a class name) or to ignore_colors, or fix the mask."
            )
        classes = np.asarray([self.colors[c] for c in codes.tolist()], dtype=np.uint8)
        return classes[inverse].reshape(rgb.shape[:2])


def _code(rgb: Any) -> Any:
    """One integer per RGB colour (works on a triple or on 3 x N arrays)."""
    red, green, blue = (np.asarray(channel, dtype=np.int64) for channel in rgb)
    return (red << 16) | (green << 8) | blue


class MaskedImages(Sequence):
    """Samples ``{image, mask, path, image_id}`` read from disk on demand."""

    def __init__(self, pairs: list[tuple[Path, Path]], channels: int, reader: MaskReader) -> None:
        self.pairs, self.channels, self.reader = pairs, channels, reader

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def paths(self) -> list[Path]:
        return [image for image, _ in self.pairs]

    def __getitem__(self, i: int) -> dict[str, Any]:
        image_path, mask_path = self.pairs[i]
        image = read_image(image_path, self.channels)
        return {"image": image, "mask": self.reader(mask_path), "path": str(image_path), "image_id": i}

    def check(self, workers: int = 8) -> MaskedImages:
        """Decode every image and mask; each mask must have its image's size and only known values."""
        sizes = check_images([image for image, _ in self.pairs], workers)
        unlabelled: list[str] = []
        found: set[int] = set()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            masks = pool.map(self.reader, [mask for _, mask in self.pairs])
            for (image_path, mask_path), size, mask in zip(self.pairs, sizes, masks):
                if mask.shape != size:
                    raise DataError(
                        f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
                        f"{size[1]}x{size[0]}. A mask must have its image's size."
                    )
                if (mask == IGNORE).all():
                    unlabelled.append(str(mask_path))
                found.update(np.unique(mask).tolist())
        if len(unlabelled) == len(self.pairs):
            raise DataError(
                f"{unlabelled[0]}: every mask is all {IGNORE} (ignore), so there is nothing to learn; "
                "class numbers start at 0: check the masks' values, or class_colors for colour masks."
            )
        if not found - {0, IGNORE}:  # only background: a binary mask saved as 0/255 marks its objects as ignored
            names = self.reader.class_names
            hint = (f"{IGNORE} means ignore, so objects saved as {IGNORE} (a 0/255 binary mask) are not learnt: save them as 1"
                    if IGNORE in found else "check the masks' values")  # fmt: skip
            raise DataError(
                f"{self.pairs[0][1].parent}: no mask holds a class other than 0 ({names[0]!r}), so {names[1:]} cannot be "
                f"learnt; {hint} (class numbers are 0..{len(names) - 1}, or give class_colors for colour masks)."
            )
        if unlabelled:
            shown = ", ".join(unlabelled[:5]) + (", ..." if len(unlabelled) > 5 else "")
            log.warning("%d masks are all ignore (255) and teach nothing: %s", len(unlabelled), shown)
        return self


def pair_by_stem(
    images_folder: Path, masks_folder: Path, mask_suffix: str, skip_unmatched: bool
) -> list[tuple[Path, Path]]:
    """(image, mask) pairs whose names match: ``a.jpg`` <-> ``a<mask_suffix>.png``."""
    images, masks = _by_stem(images_folder, ""), _by_stem(masks_folder, mask_suffix)
    for stem, mask in masks.items():
        if stem not in images:
            raise DataError(f"{mask}: mask without an image (looked for {images_folder}/{stem}.*). Add the image or remove the mask.")
    pairs = []
    for stem, image in images.items():
        if stem in masks:
            pairs.append((image, masks[stem]))
        elif not skip_unmatched:
            raise DataError(
                f"{image}: image without a mask (looked for {masks_folder}/{stem}{mask_suffix}.png). Add the mask, "
                "remove the image, or set data.init_args.unmatched_images: skip."
            )
    return pairs


def find_splits(root: Path, images_dir: str, masks_dir: str) -> dict[str, tuple[Path, Path]]:
    """(images, masks) folder of each split: split-first ``train/images``, kind-first ``images/train``, or unsplit."""
    split_first = [s for s in SPLIT_NAMES if (root / s / images_dir).is_dir()]
    kind_first = [s for s in SPLIT_NAMES if (root / images_dir / s).is_dir()]
    if split_first and (root / images_dir).is_dir():
        raise DataError(
            f"{root}: holds both {images_dir}/ and {split_first[0]}/{images_dir}/; keep one layout "
            f"({images_dir}/train + {masks_dir}/train, or train/{images_dir} + train/{masks_dir})."
        )
    found = split_first or kind_first
    if found and "train" not in found:
        raise DataError(f"{root}: has {found} split folders but no train/ one; add train/ (val and test are optional).")
    if split_first:
        log.info("%s: split-first layout found: %s with %s/ and %s/ each.", root, split_first, images_dir, masks_dir)
        return {s: (root / s / images_dir, root / s / masks_dir) for s in split_first}
    if kind_first:
        log.info("%s: kind-first layout found: %s/ and %s/, each split into %s.", root, images_dir, masks_dir, kind_first)
        return {s: (root / images_dir / s, root / masks_dir / s) for s in kind_first}
    if (root / images_dir).is_dir():
        log.info("%s: unsplit layout found: %s/ and %s/; splits are carved by the seed.", root, images_dir, masks_dir)
        return {"all": (root / images_dir, root / masks_dir)}
    raise DataError(
        f"{root}: no {images_dir}/ folder nor train/{images_dir}/; expected {images_dir}/ + {masks_dir}/ (optionally "
        f"split into train/, val/, test/), or train/{images_dir}/ + train/{masks_dir}/. Set images_dir/masks_dir for other names."
    )


def _by_stem(folder: Path, suffix: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found.")
    found: dict[str, Path] = {}
    for path in list_images(folder):
        stem = path.stem.removesuffix(suffix) if suffix else path.stem
        if stem in found:
            raise DataError(f"{path} and {found[stem]} have the same name; names must be unique to pair images with masks.")
        found[stem] = path
    return found


class SegmentationFolderDataModule(VisionDataModule):
    """Images with class masks: ``root/images/`` and ``root/masks/``, each optionally split into
    ``train/``, ``val/`` and ``test/`` folders, or ``root/train/images/``, ``root/train/masks/``, ...
    (missing splits are carved out of the training pool).

    Args:
        root: the data folder.
        class_names: the classes in the order of their mask values (class 0 first, usually ``background``).
        class_colors: for colour masks: the RGB colour of each class, in ``class_names`` order.
            Without it, masks are index PNGs whose pixel values are class numbers.
        ignore_colors: colours of unlabelled pixels in colour masks (Pascal VOC's border colour by default).
        images_dir: name of the image folder inside ``root`` (or inside each split folder).
        masks_dir: name of the mask folder inside ``root`` (or inside each split folder).
        mask_suffix: text after the image's name in its mask's name (``_mask`` for ``a_mask.png``).
        unmatched_images: ``error`` (default) or ``skip`` images that have no mask (VOC ships
            masks for only part of its images).
        **kwargs: the shared options of :class:`VisionDataModule` (image_size, transforms, ...).
    """

    task = "segmentation"

    def __init__(
        self,
        root: str,
        class_names: list[str],
        class_colors: list[list[int]] | None = None,
        ignore_colors: list[list[int]] = [[224, 224, 192]],  # noqa: B006 (jsonargparse reads the default)
        images_dir: str = "images",
        masks_dir: str = "masks",
        mask_suffix: str = "",
        unmatched_images: Literal["error", "skip"] = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data folder not found.")
        if len(class_names) < 2:
            raise DataError(f"class_names {class_names}: give at least two, e.g. [background, object].")
        check_class_names(class_names)
        self.class_names = list(class_names)
        self.reader = MaskReader(class_names, class_colors, ignore_colors)
        self.mask_suffix, self.skip_unmatched = mask_suffix, unmatched_images == "skip"
        self.splits = find_splits(self.root, images_dir, masks_dir)

    def make_sources(self) -> dict[str, Source]:
        sources = {}
        for split, (images, masks) in self.splits.items():
            pairs = pair_by_stem(images, masks, self.mask_suffix, self.skip_unmatched)
            if not pairs:
                raise DataError(f"{images}: no images with masks found.")
            sources[split] = MaskedImages(pairs, self.in_channels, self.reader).check()
        return sources
