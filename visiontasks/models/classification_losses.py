"""Image classification losses with per-class weights: cross-entropy, or the focal loss for hard, rare classes.

Single-label: softmax cross-entropy (label smoothing allowed) or its focal version, weights per class.
Multi-label: binary cross-entropy per class, or torchvision's ``sigmoid_focal_loss``; the weights are
``pos_weight``: how much a positive of each class counts against a negative.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from visiontasks.models.segmentation_losses import focal_loss

ClassificationLossName = Literal["ce", "focal"]


class ClassificationLoss(nn.Module):
    """``ce`` or ``focal`` for single- or multi-label targets; ``reduction`` ``mean`` or ``none`` (per sample)."""

    def __init__(
        self, kind: ClassificationLossName = "ce", multilabel: bool = False, weight: Tensor | None = None,
        label_smoothing: float = 0.0, focal_gamma: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__()
        if kind not in ("ce", "focal"):
            raise ValueError(f"unknown loss {kind!r}; choose from ce, focal")
        self.kind, self.multilabel, self.label_smoothing, self.focal_gamma = kind, multilabel, label_smoothing, focal_gamma
        self.reduction = "mean"
        self.register_buffer("weight", weight, persistent=False)  # from the options or the training data, not the checkpoint

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.multilabel:
            return self._multilabel(logits, target.float())
        if self.kind == "focal":
            if self.reduction == "none":
                return torch.stack([focal_loss(logits[i : i + 1], target[i : i + 1], -100, self.weight, self.focal_gamma)
                                    for i in range(len(logits))])  # fmt: skip
            return focal_loss(logits, target, -100, self.weight, self.focal_gamma)
        return F.cross_entropy(logits, target, weight=self.weight, label_smoothing=self.label_smoothing, reduction=self.reduction)

    def _multilabel(self, logits: Tensor, target: Tensor) -> Tensor:
        if self.kind == "ce":
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.weight, reduction=self.reduction)
        loss = sigmoid_focal_loss(logits, target, alpha=-1, gamma=self.focal_gamma, reduction="none")
        if self.weight is not None:  # positives weighted as pos_weight weights them in binary cross-entropy
            loss = loss * torch.where(target > 0, self.weight, torch.ones_like(self.weight))
        return loss.mean() if self.reduction == "mean" else loss

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Checkpoints of older versions kept the weights (``weight``/``pos_weight``); they come from the options now."""
        for name in ("weight", "pos_weight"):
            state_dict.pop(prefix + name, None)
        super()._load_from_state_dict(state_dict, prefix, *args)
