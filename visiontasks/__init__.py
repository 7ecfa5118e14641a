"""visiontasks: classic CNN vision tasks as Lightning modules, one CLI and shared data modules.

The names below are imported when first used (PEP 562), so ``import visiontasks`` is instant and a data
module or an error class does not pay for the tasks' models; each submodule still imports what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from visiontasks.export import export  # light; bound here, as the submodule of the same name would take its place
from visiontasks.version import __version__

_EXPORTS = {
    "EMA": "visiontasks.callbacks.averaging",
    "TrainingBudget": "visiontasks.callbacks.budget",
    "Preemption": "visiontasks.callbacks.preemption",
    "ChannelsLast": "visiontasks.callbacks.speed",
    "Compile": "visiontasks.callbacks.speed",
    "StepCheckpoint": "visiontasks.checkpoints",
    "CocoDataModule": "visiontasks.data",
    "CsvDataModule": "visiontasks.data",
    "ImageFolderDataModule": "visiontasks.data",
    "SegmentationFolderDataModule": "visiontasks.data",
    "ShapesDataModule": "visiontasks.data",
    "VisionDataModule": "visiontasks.data",
    "CheckpointError": "visiontasks.errors",
    "DataError": "visiontasks.errors",
    "OptionError": "visiontasks.errors",
    "TrainingStopped": "visiontasks.errors",
    "VisionTasksError": "visiontasks.errors",
    "RunPictures": "visiontasks.pictures",
    "BaseTask": "visiontasks.tasks",
    "ClassicSegmentationTask": "visiontasks.tasks",
    "ClassificationTask": "visiontasks.tasks",
    "DetectionTask": "visiontasks.tasks",
    "InstanceSegmentationTask": "visiontasks.tasks",
    "LocalizationTask": "visiontasks.tasks",
    "SegmentationTask": "visiontasks.tasks",
}
"""Every public name and the module that defines it."""

__all__ = sorted([*_EXPORTS, "__version__", "export"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'visiontasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what type checkers and IDEs see: the names themselves
    from visiontasks.callbacks.averaging import EMA
    from visiontasks.callbacks.budget import TrainingBudget
    from visiontasks.callbacks.preemption import Preemption
    from visiontasks.callbacks.speed import ChannelsLast, Compile
    from visiontasks.checkpoints import StepCheckpoint
    from visiontasks.data import (
        CocoDataModule,
        CsvDataModule,
        ImageFolderDataModule,
        SegmentationFolderDataModule,
        ShapesDataModule,
        VisionDataModule,
    )
    from visiontasks.errors import CheckpointError, DataError, OptionError, TrainingStopped, VisionTasksError
    from visiontasks.pictures import RunPictures
    from visiontasks.tasks import (
        BaseTask,
        ClassicSegmentationTask,
        ClassificationTask,
        DetectionTask,
        InstanceSegmentationTask,
        LocalizationTask,
        SegmentationTask,
    )
