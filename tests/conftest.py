"""Shared test set-up: every test runs in its own folder, offline, with W&B disabled."""

from __future__ import annotations

import os

import pytest
import torch
import wandb

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(min(2, len(os.sched_getaffinity(0))))  # the cores this process may use


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    yield
    if wandb.run is not None:  # a later WandbLogger would otherwise reuse this test's run
        wandb.finish()
    wandb.teardown()  # wandb keeps its first mode (e.g. disabled) process-wide until torn down
