"""A trained task as one file that runs without visiontasks: ONNX or TorchScript, with a sidecar JSON.

Classification, localization and segmentation export their forward pass with the normalisation
inside the graph and the scores as probabilities; the batch axis is dynamic (and, for the fully
convolutional segmentation models, height and width too). Detection and instance segmentation
export torchvision's detector, which resizes, normalises and maps boxes back to the input's pixels
itself. The JSON beside the model file says what goes in and how to read what comes out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from pytorch_lightning.core.module import _jit_is_scripting
from torchvision.ops import box_convert

from visiontasks.errors import VisionTasksError

log = logging.getLogger(__name__)

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 18


class ExportError(VisionTasksError):
    """The model cannot be exported in the asked format."""


class Probabilities(nn.Module):
    """Classification and segmentation: the task's class probabilities (softmax, or sigmoid when multi-label)."""

    def __init__(self, task: nn.Module, sigmoid: bool = False) -> None:
        super().__init__()
        self.task, self.sigmoid = task, sigmoid

    def forward(self, images: Tensor) -> Tensor:
        logits = self.task(images)
        return logits.sigmoid() if self.sigmoid else logits.softmax(dim=1)


class LocalizerOutputs(nn.Module):
    """Localization: class probabilities and the box as ``x_min, y_min, x_max, y_max`` fractions of the image."""

    def __init__(self, task: nn.Module) -> None:
        super().__init__()
        self.task = task

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        logits, boxes = self.task(images)
        return logits.softmax(dim=1), box_convert(boxes, "cxcywh", "xyxy")


def exported_graph(task: Any) -> tuple[nn.Module, dict[str, str], bool]:
    """The module to export, its outputs (name: how to read it) and whether height and width may vary."""
    from visiontasks.tasks import ClassificationTask, DetectionTask, LocalizationTask, SegmentationTask

    classes = "in class_names order"
    if isinstance(task, DetectionTask):
        outputs = {"boxes": "N x 4: x_min, y_min, x_max, y_max in the input image's pixels",
                   "labels": f"N: class index + 1 (0 is the background), so class_names[label - 1]",
                   "scores": "N: confidence, highest first"}  # fmt: skip
        if task.masks:
            outputs["masks"] = "N x 1 x H x W: mask probabilities at the input's size; > 0.5 is the object"
        return task.model, outputs, True
    if isinstance(task, LocalizationTask):
        return LocalizerOutputs(task), {
            "probabilities": f"B x num_classes: softmax {classes}",
            "boxes": "B x 4: x_min, y_min, x_max, y_max as fractions of the image: multiply by the original width/height",
        }, False
    if isinstance(task, ClassificationTask):
        multi = bool(task.hparams.multilabel)
        kind = "sigmoid per class (multi-label: each >= 0.5 is a label)" if multi else "softmax"
        return Probabilities(task, multi), {"probabilities": f"B x num_classes: {kind} {classes}"}, False
    if isinstance(task, SegmentationTask):
        return Probabilities(task), {
            "probabilities": f"B x num_classes x H x W: softmax {classes}; resize to the original size, then argmax per pixel",
        }, True
    raise ExportError(f"{type(task).__name__} cannot be exported (no network to export: it is not trained by gradient).")


