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
from typing import TYPE_CHECKING, Any, Literal

from visiontasks.errors import ExportError

if TYPE_CHECKING:  # torch, Lightning and the tasks are imported when a file is written: `visiontasks.export` is light
    from torch import Tensor, nn

    from visiontasks.tasks.export_graph import ExportGraph

__all__ = ["ExportError", "export"]

log = logging.getLogger(__name__)

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 18


def sidecar(task: Any, fmt: ExportFormat, graph: ExportGraph, size: tuple[int, int] | None) -> dict[str, Any]:
    """What a user needs to run the exported file elsewhere."""
    settings = task.input_settings()
    channels = int(task.hparams.in_channels)
    detector, any_size = graph.one_image, graph.any_size
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
        "outputs": graph.outputs,
    }
    from visiontasks.models.tta import tta_views

    views = tta_views(task.hparams.get("tta"))
    if views:  # the task averages views at test and predict; the file holds one forward pass
        info["tta"] = {"views": list(views), "in_exported_model": False,
                       "how": "average the softmax of the image and of each view (mapped back for masks) yourself"}  # fmt: skip
    return info | graph.sidecar


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
    graph: ExportGraph = task.export_graph()
    training, device = task.training, task.device
    task.cpu().eval()
    graph.module.eval()  # the wrapper too: torch.onnx warns of a module in training mode
    size = task.input_settings().get("image_size")
    size = tuple(size) if size else None
    import torch

    try:
        if graph.one_image:  # torchvision's detector: one image in, its detections out
            _export_detector(graph.module, format, path, graph.outputs, size or (64, 64))
        else:
            example = torch.rand(2, int(task.hparams.in_channels), *(size or (64, 64)))
            _export_network(graph.module, format, path, graph.outputs, example, graph.any_size)
    finally:
        task.to(device).train(training)
    path.with_suffix(".json").write_text(json.dumps(sidecar(task, format, graph, size), indent=2))
    return path


def _export_network(module: nn.Module, fmt: ExportFormat, path: Path, outputs: dict[str, str], example: Tensor, any_size: bool) -> None:
    import torch
    from pytorch_lightning.core.module import _jit_is_scripting

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
    import torch

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
