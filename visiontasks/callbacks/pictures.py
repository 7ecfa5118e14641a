"""The picture a prediction is drawn on: the original file, else the network input at the original size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from visiontasks.data.images import read_image


def original_picture(path: str, image: Tensor, size: tuple[int, int]) -> Tensor:
    """A 3xHxW uint8 picture at the original size: the file itself when it exists (a user's image),
    else the resized network input (generated data)."""
    if path and Path(path).is_file():
        array = read_image(path, 3)
        if array.dtype != np.uint8:  # 16-bit files are read as floats in [0, 1]
            array = (array * 255).round().astype(np.uint8)
        return torch.tensor(array).permute(2, 0, 1).contiguous()  # a copy: PIL arrays are read-only
    resized = F.interpolate(image[None].float().cpu(), size=tuple(size), mode="bilinear", align_corners=False)[0]
    return resized.expand(3, -1, -1).mul(255).round().clamp(0, 255).to(torch.uint8)
