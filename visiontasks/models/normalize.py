"""Input normalisation with ImageNet statistics, which torchvision's pretrained weights expect.

Data modules emit images in [0, 1]; the models that need standardised input apply this.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """Standardise a BxCxHxW batch in [0, 1] with an RGB ``mean`` and ``std`` (ImageNet's by default, as
    torchvision's weights expect; a timm model's come from its pretrained config). Grayscale uses their means;
    other channel counts 0.5 / 0.25."""
    channels = int(images.shape[1])  # a plain int: a traced size (TorchScript, ONNX) would miss the table's keys
    gray = (sum(mean) / len(mean),), (sum(std) / len(std),)
    mean, std = {3: (tuple(mean), tuple(std)), 1: gray}.get(channels, ((0.5,) * channels, (0.25,) * channels))
    mean_t = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean_t) / std_t
