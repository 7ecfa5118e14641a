"""Weights for timm models: a file (safetensors or a PyTorch state dict, read safely), or timm's pretrained
weights from the Hugging Face cache (``DEFAULT``, a tag such as ``a1_in1k``, or ``hf-hub:<repo>``).

The tensors go through timm's own loader into a twin of each timm network of the model (built with the same
arguments, see :func:`~visiontasks.models.timm_models.remember`): it maps a classifier's weights onto an
encoder's (``features_only``), drops a head of another size and adapts the first layer to the input channels.
Offline (``HF_HUB_OFFLINE=1``) the cache is the only source; a missing file is one line saying how to fetch it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from visiontasks.errors import DataError
from visiontasks.models.timm_models import pretrained_config, timm_parts
from visiontasks.models.weights import is_weights_file, load_matching, read_weights_file

log = logging.getLogger(__name__)
HUB = "hf-hub:"
HUB_FILES = ("model.safetensors", "pytorch_model.bin")
"""The weight files of timm's repositories on the Hub, in the order timm looks for them."""


def hub_cache() -> Path:
    """The Hugging Face cache in effect now (``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_repo(weights: str, arch: str) -> str:
    """The Hub repository ``weights`` names for ``arch``: ``hf-hub:<repo>`` as given, ``DEFAULT`` timm's default
    weights of the architecture, any other word a tag of it (``a1_in1k``)."""
    if weights.startswith(HUB):
        return weights.removeprefix(HUB)
    arch = arch.partition(".")[0] if weights != "DEFAULT" else arch
    name = arch if weights == "DEFAULT" else f"{arch}.{weights}"
    repo = pretrained_config(name).get("hf_hub_id") if _has_config(name) else None
    if not repo:
        raise DataError(
            f"weights {weights!r}: timm has no pretrained weights {name!r} on the Hub; give DEFAULT, a tag of "
            f"{arch} (`timm.list_pretrained('{arch}*')`), hf-hub:<repo> or a weights file."
        )
    return repo


def _has_config(name: str) -> bool:
    import timm

    try:
        return timm.models.get_pretrained_cfg(name) is not None
    except (RuntimeError, ValueError):
        return False


def hub_file(repo: str) -> Path:
    """The weights file of ``repo`` from the Hugging Face cache, downloaded there first unless offline."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cache = hub_cache()
    for filename in HUB_FILES:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache)
        if isinstance(found, str):
            return Path(found)
    why = "HF_HUB_OFFLINE is set"
    if not offline():
        for filename in HUB_FILES:
            try:
                return Path(hf_hub_download(repo, filename, cache_dir=cache))
            except Exception as error:  # no such file, no network, no such repository: try the next, then say so
                why = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    raise DataError(
        f"timm weights hf-hub:{repo} are not in the Hugging Face cache {cache} ({why}): on a machine with internet "
        f"run `hf download {repo}` and copy its cache here (or point HF_HUB_CACHE at it), or give the weights file's path."
    )


def read_timm_weights(weights: str, arch: str) -> dict[str, torch.Tensor]:
    """The tensors ``weights`` names: a local file, else timm's pretrained weights of ``arch`` from the cache."""
    if is_weights_file(weights) and not weights.startswith(HUB):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: weights file not found.")
        return read_weights_file(path)
    return read_weights_file(hub_file(hub_repo(weights, arch)))


def load_timm_weights(model: nn.Module, weights: str) -> bool:
    """Load ``weights`` into every timm network inside ``model``; ``False`` when it holds none.

    A checkpoint of this package (its keys start with ``model.``) fills the whole model, or else its timm
    networks (a classifier's checkpoint in a localizer); anything else is timm's format and goes through timm's
    loader.
    """
    parts = timm_parts(model)
    if not parts:
        return False
    import timm

    state = read_timm_weights(weights, parts[0][1]["model_name"])
    if any(key.startswith("model.") for key in state):
        for target in (model, *(part for part, _ in parts)):
            try:
                load_matching(target, state)
                return True
            except ValueError:
                continue
        raise DataError(f"{weights}: none of its tensors fit this model: a checkpoint of another architecture?")
    for part, arguments in parts:
        twin = timm.create_model(**arguments, pretrained=True, pretrained_cfg_overlay={"state_dict": state})
        own = part.state_dict()
        loaded = {key: value for key, value in twin.state_dict().items() if key in own}
        part.load_state_dict(loaded, strict=False)
        log.info("timm weights %s: %d of %d tensors of %s loaded", weights, len(loaded), len(own), arguments["model_name"])
    return True
