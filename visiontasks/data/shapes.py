"""Built-in synthetic data: every config runs offline, in minutes, with no download."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from visiontasks.data.datamodule import Source, VisionDataModule
from visiontasks.data.shapes_render import SHAPES, render_shapes
from visiontasks.errors import check_option
from visiontasks.kinds import KINDS, Kind

ShapesTask = Literal[tuple(KINDS)]  # type: ignore[valid-type]  # every kind: the shapes carry all targets


class ShapeSource(Sequence):
    """``count`` seeded images rendered on demand; sample ``i`` is the same in every process."""

    def __init__(
        self,
        kind: Kind,
        shapes: Sequence[str],
        count: int,
        size: tuple[int, int],
        channels: int,
        max_objects: int,
        seed: int,
    ) -> None:
        self.kind, self.shapes, self.size, self.channels, self.seed = kind, list(shapes), size, channels, seed
        rng = np.random.default_rng([seed, count])
        if kind.single_object:
            self.objects = [[int(c)] for c in rng.permutation(np.arange(count) % len(shapes))]
            self.labels: list[int] | None = [o[0] for o in self.objects]
        else:
            counts = rng.integers(1, max_objects + 1, size=count)
            self.objects = [rng.integers(len(shapes), size=n).tolist() for n in counts]
            self.labels = None

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        single = self.kind.single_object
        size_range = (0.18, 0.38) if single else (0.1, 0.22)
        jitter = 0.12 if single and not self.kind.box else None  # no box to find: near-centred, as MNIST digits are
        drawn = render_shapes(self.seed, i, self.size, self.shapes, self.objects[i], self.channels, size_range, jitter)
        sample: dict[str, Any] = {"image": drawn["image"], "path": f"shapes/{self.kind.name}/{i:06d}.png", "image_id": i}
        targets = self.kind.targets(drawn["labels"], drawn["boxes"], drawn["masks"], drawn["mask"], len(self.shapes))
        return sample | targets


class ShapesDataModule(VisionDataModule):
    """Seeded synthetic shapes on textured, noisy backgrounds, with the targets of any task.

    Args:
        task: which targets to produce: one label (``classification``), several (``multilabel``),
            label + box (``localization``), boxes + labels (``detection``), boxes + labels +
            instance masks (``instance_segmentation``) or a class per pixel (``segmentation``,
            class 0 = background).
        shapes: the shape classes, from circle, square, triangle, cross, star.
        num_samples: images in total, split into train/val/test by the fractions.
        image_size: size the images are drawn at.
        max_objects: the most shapes in one image for the multi-object tasks.
        **kwargs: the shared options of :class:`VisionDataModule` (batch size, transforms, splits...).
    """

    def __init__(
        self,
        task: ShapesTask = "classification",
        shapes: list[str] = ["circle", "square", "triangle"],  # noqa: B006 (jsonargparse reads the default)
        num_samples: int = 1000,
        image_size: int | list[int] = 64,
        max_objects: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        unknown = sorted(set(shapes) - set(SHAPES))
        check_option(not unknown and bool(shapes), "--data.init_args.shapes", shapes, f"choose from {list(SHAPES)}.")
        self.task = task
        self.shapes = list(shapes)
        check_option(isinstance(num_samples, int) and num_samples >= 0, "--data.init_args.num_samples", num_samples,
                     "give a number of images (1 or more).")  # fmt: skip
        self.num_samples = num_samples
        self.max_objects = max_objects
        self.class_names = (["background"] if self.kind.mask else []) + self.shapes  # pixels of no shape are class 0

    def make_sources(self) -> dict[str, Source]:
        source = ShapeSource(
            self.kind, self.shapes, self.num_samples, self.image_size, self.in_channels, self.max_objects, self.seed
        )
        return {"all": source}

    def resize(self, kind: Kind) -> Any:
        """No resize for the shapes, drawn at ``image_size``; a predict folder's photos are resized to it."""
        return None if kind is self.kind else super().resize(kind)

    def export(self, root: str | Path) -> Path:
        """Write the splits to ``root`` in the real on-disk format of this task (see the README)."""
        from visiontasks.data.export import export_splits

        return export_splits(self, Path(root))
