"""A command run on several processes succeeds or fails as a whole, and a failure names its rank.

Every process of a multi-process run (DDP under Lightning's own launcher, torchrun or SLURM) runs the
command by itself. An error on one rank ends that rank only: the others would finish their share and
exit 0 (a predict with half the predictions) or wait for it. So a failing rank leaves its one-line
reason in the process group's key-value store (which every rank reaches), and at the end of each
command every rank waits until all ranks are done, or fails naming the rank that did not make it.
"""

from __future__ import annotations

import os
import time

from visiontasks.errors import VisionTasksError

PREFIX = "visiontasks"
WAIT_S = float(os.environ.get("VISIONTASKS_RANK_WAIT_S", 1800))  # as long as a collective waits by default
_commands = 0  # commands finished by this process: every rank runs the same sequence, so the keys agree


class RankFailed(VisionTasksError):
    """Another process of this run failed; the message is its rank and its own one-line reason."""


def _group() -> tuple[int, int] | None:
    """(rank, world size) when this process is one of several in an initialised process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


def _store():
    import torch.distributed as dist

    return dist.distributed_c10d._get_default_store()


def rank_prefix() -> str:
    """``"rank N: "`` in a multi-process run, else nothing: the start of this process's error line."""
    group = _group()
    return f"rank {group[0]}: " if group else ""


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    reason = text[0] if text else ""
    return reason if isinstance(error, VisionTasksError) else f"{type(error).__name__}: {reason}".rstrip(": ")


def report_failure(error: BaseException) -> None:
    """Tell the other ranks that this one failed, and why (a no-op in a single process)."""
    group = _group()
    if group is None or isinstance(error, RankFailed):
        return
    try:
        _store().set(f"{PREFIX}/{_commands}/failed/{group[0]}", one_line(error))
    except Exception:  # noqa: BLE001 - the store's host is gone: the launcher reports that rank's end
        pass


def _failures(store, world: int) -> list[str]:
    keys = [f"{PREFIX}/{_commands}/failed/{rank}" for rank in range(world)]
    return [f"rank {rank} failed: {store.get(key).decode()}" for rank, key in enumerate(keys) if store.check([key])]


def failure_elsewhere(wait_s: float = 3.0) -> RankFailed | None:
    """The failure another rank reported, waiting a moment for it: why a collective broke under this rank."""
    group = _group()
    if group is None:
        return None
    try:
        store, deadline = _store(), time.monotonic() + wait_s
        while True:
            found = [line for line in _failures(store, group[1]) if not line.startswith(f"rank {group[0]} ")]
            if found or time.monotonic() > deadline:
                return RankFailed(found[0]) if found else None
            time.sleep(0.2)
    except Exception:  # noqa: BLE001 - no store to ask
        return None


def wait_for_all_ranks() -> None:
    """At the end of a command: return once every rank is done; raise :class:`RankFailed` when one failed."""
    global _commands
    group = _group()
    if group is None:
        return
    rank, world = group
    store, done, left = _store(), f"{PREFIX}/{_commands}/done", f"{PREFIX}/{_commands}/left"
    try:
        store.add(done, 1)
        deadline = time.monotonic() + WAIT_S
        while True:
            failures = _failures(store, world)
            if failures:
                raise RankFailed(failures[0])
            finished = store.add(done, 0)
            if finished == world:
                store.add(left, 1)
                while rank == 0 and store.add(left, 0) < world and time.monotonic() < deadline:
                    time.sleep(0.05)  # rank 0 may host the store: the others read it before it goes
                return
            if time.monotonic() > deadline:
                raise RankFailed(f"{world - finished} of {world} ranks did not finish within {WAIT_S:.0f} s "
                                 "(set VISIONTASKS_RANK_WAIT_S to wait longer).")  # fmt: skip
            time.sleep(0.2)
    except RankFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the store lives in rank 0 (or the launcher): it ended
        raise RankFailed(f"rank 0 ended before this rank finished ({one_line(error)}).") from None
    finally:
        _commands += 1


def end_started_processes(trainer) -> None:
    """After a failure on rank 0 of Lightning's own launcher: end the processes it started, which might otherwise
    wait for it in a collective until the time-out (their own failure, if any, is printed already)."""
    procs = getattr(getattr(getattr(trainer, "strategy", None), "launcher", None), "procs", None) or []
    deadline = time.monotonic() + 2.0  # a moment to report their own failure first
    while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
