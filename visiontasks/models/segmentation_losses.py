"""Per-pixel losses for semantic segmentation that skip ``ignore_index`` pixels.

All take class logits (B x C x H x W) and a target mask (B x H x W). A binary model's single
sigmoid logit ``z`` is passed as the two-class logits ``[0, z]``: their softmax is
``[1 - sigmoid(z), sigmoid(z)]``, so cross-entropy on them is exactly binary cross-entropy.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LossName = Literal["ce", "dice", "ce+dice", "focal"]


def dice_loss(logits: Tensor, target: Tensor, ignore_index: int, weight: Tensor | None = None) -> Tensor:
    """1 - soft Dice per class, averaged (weighted if given); smoothed so a class absent from both scores 1."""
    valid = (target != ignore_index).unsqueeze(1)
    probs = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(target.where(valid.squeeze(1), 0), logits.shape[1]).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    overlap = (probs * one_hot).sum(dims)
    total = probs.sum(dims) + one_hot.sum(dims)
    dice = (2 * overlap + 1.0) / (total + 1.0)
    weight = torch.ones_like(dice) if weight is None else weight
    return ((1 - dice) * weight).sum() / weight.sum()


def focal_loss(logits: Tensor, target: Tensor, ignore_index: int, weight: Tensor | None, gamma: float) -> Tensor:
    """Cross-entropy scaled by ``(1 - p_true)**gamma``: easy pixels count less (Lin et al., 2017)."""
    valid = target != ignore_index
    log_p = logits.log_softmax(dim=1).gather(1, target.where(valid, 0).unsqueeze(1)).squeeze(1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if weight is not None:
        loss = loss * weight[target.where(valid, 0)]
    return loss[valid].sum() / valid.sum().clamp(min=1)


class SegmentationLoss(nn.Module):
    """``ce``, ``dice``, ``ce+dice`` (their sum) or ``focal``, with optional per-class weights."""

    def __init__(
        self, kind: LossName = "ce", ignore_index: int = 255, weight: Tensor | None = None, focal_gamma: float = 2.0
    ) -> None:
        super().__init__()
        if kind not in ("ce", "dice", "ce+dice", "focal"):
            raise ValueError(f"unknown loss {kind!r}; choose from ce, dice, ce+dice, focal")
        self.kind, self.ignore_index, self.focal_gamma = kind, ignore_index, focal_gamma
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if not (target != self.ignore_index).any():  # nothing labelled: no signal, but keep the graph
            return logits.sum() * 0.0
        if self.kind == "focal":
            return focal_loss(logits, target, self.ignore_index, self.weight, self.focal_gamma)
        loss = logits.new_zeros(())
        if "ce" in self.kind:
            loss = loss + F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index)
        if "dice" in self.kind:
            loss = loss + dice_loss(logits, target, self.ignore_index, self.weight)
        return loss
