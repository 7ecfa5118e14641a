"""Shared test set-up: every test runs in its own folder, offline, with W&B disabled."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from importlib.metadata import version

import pytest
import torch
import wandb
from packaging.version import Version
from helpers import RESUMABLE, remove_checkpoints

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm weights come from the Hugging Face cache only, never a download
CORES = len(os.sched_getaffinity(0))  # the cores this process may use
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # pytest-xdist's processes share them
THREADS = max(1, min(2, CORES // WORKERS))  # more threads than cores makes torch's workers wait on each other
torch.set_num_threads(THREADS)
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # the commands tests start (DDP ranks, torchrun) too


@pytest.hookimpl(optionalhook=True)  # called by pytest-xdist, when installed
def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one test process per core, at most 4 (each holds torch and its models in memory)."""
    return max(1, min(4, CORES))


def pytest_configure(config) -> None:
    """Refuse ``--dist loadgroup`` where it does not group: pytest 9.2 with pytest-xdist <= 3.8
    (pytest-xdist#1386). Each test process would make the module fixtures again: silently slower."""
    if config.getoption("dist", "no") != "loadgroup":
        return
    pytest_version, xdist_version = Version(pytest.__version__), Version(version("pytest-xdist"))
    if pytest_version >= Version("9.2.0.dev0") and xdist_version <= Version("3.8.0"):
        raise pytest.UsageError(
            f"pytest {pytest_version} keeps pytest-xdist {xdist_version} from grouping the tests marked xdist_group "
            "(pytest-xdist#1386): pip install 'pytest<9.2' (as the test extra pins), or run with -n 0."
        )


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    yield
    if wandb.run is not None:  # a later WandbLogger would otherwise reuse this test's run
        wandb.finish()
    wandb.teardown()  # wandb keeps its first mode (e.g. disabled) process-wide until torn down
    remove_checkpoints(tmp_path)


@pytest.fixture(scope="session")
def uninterrupted_run(tmp_path_factory) -> Path:
    """The last checkpoint of :data:`helpers.RESUMABLE` never stopped, made once for the kill and signal tests
    (marked ``xdist_group("resume")`` so one test process runs them all)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    env = dict(os.environ, WANDB_MODE="disabled")
    subprocess.run([*RESUMABLE, "--experiment=whole"], env=env, check=True, capture_output=True, timeout=600, cwd=folder)
    (run,) = (folder / "runs" / "whole").iterdir()
    return run / "checkpoints" / "last.ckpt"
