"""Any timm model by name, ``timm/<name>``: timm's classifiers (ClassificationTask, and LocalizationTask's
backbone), its encoders under segmentation-models-pytorch's decoders (SegmentationTask) and under torchvision's
feature pyramid (the detectors' ``backbone: timm/<name>``).

timm builds every network (``in_chans`` follows the data, grayscale included; ``num_classes`` sizes the head),
and its pretrained config gives each model's facts. Nothing is downloaded here: weights are loaded on request by
:mod:`visiontasks.models.timm_weights`, which rebuilds a part with the arguments recorded by :func:`remember`.
timm and segmentation-models-pytorch are imported when a ``timm/`` model is asked for, not at start-up.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visiontasks.errors import DataError
from visiontasks.models.normalize import IMAGENET_MEAN, IMAGENET_STD
from visiontasks.models.registry import ModelEntry, ModelFamily, register_family

PREFIX = "timm/"
SmpArchitecture = Literal[
    "unet", "unetplusplus", "fpn", "pspnet", "deeplabv3", "deeplabv3plus", "linknet", "manet", "pan", "upernet"
]  # fmt: skip
"""segmentation-models-pytorch's decoders a timm encoder can go under (``architecture`` of a segmentation model)."""
SET_BY_US = ("self", "num_classes", "in_chans", "pretrained", "features_only", "device", "dtype", "args", "kwargs")

