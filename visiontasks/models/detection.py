"""Faster R-CNN and Mask R-CNN from torchvision, with backbone, anchors and sizes chosen by name.

``num_classes`` counts the user's classes; the background slot torchvision needs is added here.
Models take lists of CxHxW images in [0, 1] and normalise them themselves.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from torchvision.models import get_model
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor, mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from visiontasks.models.classifiers import resnet10_network
from visiontasks.models.registry import register_model
from visiontasks.models.timm_models import is_timm_backbone, model_mean_std, timm_detection_backbone
from visiontasks.models.timm_weights import load_timm_weights
from visiontasks.models.weights import is_weights_file, load_matching, state_dict_for

DetectorKind = Literal["faster_rcnn", "mask_rcnn"]
DetectionBackbone = Literal["resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v3_large"]
BACKBONES = get_args(DetectionBackbone)
# torchvision's detectors trained on COCO, by (detector, backbone): what ``weights: DEFAULT`` can load.
COCO_MODELS = {
    ("faster_rcnn", "resnet50"): "fasterrcnn_resnet50_fpn",
    ("faster_rcnn", "mobilenet_v3_large"): "fasterrcnn_mobilenet_v3_large_fpn",
    ("mask_rcnn", "resnet50"): "maskrcnn_resnet50_fpn",
}
MASK_THRESHOLD = 0.5  # mask probabilities above this are the object (torchvision's and COCO's convention)


def feature_levels(backbone: str) -> int:
    """Feature maps the FPN gives (ResNet: 4 stages + pool; MobileNet: 2 stages + pool): one anchor set each."""
    return 3 if backbone.startswith("mobilenet") else 5


def max_trainable_layers(backbone: str) -> int:
    return 6 if backbone.startswith("mobilenet") else 5


def _anchor_generator(
    backbone: str, sizes: Sequence[int] | Sequence[Sequence[int]] | None, ratios: Sequence[float] | None
) -> AnchorGenerator:
    levels = feature_levels(backbone)
    if sizes is None:
        per_level = [(32, 64, 128, 256, 512)] * levels if levels == 3 else [(32,), (64,), (128,), (256,), (512,)]
    else:
        per_level = [tuple(s) if isinstance(s, Sequence) else (int(s),) for s in sizes]
    if len(per_level) != levels:
        raise ValueError(
            f"anchor_sizes has {len(per_level)} entries but {backbone}-FPN has {levels} feature levels: "
            f"give one size (or one list of sizes) per level, e.g. {[16 * 2**i for i in range(levels)]}"
        )
    if len({len(s) for s in per_level}) != 1:
        raise ValueError(f"anchor_sizes {sizes}: every level needs the same number of sizes")
    ratios = tuple(ratios) if ratios else (0.5, 1.0, 2.0)
    return AnchorGenerator(tuple(per_level), (ratios,) * levels)


def _backbone(name: str, trainable_layers: int, frozen_norm: bool) -> nn.Module:
    # Pretrained backbones keep their batch-norm statistics frozen (torchvision's recipe); from
    # scratch they need real batch norm to train at all.
    norm = FrozenBatchNorm2d if frozen_norm else nn.BatchNorm2d
    if name.startswith("mobilenet"):
        return mobilenet_backbone(
            backbone_name=name, weights=None, fpn=True, norm_layer=norm, trainable_layers=trainable_layers
        )
    # what torchvision's resnet_fpn_backbone does, for our resnet10 as well as its own ResNets
    body = resnet10_network(norm_layer=norm) if name == "resnet10" else get_model(name, weights=None, norm_layer=norm)
    return _resnet_fpn_extractor(body, trainable_layers)


def _with_fpn_width(features: BackboneWithFPN, channels: int) -> BackboneWithFPN:
    """The same backbone with a feature pyramid of ``channels`` channels (torchvision's builders fix 256)."""
    widths = [block[0].in_channels for block in features.fpn.inner_blocks]
    features.fpn = FeaturePyramidNetwork(widths, channels, extra_blocks=features.fpn.extra_blocks)
    features.out_channels = channels
    return features


def build_detector(
    kind: DetectorKind,
    num_classes: int,
    backbone: str = "resnet50",
    trainable_layers: int | None = None,
    anchor_sizes: Sequence[int] | Sequence[Sequence[int]] | None = None,
    aspect_ratios: Sequence[float] | None = None,
    min_size: int = 800,
    max_size: int = 1333,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    representation_size: int = 1024,
    roi_sampling_ratio: int = 2,
    mask_head_layers: Sequence[int] | None = None,
    fpn_channels: int = 256,
    pretrained: bool = False,
    **kwargs: Any,
) -> GeneralizedRCNN:
    """A randomly initialised Faster R-CNN (``kind="faster_rcnn"``) or Mask R-CNN with an FPN backbone.

    Args:
        kind: ``faster_rcnn`` (boxes) or ``mask_rcnn`` (boxes and masks).
        num_classes: object classes, without background.
        backbone: resnet10 (see :func:`~visiontasks.models.classifiers.resnet10_network`), resnet18/34/50/101,
            mobilenet_v3_large or any timm encoder, ``timm/<name>`` (its deepest four feature maps), each with a
            feature pyramid.
        trainable_layers: backbone stages that train (0 to 5, MobileNet 0 to 6); default all from
            scratch, 3 when ``pretrained``.
        anchor_sizes: anchor sizes in input pixels, one per feature level (or a list per level).
        aspect_ratios: anchor height/width ratios, used at every level.
        min_size: images are resized so the short side is this (torchvision resizes internally);
            the tasks set it to the data's input size unless given.
        max_size: ... and the long side at most this.
        score_thresh: detections scoring below this are dropped.
        nms_thresh: IoU above which overlapping detections of a class are suppressed.
        detections_per_img: most detections kept per image.
        representation_size: width of the two fully connected layers of the box head (1024 in the paper).
        roi_sampling_ratio: RoIAlign samples per bin side; 1 is about 3x faster to train on a CPU than 2.
        mask_head_layers: Mask R-CNN: channels of each 3x3 convolution of the mask head
            (torchvision: ``[256, 256, 256, 256]``); ``[64, 64]`` is about 20x cheaper on a CPU.
        fpn_channels: channels of the feature pyramid, and so of the RPN and box head's inputs (256 in the
            paper and in COCO weights, whose pyramid and heads then stay new); 64 trains about 1.8x faster on
            a CPU.
        pretrained: weights will be loaded (frozen batch norm, fewer trainable layers by default).
        **kwargs: any other argument of torchvision's ``FasterRCNN``/``MaskRCNN``
            (``rpn_post_nms_top_n_test``, ``box_batch_size_per_image``, ...).

    Registered as ``faster_rcnn`` and ``mask_rcnn``: these arguments, less ``kind`` and
    ``num_classes``, are the models' options.
    """
    timm_backbone = is_timm_backbone(backbone)
    if backbone not in BACKBONES and not timm_backbone:
        raise ValueError(f"unknown detection backbone {backbone!r}; choose from {', '.join(BACKBONES)} or timm/<name>")
    if mask_head_layers is not None and kind != "mask_rcnn":
        raise ValueError("mask_head_layers is an option of Mask R-CNN (instance segmentation) only")
    top = max_trainable_layers(backbone)
    layers = (3 if pretrained else top) if trainable_layers is None else trainable_layers
    if not 0 <= layers <= top:
        raise ValueError(f"trainable_layers must be between 0 and {top} for {backbone}, got {layers}")
    if fpn_channels < 1:
        raise ValueError(f"fpn_channels must be a positive number of channels, got {fpn_channels}")
    if timm_backbone:
        features = timm_detection_backbone(backbone, layers, pretrained, fpn_channels)
        kwargs.setdefault("image_mean", model_mean_std(backbone)[0])
        kwargs.setdefault("image_std", model_mean_std(backbone)[1])
    else:
        features = _backbone(backbone, layers, frozen_norm=pretrained)
    if fpn_channels != features.out_channels:
        features = _with_fpn_width(features, fpn_channels)
    channels = features.out_channels
    classes = num_classes + 1  # slot 0 is the background
    levels = ["0", "1", "2", "3"][: feature_levels(backbone) - 1]  # the pooled level is for proposals only
    heads: dict[str, Any] = {
        "box_roi_pool": MultiScaleRoIAlign(levels, 7, roi_sampling_ratio),
        "box_head": TwoMLPHead(channels * 7 * 7, representation_size),
        "box_predictor": FastRCNNPredictor(representation_size, classes),
    }
    if kind == "mask_rcnn":
        heads["mask_roi_pool"] = MultiScaleRoIAlign(levels, 14, roi_sampling_ratio)
        layers = list(mask_head_layers or (256, 256, 256, 256))
        heads["mask_head"] = MaskRCNNHeads(channels, layers, 1)
        heads["mask_predictor"] = MaskRCNNPredictor(layers[-1], layers[-1], classes)
    settings = dict(
        num_classes=None,
        rpn_anchor_generator=_anchor_generator(backbone, anchor_sizes, aspect_ratios),
        min_size=min_size,
        max_size=max_size,
        box_score_thresh=score_thresh,
        box_nms_thresh=nms_thresh,
        box_detections_per_img=detections_per_img,
        **heads,
    )
    taken = sorted(set(settings) & set(kwargs))
    if taken:
        raise ValueError(f"{', '.join(taken)}: set through this model's own options (score_thresh, ...), not directly")
    return DETECTORS[kind](features, **settings, **kwargs)


DETECTORS: dict[str, type[GeneralizedRCNN]] = {"faster_rcnn": FasterRCNN, "mask_rcnn": MaskRCNN}
for _kind, _task_kind in (("faster_rcnn", "detection"), ("mask_rcnn", "instance_segmentation")):
    _passed = [p for p in inspect.signature(DETECTORS[_kind]).parameters if p not in ("backbone", "num_classes", "kwargs")]
    register_model(_kind, kind=_task_kind, passes_to=_passed, trainable_when_frozen=("backbone.fpn", "rpn", "roi_heads"))(
        functools.partial(build_detector, _kind)
    )


def coco_model_name(kind: str, backbone: str, weights: str) -> str | None:
    """torchvision's COCO model for ``weights`` (``None`` for a file); an error when none exists."""
    if is_weights_file(weights):
        return None
    try:
        return COCO_MODELS[(kind, backbone)]
    except KeyError:
        available = ", ".join(f"{k} + {b}" for k, b in COCO_MODELS)
        raise ValueError(
            f"torchvision has no COCO-trained {kind} with a {backbone} backbone (it has: {available}). "
            "Use backbone_weights (ImageNet) for this backbone, or give weights as a file path."
        ) from None


def load_detector_weights(model: GeneralizedRCNN, weights: str, kind: str, backbone: str) -> list[str]:
    """COCO weights by torchvision name (``DEFAULT``, ``COCO_V1``) or a file; heads of another shape stay new."""
    return load_matching(model, state_dict_for(weights, coco_model_name(kind, backbone, weights) or kind))


def load_backbone_weights(model: GeneralizedRCNN, weights: str, backbone: str) -> list[str]:
    """ImageNet classifier weights (``IMAGENET1K_V1``, ``DEFAULT`` or a file) into the backbone body; a timm
    backbone's through timm (``DEFAULT``, a tag, ``hf-hub:<repo>`` or a file)."""
    if load_timm_weights(model.backbone, weights):
        return []
    state = state_dict_for(weights, backbone)
    if backbone.startswith("mobilenet"):  # the body is the classifier's ``features`` block
        state = {k.removeprefix("features."): v for k, v in state.items()}
    return load_matching(model.backbone.body, state)


@contextmanager
def _heads_training(model: GeneralizedRCNN) -> Iterator[None]:
    """torchvision heads compute losses only in training mode; they hold no batch norm or dropout."""
    modes = model.rpn.training, model.roi_heads.training
    model.rpn.train()
    model.roi_heads.train()
    try:
        yield
    finally:
        model.rpn.train(modes[0])
        model.roi_heads.train(modes[1])


def detect(
    model: GeneralizedRCNN,
    images: Sequence[Tensor],
    targets: list[dict[str, Tensor]] | None = None,
    output_sizes: Sequence[Sequence[int]] | None = None,
) -> tuple[dict[str, Tensor], list[dict[str, Tensor]] | None]:
    """Losses (with ``targets``) and, in eval mode, detections, from one pass through the backbone.

    torchvision gives losses only in training mode and detections only in eval mode; validation
    wants both, so the heads compute the losses on the eval-mode features. Detections come back
    in ``output_sizes`` pixels (default: the input sizes), masks as 0/1 ``uint8``.

    Args:
        images: CxHxW tensors in [0, 1] (1-channel images are repeated to 3).
        targets: per image ``boxes`` (xyxy pixels), ``labels`` (1..num_classes) and, for Mask
            R-CNN, ``masks``.
        output_sizes: (height, width) per image to map detections to, e.g. the files' sizes.
    """
    input_sizes = [tuple(image.shape[-2:]) for image in images]
    images = [image.expand(3, -1, -1) if image.shape[0] == 1 else image for image in images]
    batch, resized_targets = model.transform(list(images), targets)
    features = model.backbone(batch.tensors)
    losses: dict[str, Tensor] = {}
    if targets is not None:
        with _heads_training(model):
            proposals, rpn_losses = model.rpn(batch, features, resized_targets)
            _, head_losses = model.roi_heads(features, proposals, batch.image_sizes, resized_targets)
        losses = {**rpn_losses, **head_losses}
    if model.training:
        return losses, None
    proposals, _ = model.rpn(batch, features)
    detections, _ = model.roi_heads(features, proposals, batch.image_sizes)
    sizes = [tuple(int(v) for v in s) for s in output_sizes] if output_sizes is not None else input_sizes
    detections = model.transform.postprocess(detections, batch.image_sizes, sizes)
    for found in detections:
        if "masks" in found:  # Nx1xHxW probabilities -> NxHxW 0/1
            found["masks"] = (found["masks"][:, 0] > MASK_THRESHOLD).to(torch.uint8)
    return losses, detections
