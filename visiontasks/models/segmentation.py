"""Semantic segmentation networks by name: the U-Net and torchvision's FCN / DeepLabV3.

torchvision's models are built without any download; pretrained weights are loaded later,
on request, through :mod:`visiontasks.models.weights` (offline-safe, any channel count).
"""

from __future__ import annotations

from typing import Any

import torchvision
from torch import Tensor, nn

from visiontasks.models.classifiers import adapt_torchvision_model
from visiontasks.models.unet import UNet
from visiontasks.models.weights import load_matching, state_dict_for

BACKBONES = {
    "fcn_resnet50": ("resnet50", ""),
    "deeplabv3_resnet50": ("resnet50", ""),
    "deeplabv3_mobilenet_v3_large": ("mobilenet_v3_large", "features."),
}
"""torchvision model -> (backbone classifier, prefix of the backbone's layers in the classifier's weights)."""
SEGMENTATION_MODELS = ("unet", *BACKBONES)


def build_segmentation_model(name: str, num_classes: int, in_channels: int = 3, **unet_options: Any) -> nn.Module:
    """A randomly initialised network giving ``num_classes`` logits per pixel.

    ``unet_options`` (base_channels, depth, dropout, batch_norm, upsampling) apply to ``unet`` only.
    torchvision's models return a dict; :func:`logits_of` takes the ``out`` entry.
    """
    if name == "unet":
        return UNet(num_classes, in_channels, **unet_options)
    if name not in BACKBONES:
        raise ValueError(f"unknown segmentation model {name!r}; choose from {', '.join(SEGMENTATION_MODELS)}")
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    adapt_torchvision_model(model, in_channels)
    return model


def logits_of(output: Tensor | dict[str, Tensor]) -> Tensor:
    """The per-pixel logits of either kind of model (torchvision's come as ``{"out": ...}``)."""
    return output["out"] if isinstance(output, dict) else output


def load_segmentation_weights(model: nn.Module, name: str, weights: str) -> None:
    """Load ``weights`` into a model from :func:`build_segmentation_model`.

    ``weights`` is a file (a checkpoint of this package or any matching state dict) or a
    torchvision name: ``DEFAULT`` / ``IMAGENET1K_V1`` give the ImageNet backbone,
    ``COCO_WITH_VOC_LABELS_V1`` the whole torchvision segmentation model (its head is replaced
    when the class count differs).
    """
    if name == "unet":
        load_matching(model, state_dict_for(weights, "unet"))
        return
    arch, prefix = BACKBONES[name]
    whole_model_names = set(torchvision.models.get_model_weights(name).__members__) - {"DEFAULT"}
    state = state_dict_for(weights, name if weights in whole_model_names else arch)
    if not any(key.startswith(("backbone.", "model.backbone.")) for key in state):  # a classifier's weights
        state = {f"backbone.{key.removeprefix(prefix)}": value for key, value in state.items()}
    load_matching(model, state)
