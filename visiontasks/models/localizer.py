"""Classification + localization: one backbone, a class head and a box head.

The course's two-output network: a classifier's pooled features feed ``num_classes`` logits and
four box numbers. The box is ``(cx, cy, w, h)`` squashed by a sigmoid into ``[0, 1]`` of the
input image, so it always has positive size (which the GIoU loss needs) and any input size works.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert

from visiontasks.models.classifiers import head_name


class Localizer(nn.Module):
    """A classifier (any registered one: ``resnet18``, ``vgg16``, ``lenet5``...) with its final
    linear layer split into two heads.

    Args:
        backbone: the classifier, built with ``create_model``; its last linear layer is replaced.
        num_classes: outputs of the class head.
    """

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        head = head_name(self.backbone)
        features = self.backbone.get_submodule(head).in_features
        self.backbone.set_submodule(head, nn.Identity())  # the backbone now returns pooled features
        self.class_head = nn.Linear(features, num_classes)
        self.box_head = nn.Linear(features, 4)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits (BxK) and boxes (Bx4, normalised ``cx, cy, w, h`` in ``[0, 1]``)."""
        features = self.backbone(images)
        return self.class_head(features), self.box_head(features).sigmoid()


def boxes_to_pixels(boxes: Tensor, sizes: Tensor) -> Tensor:
    """Normalised ``cx, cy, w, h`` to pixel ``x_min, y_min, x_max, y_max``, clipped to the image.

    ``sizes`` is ``(height, width)``: one pair (2) for all boxes, or one per box (Bx2).
    """
    height, width = sizes.to(boxes.dtype).unbind(-1)
    scale = torch.stack([width, height, width, height], dim=-1)
    return box_convert(boxes, "cxcywh", "xyxy").clamp(0, 1) * scale
