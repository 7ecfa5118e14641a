"""Input normalisation with ImageNet statistics, which torchvision's pretrained weights expect.

Data modules emit images in [0, 1]; the models that need standardised input apply this.
"""

from __future__ import annotations

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN, GRAY_STD = (0.449,), (0.226,)


def normalize(images: Tensor) -> Tensor:
    """Standardise a BxCxHxW batch in [0, 1] (C = 1 or 3; other channel counts use 0.5 / 0.25)."""
    channels = int(images.shape[1])  # a plain int: a traced size (TorchScript, ONNX) would miss the table's keys
    mean, std = {3: (IMAGENET_MEAN, IMAGENET_STD), 1: (GRAY_MEAN, GRAY_STD)}.get(
        channels, ((0.5,) * channels, (0.25,) * channels)
    )
    mean_t = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean_t) / std_t
