"""Pretrained weights by torchvision name or local file, loaded into models of other shapes.

Offline, a torchvision download fails fast with the path where the file can be placed by hand.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
import torchvision
from torch import nn

from visiontasks.errors import CheckpointError, DataError

log = logging.getLogger(__name__)


def _torchvision_weights(name: str, arch: str) -> torchvision.models.WeightsEnum:
    try:
        if "." in name:
            return torchvision.models.get_weight(name)
        return torchvision.models.get_model_weights(arch)[name]
    except (KeyError, ValueError, AttributeError) as error:
        raise ValueError(
            f"unknown weights {name!r} for {arch}: give a torchvision name such as 'DEFAULT', "
            "'IMAGENET1K_V1' or 'ResNet18_Weights.IMAGENET1K_V1', or a path to a .pth/.ckpt file"
        ) from error


def _download(weights: torchvision.models.WeightsEnum) -> dict[str, torch.Tensor]:
    try:
        return weights.get_state_dict(progress=False)
    except OSError as error:  # URLError and socket errors are OSErrors
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise RuntimeError(
            f"Could not download pretrained weights {weights} ({error}). On a machine with internet, download "
            f"{weights.url} and place it at {target} (or set TORCH_HOME), or pass the file's path as weights."
        ) from error


def read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, loaded safely: ``weights_only`` (tensors and plain data) or safetensors.

    A file that needs full unpickling could run code when loaded, so it is refused, not loaded.
    """
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise CheckpointError(f"{path}: reading .safetensors files needs `pip install safetensors`.") from None
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused, the file holds pickled Python objects besides tensors, which could run code when "
            f"loaded ({str(error).splitlines()[0][:160]}). Save plain weights where it came from: "
            "torch.save(model.state_dict(), path)."
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a weights file torch can read ({str(error).splitlines()[0][:160]}).") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict of named tensors.")
    return state


WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


def is_weights_file(weights: str) -> bool:
    """``weights`` names a file (existing or not), not a torchvision weights name."""
    path = Path(weights).expanduser()
    return path.is_file() or path.suffix in WEIGHT_FILE_SUFFIXES or "/" in weights


def state_dict_for(weights: str, arch: str) -> dict[str, torch.Tensor]:
    """The state dict that ``weights`` names: a local file, else a torchvision weights name."""
    path = Path(weights).expanduser()
    if path.is_file():
        return read_weights_file(path)
    if is_weights_file(weights):
        raise DataError(f"{path}: weights file not found.")
    return _download(_torchvision_weights(weights, arch))


def _adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """RGB filters for grayscale (summed) or other channel counts (mean, repeated, rescaled)."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, channels, 1, 1) * (3 / channels)


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor whose name and shape fit; adapt first-layer channels; return skipped names.

    A checkpoint of this package (keys prefixed ``model.``) loads as well as a bare state dict.
    """
    own = model.state_dict()
    if not set(state) & set(own):
        for prefix in ("model.", "module.", "backbone."):
            stripped = {k.removeprefix(prefix): v for k, v in state.items()}
            if set(stripped) & set(own):
                state = stripped
                break
    loadable, skipped = {}, []
    for key, value in state.items():
        target = own.get(key)
        if target is None:
            skipped.append(key)
        elif target.shape == value.shape:
            loadable[key] = value
        elif value.ndim == 4 and target.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            loadable[key] = _adapt_input_channels(value, target.shape[1])
        else:
            skipped.append(key)
    if not loadable:
        raise ValueError("none of the pretrained tensors fit this model: are the weights for another architecture?")
    model.load_state_dict(loadable, strict=False)
    if skipped:
        log.info("Pretrained weights: %d tensors loaded, %d left at random (e.g. the new head): %s",
                 len(loadable), len(skipped), ", ".join(skipped[:6]))
    return skipped
