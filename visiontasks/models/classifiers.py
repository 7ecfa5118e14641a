"""Image classifiers by name: torchvision's families plus the course's small CNNs."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from visiontasks.models.registry import register_model

TORCHVISION_CLASSIFIERS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "vgg11", "vgg16", "vgg16_bn", "alexnet",
    "googlenet", "densenet121", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_b1", "convnext_tiny", "regnet_y_400mf", "shufflenet_v2_x1_0",
)  # fmt: skip
"""torchvision's classifiers offered by name (registered below with ``resnet10``; LeNet-5 and the small CNN
register in small_cnns)."""


def adapt_torchvision_model(model: nn.Module, in_channels: int) -> None:
    """Fit a freshly built torchvision model to ``in_channels`` and to short training runs.

    Some families (MobileNetV3, EfficientNet) keep batch-norm running statistics with momentum
    0.01, tuned for long ImageNet schedules: after a few hundred steps from scratch those
    statistics still lag the weights and evaluation collapses. They get PyTorch's default 0.1.
    """
    _replace_first_conv(model, in_channels)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is not None:
            module.momentum = max(module.momentum, 0.1)


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels != in_channels:
                parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
                new = nn.Conv2d(
                    in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                )  # fmt: skip
                setattr(parent, name.rpartition(".")[2], new)
            return


def head_name(model: nn.Module) -> str:
    """Name of the final linear layer: the part that is new when fine-tuning."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def torchvision_classifier(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """A randomly initialised torchvision classifier with ``in_channels`` inputs and ``num_classes`` outputs."""
    extra = {"aux_logits": False, "init_weights": True, "transform_input": False} if name == "googlenet" else {}
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)
    adapt_torchvision_model(model, in_channels)
    return model


for _name in TORCHVISION_CLASSIFIERS:
    register_model(_name, kind="classification")(functools.partial(torchvision_classifier, _name))


def resnet10_network(num_classes: int = 1000, norm_layer: Callable[[int], nn.Module] | None = None) -> ResNet:
    """ResNet-18 with one basic block per stage instead of two (as timm's resnet10t, without its deep stem):
    about half ResNet-18's compute, for small images and CPU runs. The one place of its architecture: the
    classifier below and the detectors' ``resnet10`` backbone build it here."""
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, norm_layer=norm_layer)


@register_model("resnet10", kind="classification")
def resnet10(num_classes: int, in_channels: int = 3) -> nn.Module:
    """:func:`resnet10_network` as a classifier. It has no weights of its own; ResNet-18's
    (``weights: ResNet18_Weights.IMAGENET1K_V1``) fill its stem, its blocks and all but the head."""
    model = resnet10_network(num_classes)
    adapt_torchvision_model(model, in_channels)
    return model
