"""What a task exports: the module to trace, how to read its outputs, and what its input is.

Each task builds its own :class:`ExportGraph` (``task.export_graph()``); :func:`visiontasks.export.export`
writes whichever graph it is given, so the exporter never asks which task it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn
from torchvision.ops import box_convert

CLASSES = "in class_names order"


@dataclass
class ExportGraph:
    """The module to export and what a user needs to read it.

    Args:
        module: the network to trace or script.
        outputs: each output's name and how to read it.
        any_size: height and width may vary (fully convolutional networks, the detector).
        one_image: torchvision's detector: one 3-channel image of any size in (it resizes and normalises
            itself), its detections out; otherwise a batch at the training size.
        sidecar: further entries of the JSON beside the model file.
    """

    module: nn.Module
    outputs: dict[str, str]
    any_size: bool = False
    one_image: bool = False
    sidecar: dict[str, Any] = field(default_factory=dict)


class Probabilities(nn.Module):
    """Classification and segmentation: the task's class probabilities (softmax, or sigmoid when multi-label)."""

    def __init__(self, task: nn.Module, sigmoid: bool = False) -> None:
        super().__init__()
        self.task, self.sigmoid = task, sigmoid

    def forward(self, images: Tensor) -> Tensor:
        logits = self.task(images)
        return logits.sigmoid() if self.sigmoid else logits.softmax(dim=1)


class LocalizerOutputs(nn.Module):
    """Localization: class probabilities and the box as ``x_min, y_min, x_max, y_max`` fractions of the image."""

    def __init__(self, task: nn.Module) -> None:
        super().__init__()
        self.task = task

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        logits, boxes = self.task(images)
        return logits.softmax(dim=1), box_convert(boxes, "cxcywh", "xyxy")
