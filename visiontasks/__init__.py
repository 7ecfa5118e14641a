"""visiontasks: classic CNN vision tasks as Lightning modules, one CLI and shared data modules."""

from visiontasks.version import __version__
from visiontasks.callbacks.averaging import EMA  # noqa: E402
from visiontasks.callbacks.budget import TrainingBudget  # noqa: E402
from visiontasks.callbacks.preemption import Preemption  # noqa: E402
from visiontasks.callbacks.speed import ChannelsLast, Compile  # noqa: E402
from visiontasks.checkpoints import StepCheckpoint  # noqa: E402
from visiontasks.data import (  # noqa: E402
    CocoDataModule,
    CsvDataModule,
    ImageFolderDataModule,
    SegmentationFolderDataModule,
    ShapesDataModule,
    VisionDataModule,
)
from visiontasks.errors import CheckpointError, DataError, OptionError, TrainingStopped, VisionTasksError  # noqa: E402
from visiontasks.export import export  # noqa: E402
from visiontasks.pictures import RunPictures  # noqa: E402
from visiontasks.tasks import (  # noqa: E402
    BaseTask,
    ClassicSegmentationTask,
    ClassificationTask,
    DetectionTask,
    InstanceSegmentationTask,
    LocalizationTask,
    SegmentationTask,
)

__all__ = [
    "BaseTask",
    "ChannelsLast",
    "EMA",
    "ClassicSegmentationTask",
    "ClassificationTask",
    "CocoDataModule",
    "Compile",
    "CsvDataModule",
    "CheckpointError",
    "DataError",
    "OptionError",
    "Preemption",
    "DetectionTask",
    "ImageFolderDataModule",
    "InstanceSegmentationTask",
    "LocalizationTask",
    "RunPictures",
    "SegmentationFolderDataModule",
    "SegmentationTask",
    "ShapesDataModule",
    "StepCheckpoint",
    "TrainingBudget",
    "TrainingStopped",
    "VisionDataModule",
    "VisionTasksError",
    "__version__",
    "export",
]
