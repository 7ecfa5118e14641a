"""A model folder that travels: the weights (safetensors), the task's config and class names, how its images are
prepared, and a model card (README.md with the run's metrics). ``Task.from_pretrained(folder)`` loads it; the
folder is what ``huggingface_hub.upload_folder`` pushes to the Hub (docs/backbones.md).

This module reads and writes the files only; the ``save`` command makes one from a checkpoint and
:meth:`visiontasks.tasks.base.BaseTask.from_pretrained` builds the task from one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visiontasks.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"


@dataclass
class ModelFolder:
    """What a model folder holds besides the weights.

    Args:
        task: the task's class name (``ClassificationTask``, ...).
        hparams: the task's options (``model``, ``num_classes``, ``class_names``, ...), as its checkpoint keeps them.
        inputs: how images are prepared for it (``image_size``, ``in_channels``, eval transforms).
        version: the visiontasks version that wrote it.
    """

    task: str
    hparams: dict[str, Any]
    inputs: dict[str, Any] | None
    version: str


def write_model_folder(output: str | Path, module: nn.Module, folder: ModelFolder, card: str) -> Path:
    """Write ``module``'s weights, ``folder``'s config and the model ``card`` into ``output``."""
    from safetensors.torch import save_model

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_model(module, str(output / WEIGHTS_FILE))  # shared tensors (tied weights) are written once
    config = {"task": folder.task, "visiontasks_version": folder.version, "class_names": folder.hparams.get("class_names"),
              "hyper_parameters": folder.hparams, "inputs": folder.inputs}  # fmt: skip
    (output / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
    (output / CARD_FILE).write_text(card)
    return output


def read_model_folder(path: str | Path) -> ModelFolder:
    """The config of the model folder at ``path`` (a clear error when it is none)."""
    config_file = Path(path) / CONFIG_FILE
    if not config_file.is_file() or not (Path(path) / WEIGHTS_FILE).is_file():
        raise CheckpointError(
            f"{path}: not a model folder (it needs {CONFIG_FILE} and {WEIGHTS_FILE}); make one with "
            "`python -m visiontasks save --ckpt_path <checkpoint> --output <folder>`."
        )
    config = json.loads(config_file.read_text())
    return ModelFolder(config["task"], config["hyper_parameters"], config.get("inputs"), config.get("visiontasks_version", ""))


def load_folder_weights(module: nn.Module, path: str | Path) -> None:
    """The folder's weights into ``module`` (every tensor must fit: the folder's config built it)."""
    from safetensors.torch import load_model

    load_model(module, str(Path(path) / WEIGHTS_FILE), strict=True, device=str(next(module.parameters(), torch.empty(0)).device))


def model_card(name: str, folder: ModelFolder, metrics: dict[str, float], usage: str) -> str:
    """A model card: the Hub's metadata header, what the model is, its metrics and how to load it."""
    hparams = folder.hparams
    tags = ["visiontasks", folder.task.removesuffix("Task").lower()]
    if str(hparams.get("model", "")).startswith("timm/"):
        tags.append("timm")
    rows = "\n".join(f"| {key} | {value:.4f} |" for key, value in sorted(metrics.items())) or "| (none recorded) | |"
    classes = ", ".join(hparams.get("class_names") or []) or f"{hparams.get('num_classes')} classes"
    return (
        "---\nlibrary_name: visiontasks\ntags:\n" + "".join(f"- {tag}\n" for tag in tags) + "---\n\n"
        f"# {name}\n\n"
        f"A visiontasks {folder.task} with model `{hparams.get('model')}`, {hparams.get('in_channels', 3)}-channel "
        f"input, classes: {classes}.\n\n"
        f"## Metrics of the run\n\n| metric | value |\n|---|---|\n{rows}\n\n"
        f"## Use\n\n```python\n{usage}\n```\n"
    )