_BUILD_ARGS: weakref.WeakKeyDictionary[nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()


def remember(module: nn.Module, **arguments: Any) -> nn.Module:
    """Record the ``timm.create_model`` arguments of ``module`` (a timm network inside a model), so that weights
    can later be loaded by building its twin with timm's own loader (head dropped, input channels adapted)."""
    _BUILD_ARGS[module] = arguments
    return module


def timm_parts(model: nn.Module) -> list[tuple[nn.Module, dict[str, Any]]]:
    """The timm networks inside ``model`` and the arguments they were built with."""
    return [(module, _BUILD_ARGS[module]) for module in model.modules() if module in _BUILD_ARGS]


@functools.cache
def timm_names() -> tuple[str, ...]:
    """Every architecture timm can build (``timm.list_models()``)."""
    import timm

    return tuple(timm.list_models())


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(timm_names())


def is_timm_name(name: str) -> bool:
    """``name`` (without the prefix) is a timm architecture, possibly with a weights tag (``resnet10t.a1_in1k``)."""
    return name.partition(".")[0] in _known()


def architecture(name: str) -> str:
    """The timm name inside a ``timm/<name>`` model name."""
    return name.removeprefix(PREFIX)


@functools.cache
def class_options(arch: str) -> tuple[str, ...]:
    """The options of the architecture's class (``drop_rate``, ``drop_path_rate``, ...), read from a build on
    the meta device (no memory, no weights)."""
    import timm

    with torch.device("meta"):
        model = timm.create_model(arch)
    return tuple(p for p in inspect.signature(type(model).__init__).parameters if p not in SET_BY_US)


@functools.cache
def pretrained_config(arch: str) -> dict[str, Any]:
    """timm's pretrained config of ``arch`` (its default weights' tag unless ``arch`` names one); empty if none."""
    import timm

    config = timm.models.get_pretrained_cfg(arch)
    return config.to_dict() if config is not None else {}


def facts(arch: str) -> dict[str, Any]:
    """The facts of a timm model's registration from its pretrained config: mean, std and input size."""
    config = pretrained_config(arch)
    size = config.get("input_size")
    return {"mean": tuple(config.get("mean") or IMAGENET_MEAN), "std": tuple(config.get("std") or IMAGENET_STD),
            "input_size": tuple(size[-2:]) if size else None}  # fmt: skip


# ----- classifiers ---------------------------------------------------------------------------------------------
def timm_classifier(arch: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """``timm.create_model(arch, num_classes=..., in_chans=...)`` with the model's own ``options``."""
    import timm

    model = timm.create_model(arch, num_classes=num_classes, in_chans=in_channels, **options)
    return remember(model, model_name=arch, num_classes=num_classes, in_chans=in_channels, **options)


def _classifier_entry(name: str) -> ModelEntry:
    arch = architecture(name)
    head = pretrained_config(arch).get("classifier") or "head"
    builder = functools.partial(timm_classifier, arch)
    return ModelEntry(name, "classification", builder, class_options(arch), trainable_when_frozen=(head,), **facts(arch))


# ----- segmentation: a timm encoder under a segmentation-models-pytorch decoder ---------------------------------
@functools.cache
def _smp_classes() -> dict[str, type[nn.Module]]:
    import segmentation_models_pytorch as smp

    return {name: smp.MODEL_ARCHITECTURES_MAPPING[name] for name in get_args(SmpArchitecture)}


@functools.cache
def _decoder_options(architecture: str) -> tuple[str, ...]:
    taken = ("self", "encoder_name", "encoder_weights", "in_channels", "classes", "kwargs")
    return tuple(p for p in inspect.signature(_smp_classes()[architecture].__init__).parameters if p not in taken)


class PaddedToStride(nn.Module):
    """Pads an image on the right and bottom to a multiple of the encoder's stride (segmentation-models-pytorch
    refuses other sizes) and crops the logits back, so any image size segments."""

    def __init__(self, net: nn.Module, stride: int) -> None:
        super().__init__()
        self.net, self.stride = net, stride

    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        bottom, right = -height % self.stride, -width % self.stride
        if bottom or right:
            images = F.pad(images, (0, right, 0, bottom))
        return self.net(images)[..., :height, :width]


def timm_segmenter(
    arch: str, num_classes: int, in_channels: int = 3, architecture: SmpArchitecture = "unet", **options: Any
) -> nn.Module:
    """segmentation-models-pytorch's ``architecture`` (U-Net, DeepLabV3+, FPN, ...) on the timm encoder ``arch``
    (its ``tu-`` encoders), giving ``num_classes`` logits per pixel; ``options`` are the decoder's own
    (``encoder_depth``, ``decoder_channels``, ...)."""
    if architecture not in get_args(SmpArchitecture):
        raise DataError(f"architecture {architecture!r}: choose from {', '.join(get_args(SmpArchitecture))}.")
    foreign = sorted(set(options) - set(_decoder_options(architecture)))
    if foreign:
        raise DataError(
            f"segmentation-models-pytorch's {architecture} has no option {', '.join(foreign)} "
            f"(its options: {', '.join(_decoder_options(architecture))})."
        )
    try:
        net = _smp_classes()[architecture](
            encoder_name=f"tu-{arch}", encoder_weights=None, in_channels=in_channels, classes=num_classes, **options
        )
    except ValueError as error:  # options that do not fit together (a depth and a list of decoder widths)
        raise DataError(f"timm/{arch} under {architecture}: {error}; change model_options.") from None
    encoder = net.encoder.model
    remember(encoder, model_name=arch, features_only=True, in_chans=in_channels,
             out_indices=tuple(encoder.feature_info.out_indices))  # fmt: skip
    return PaddedToStride(net, net.encoder.output_stride)


def _segmenter_entry(name: str) -> ModelEntry:
    arch = architecture(name)
    decoder_options = sorted({option for a in get_args(SmpArchitecture) for option in _decoder_options(a)})
    builder = functools.partial(timm_segmenter, arch)
    head = ("net.decoder", "net.segmentation_head")
    return ModelEntry(name, "segmentation", builder, tuple(decoder_options), trainable_when_frozen=head, **facts(arch))


# ----- detection: a timm encoder under torchvision's feature pyramid ---------------------------------------------
PYRAMID_LEVELS = 4
"""Feature maps a timm backbone gives the pyramid (its deepest four), as a ResNet's four stages."""


class TimmFeaturePyramid(nn.Module):
    """A timm encoder's deepest feature maps through torchvision's FeaturePyramidNetwork (with its max-pooled
    extra level), as torchvision's ``BackboneWithFPN`` does for its own classifiers: what Faster/Mask R-CNN take.

    Args:
        arch: the timm architecture.
        in_channels: image channels.
        out_channels: the pyramid's width.
        trainable_layers: the feature levels that train, from the deepest (0 to 4; 5 trains the stem too).
        frozen_norm: batch norm with frozen statistics (for pretrained weights, as torchvision's recipe).
    """

    def __init__(self, arch: str, in_channels: int, out_channels: int, trainable_layers: int, frozen_norm: bool) -> None:
        import timm
        from timm.layers import freeze_batch_norm_2d
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        super().__init__()
        indices = tuple(range(-PYRAMID_LEVELS, 0))
        body = timm.create_model(arch, features_only=True, out_indices=indices, in_chans=in_channels)
        if len(body.feature_info.channels()) < PYRAMID_LEVELS:
            raise DataError(f"timm/{arch} gives fewer than {PYRAMID_LEVELS} feature maps: choose another detection backbone.")
        self.body = remember(body, model_name=arch, features_only=True, out_indices=indices, in_chans=in_channels)
        if frozen_norm:
            self.body = freeze_batch_norm_2d(self.body)
            remember(self.body, **_BUILD_ARGS[body])
        self.fpn = FeaturePyramidNetwork(self.body.feature_info.channels(), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels
        self._freeze_levels(trainable_layers)

    def _freeze_levels(self, trainable: int) -> None:
        """Parameters before the first trainable level stop training (all train when ``trainable`` is 5)."""
        if trainable > PYRAMID_LEVELS:
            return
        names = self.body.feature_info.module_name()
        first = names[PYRAMID_LEVELS - trainable] if trainable else None
        prefixes = (f"{first}.", f"{first.replace('.', '_')}.") if first else None
        for name, parameter in self.body.named_parameters():
            if prefixes and name.startswith(prefixes):
                break
            parameter.requires_grad = False

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(OrderedDict((str(i), feature) for i, feature in enumerate(self.body(images))))


def timm_detection_backbone(name: str, trainable_layers: int, frozen_norm: bool, channels: int = 256) -> nn.Module:
    """The detectors' ``backbone: timm/<name>`` (RGB: the detectors repeat grayscale images to three channels)."""
    return TimmFeaturePyramid(architecture(name), 3, channels, trainable_layers, frozen_norm)


def is_timm_backbone(name: str) -> bool:
    """``name`` asks for a timm backbone (``timm/<name>``); an unknown timm name is an error with close matches."""
    if not name.startswith(PREFIX):
        return False
    if not is_timm_name(architecture(name)):
        import difflib

        close = [PREFIX + n for n in difflib.get_close_matches(architecture(name), timm_names(), n=3)]
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise DataError(f"unknown timm backbone {name!r}: {hint}`python -m visiontasks models timm/` lists them.")
    return True


def model_mean_std(name: str) -> tuple[Sequence[float], Sequence[float]]:
    """The input statistics a ``timm/<name>`` backbone's weights expect."""
    found = facts(architecture(name))
    return found["mean"], found["std"]


for _kind, _entry in (("classification", _classifier_entry), ("segmentation", _segmenter_entry)):
    register_family(ModelFamily(PREFIX, _kind, timm_names, functools.cache(_entry), is_timm_name))
