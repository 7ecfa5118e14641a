"""The tasks: LightningModules that pair a model with its loss and metrics."""

from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.classification import ClassificationTask

__all__ = ["BaseTask", "ClassificationTask"]
