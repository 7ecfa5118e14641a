"""Weights & Biases without a login: go offline and say how to upload, instead of prompting."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse


def has_wandb_login() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def choose_wandb_mode(run_folder: str | Path = "runs/<experiment>/<run>") -> str:
    """Set ``WANDB_MODE=offline`` when there is no login and no mode was chosen; return the mode."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if has_wandb_login():
        return "online"
    os.environ["WANDB_MODE"] = "offline"
    print(
        "W&B: no login found, so this run logs offline. Upload it later with "
        f"`wandb sync {run_folder}/wandb/offline-run-*` (after `wandb login`), "
        "or set WANDB_MODE=disabled to turn W&B off."
    )
    return "offline"
