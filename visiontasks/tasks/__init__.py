"""The tasks: LightningModules that pair a model with its loss and metrics."""

from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.classic_segmentation import ClassicSegmentationTask
from visiontasks.tasks.classification import ClassificationTask
from visiontasks.tasks.data_contract import TASK_OF_KIND
from visiontasks.tasks.detection import DetectionTask, InstanceSegmentationTask
from visiontasks.tasks.localization import LocalizationTask
from visiontasks.tasks.segmentation import SegmentationTask

__all__ = [
    "BaseTask",
    "ClassicSegmentationTask",
    "ClassificationTask",
    "DetectionTask",
    "InstanceSegmentationTask",
    "LocalizationTask",
    "SegmentationTask",
    "TASK_OF_KIND",
]
