"""torchvision's FCN / DeepLabV3 by name (the U-Net registers in :mod:`visiontasks.models.unet`).

torchvision's models are built without any download; pretrained weights are loaded later,
on request, through :mod:`visiontasks.models.weights` (offline-safe, any channel count).
"""

from __future__ import annotations

import functools

import torchvision
from torch import Tensor, nn

from visiontasks.models.classifiers import adapt_torchvision_model
from visiontasks.models.registry import model_entry, register_model
from visiontasks.models.weights import load_matching, state_dict_for

BACKBONES = {
    "fcn_resnet50": ("resnet50", ""),
    "deeplabv3_resnet50": ("resnet50", ""),
    "deeplabv3_mobilenet_v3_large": ("mobilenet_v3_large", "features."),
}
"""torchvision model -> (backbone classifier, prefix of the backbone's layers in the classifier's weights)."""


def torchvision_segmentation(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """A randomly initialised torchvision FCN / DeepLabV3 giving ``num_classes`` logits per pixel.

    torchvision's models return a dict; :func:`logits_of` takes the ``out`` entry.
    """
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    adapt_torchvision_model(model, in_channels)
    return model


for _name in BACKBONES:
    register_model(_name, kind="segmentation", trainable_when_frozen=("classifier",), backbone_weights=BACKBONES[_name])(
        functools.partial(torchvision_segmentation, _name)
    )


def logits_of(output: Tensor | dict[str, Tensor]) -> Tensor:
    """The per-pixel logits of either kind of model (torchvision's come as ``{"out": ...}``)."""
    return output["out"] if isinstance(output, dict) else output


def load_segmentation_weights(model: nn.Module, name: str, weights: str) -> None:
    """Load ``weights`` into a segmentation model registered as ``name`` (the U-Net or a torchvision one).

    ``weights`` is a file (a checkpoint of this package or any matching state dict) or a
    torchvision name: ``DEFAULT`` / ``IMAGENET1K_V1`` give the ImageNet backbone,
    ``COCO_WITH_VOC_LABELS_V1`` the whole torchvision segmentation model (its head is replaced
    when the class count differs).
    """
    backbone = model_entry(name, "segmentation").backbone_weights
    if backbone is None:  # the model's own weights (the U-Net's)
        load_matching(model, state_dict_for(weights, name))
        return
    arch, prefix = backbone
    whole_model_names = set(torchvision.models.get_model_weights(name).__members__) - {"DEFAULT"}
    state = state_dict_for(weights, name if weights in whole_model_names else arch)
    if not any(key.startswith(("backbone.", "model.backbone.")) for key in state):  # a classifier's weights
        state = {f"backbone.{key.removeprefix(prefix)}": value for key, value in state.items()}
    load_matching(model, state)