def sidecar(task: Any, fmt: ExportFormat, outputs: dict[str, str], size: tuple[int, int] | None, any_size: bool) -> dict[str, Any]:
    """What a user needs to run the exported file elsewhere."""
    from visiontasks.tasks import DetectionTask

    settings = task.input_settings()
    channels = int(task.hparams.in_channels)
    detector = isinstance(task, DetectionTask)
    info: dict[str, Any] = {
        "task": type(task).__name__,
        "model": task.hparams.get("model"),
        "format": fmt,
        "class_names": list(task.class_names),
        "input": {
            "name": "image" if detector else "images",
            "shape": [3, "height", "width"] if detector else ["batch", channels, *(("height", "width") if any_size else size or ("height", "width"))],
            "channels": 3 if detector else channels,
            "dtype": "float32",
            "values": "RGB (or grey) pixels / 255, in [0, 1]; the normalisation is inside the model",
            "training_size": list(size) if size else None,
            "resize": (
                "none: give the image as it is; the detector resizes it and maps boxes back to its pixels"
                if detector
                else "resize the image to training_size (height, width) first" if size else "none (trained on images of their own size)"
            ),
            "eval_transforms": settings.get("eval_transforms"),
        },
        "outputs": outputs,
    }
    if detector:
        info["category_ids"] = list(task.category_ids)
        info["torchscript_call"] = "model([image]) returns (losses, detections); detections[0] holds boxes, labels, scores"
    return info


def export(
    task: Any,
    format: ExportFormat = "onnx",
    output: str | Path | None = None,
) -> Path:
    """Write ``task``'s network as ONNX or TorchScript to ``output`` (default ``export/model.onnx`` / ``.pt``), and
    ``<output>.json`` beside it; returns the model file's path. The task is exported on the CPU, in eval mode."""
    if format not in SUFFIXES:
        raise ExportError(f"--format {format}: choose onnx or torchscript.")
    if format == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as error:
            raise ExportError(f"ONNX export needs {error.name}: pip install 'visiontasks[export]' (or use --format torchscript).") from None
    path = Path(output) if output is not None else Path("export") / f"model{SUFFIXES[format]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    module, outputs, any_size = exported_graph(task)
    training, device = task.training, task.device
    task.cpu().eval()
    module.eval()  # the wrapper too: torch.onnx warns of a module in training mode
    size = task.input_settings().get("image_size")
    size = tuple(size) if size else None
    try:
        if outputs.get("boxes", "").startswith("N"):  # torchvision's detector: one image in, its detections out
            _export_detector(module, format, path, outputs, size or (64, 64))
        else:
            example = torch.rand(2, int(task.hparams.in_channels), *(size or (64, 64)))
            _export_network(module, format, path, outputs, example, any_size)
    finally:
        task.to(device).train(training)
    path.with_suffix(".json").write_text(json.dumps(sidecar(task, format, outputs, size, any_size), indent=2))
    return path


def _export_network(module: nn.Module, fmt: ExportFormat, path: Path, outputs: dict[str, str], example: Tensor, any_size: bool) -> None:
    if fmt == "torchscript":
        with torch.no_grad(), _jit_is_scripting():  # the wrapped LightningModule then has no Trainer to ask for
            torch.jit.trace(module, example).save(str(path))
        return
    free = torch.export.Dim.DYNAMIC
    axes = {0: free, 2: free, 3: free} if any_size else {0: free}
    torch.onnx.export(module, (example,), str(path), input_names=["images"], output_names=list(outputs),
                      dynamic_shapes={"images": axes}, opset_version=OPSET, dynamo=True, external_data=False,
                      verbose=False)  # fmt: skip


def _export_detector(model: nn.Module, fmt: ExportFormat, path: Path, outputs: dict[str, str], size: tuple[int, int]) -> None:
    if fmt == "torchscript":
        torch.jit.script(model).save(str(path))
        return
    example = torch.rand(3, *size)
    dynamic = {"image": {1: "height", 2: "width"}, **{name: {0: "objects"} for name in outputs}}
    try:  # torchvision's detectors export through the TorchScript-based exporter (opset >= 11)
        torch.onnx.export(model, ([example],), str(path), input_names=["image"], output_names=list(outputs),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)  # fmt: skip
    except Exception as error:  # noqa: BLE001 - torch raises many kinds; the user needs the way out
        raise ExportError(f"this detector cannot be exported to ONNX here ({type(error).__name__}: {str(error)[:200]}); "
                          "use --format torchscript.") from error  # fmt: skip
