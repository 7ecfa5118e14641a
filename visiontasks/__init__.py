"""visiontasks: classic CNN vision tasks as Lightning modules, one CLI and shared data modules."""

__version__ = "0.1.0"

from visiontasks.data import CsvDataModule, ImageFolderDataModule, ShapesDataModule, VisionDataModule  # noqa: E402
from visiontasks.errors import DataError  # noqa: E402
from visiontasks.tasks import BaseTask, ClassificationTask  # noqa: E402
from visiontasks.tasks import LocalizationTask  # noqa: E402
from visiontasks.tasks import SegmentationTask  # noqa: E402
from visiontasks.data import SegmentationFolderDataModule  # noqa: E402
from visiontasks.data import CocoDataModule  # noqa: E402
from visiontasks.tasks import DetectionTask, InstanceSegmentationTask  # noqa: E402

__all__ = [
    "BaseTask",
    "ClassificationTask",
    "CocoDataModule",
    "CsvDataModule",
    "DataError",
    "DetectionTask",
    "ImageFolderDataModule",
    "InstanceSegmentationTask",
    "LocalizationTask",
    "SegmentationFolderDataModule",
    "SegmentationTask",
    "ShapesDataModule",
    "VisionDataModule",
    "__version__",
]
