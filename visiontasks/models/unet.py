"""The U-Net of Ronneberger et al. (2015), as taught in the course, with its knobs exposed.

A contracting path of double 3x3 convolutions and 2x2 max pooling, an expanding path that
up-samples (2x2 transposed convolution or bilinear) and concatenates the matching encoder
features, and a 1x1 convolution that gives per-pixel class logits. Convolutions are padded, so
the output has the input's size; inputs of any size are padded to a multiple of ``2**depth``
inside ``forward`` and the logits cropped back.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visiontasks.models.registry import register_model

Upsampling = Literal["transpose", "bilinear"]


class DoubleConv(nn.Sequential):
    """conv3x3 - [BN] - ReLU - [dropout] - conv3x3 - [BN] - ReLU: one level of either path."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool, dropout: float) -> None:
        def conv(cin: int) -> list[nn.Module]:
            norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
            return [nn.Conv2d(cin, out_channels, 3, padding=1, bias=not batch_norm), *norm, nn.ReLU(inplace=True)]

        drop = [nn.Dropout2d(dropout)] if dropout > 0 else []
        super().__init__(*conv(in_channels), *drop, *conv(out_channels))


def upsampler(in_channels: int, out_channels: int, mode: Upsampling) -> nn.Module:
    """Double the resolution and halve the channels, ready to be joined with the skip features."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
    if mode == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(in_channels, out_channels, 1)
        )
    raise ValueError(f"upsampling must be 'transpose' or 'bilinear', got {mode!r}")


@register_model("unet", kind="segmentation", trainable_when_frozen=("up", "decode", "head"))
class UNet(nn.Module):
    """Encoder-decoder with skip connections; level ``i`` has ``base_channels * 2**i`` channels.

    Args:
        num_classes: output channels of the 1x1 head (1 for a binary sigmoid output).
        in_channels: image channels.
        base_channels: width of the first level (16 in the course's version, 64 in the paper).
        depth: number of poolings; the bottleneck sees the input at ``1 / 2**depth`` resolution.
        dropout: dropout between the two convolutions of each level: one value for all levels or
            one per level from the top to the bottleneck (``depth + 1`` values); decoder levels
            reuse the value of their encoder level.
        batch_norm: batch normalisation after every convolution (the paper had none).
        upsampling: ``transpose`` (2x2 transposed convolution, as in the paper) or ``bilinear``
            (interpolation then 1x1 convolution: fewer weights, no checkerboard artefacts).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        base_channels: int = 16,
        depth: int = 4,
        dropout: float | list[float] = 0.0,
        batch_norm: bool = True,
        upsampling: Upsampling = "transpose",
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"depth and base_channels must be positive, got {depth} and {base_channels}")
        drops = [float(dropout)] * (depth + 1) if isinstance(dropout, (int, float)) else [float(d) for d in dropout]
        if len(drops) != depth + 1:
            raise ValueError(f"dropout needs one value or depth + 1 = {depth + 1} values, got {len(drops)}")
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.size_divisor = 2**depth
        self.down = nn.ModuleList(
            DoubleConv(cin, cout, batch_norm, p) for cin, cout, p in zip([in_channels, *widths], widths, drops)
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(upsampler(widths[level + 1], widths[level], upsampling) for level in reversed(range(depth)))
        self.decode = nn.ModuleList(
            DoubleConv(2 * widths[level], widths[level], batch_norm, drops[level]) for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(base_channels, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel logits (B x num_classes x H x W) for a batch of any height and width."""
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % self.size_divisor, 0, -height % self.size_divisor))
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for up, block in zip(self.up, self.decode):
            x = block(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)[..., :height, :width]
