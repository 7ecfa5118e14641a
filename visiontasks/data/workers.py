"""How many data loader workers a machine affords (``num_workers: auto``)."""

from __future__ import annotations

import os

MAX_WORKERS = 8  # beyond this, workers mostly add memory and start-up time


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity, which containers and SLURM set), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def auto_workers(devices: int = 1) -> int:
    """Workers per device: the cores left after one main process per device, shared among the devices.

    ``0`` (load in the main process) when no core is left over, as on a 2-core laptop with 2 devices.
    """
    devices = max(1, devices)
    return max(0, min(MAX_WORKERS, (usable_cpus() - devices) // devices))
