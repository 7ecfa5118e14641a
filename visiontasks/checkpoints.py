"""The checkpoint contract, in one place: what a visiontasks checkpoint holds, where it is, how it loads.

A run keeps ``<run>/checkpoints/last.ckpt`` (every epoch) and ``best-epochNNN.ckpt`` (by the task's monitor).
Beside Lightning's keys (``state_dict``, ``hyper_parameters``: the task's options, the data module's state),
a checkpoint holds a ``visiontasks`` section: the task class that made it, the package version and how its
images were prepared (``inputs``), so that loading into another task fails clearly and ``task.predict``
prepares new images alike. Checkpoints are always read with ``weights_only`` (tensors and plain data,
never code); those of older versions load too.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path
from typing import IO, Any
from weakref import proxy

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from visiontasks.errors import CheckpointError

log = logging.getLogger(__name__)

FOLDER = "checkpoints"
"""The folder of a run that holds its checkpoints."""
PATTERNS = {"last": "last.ckpt", "best": "best*.ckpt"}
"""``--ckpt_path last`` / ``best``: the file names to look for in a run's checkpoints folder."""
SECTION = "visiontasks"
"""The checkpoint's key of what this package adds: ``task``, ``version``, ``inputs``."""
RETIRED_HPARAMS = ("draw_predictions", "draw_threshold", "draw_boxes", "save_overlays")
"""Options older checkpoints may hold that tasks no longer take (drawing belongs to the predict writer)."""
CHECKED_HPARAMS = ("num_classes", "class_names", "in_channels", "model")
"""Options a checkpoint and the config restoring it must agree on."""


def save_atomically(trainer: pl.Trainer, path: str | Path, weights_only: bool = False) -> None:
    """Write the checkpoint as ``<path>.partial``, then rename it to ``path``: a full disk, a kill or any other fault
    mid-write leaves the previous file whole and never a truncated ``.ckpt`` that a later lookup would pick."""
    partial = f"{path}.partial"
    try:
        trainer.save_checkpoint(partial, weights_only=weights_only)
    except OSError as error:  # a full disk, a quota, a read-only mount: the user's to fix, said in one line
        Path(partial).unlink(missing_ok=True)
        raise CheckpointError(
            f"{path}: cannot write the checkpoint ({error.strerror or error}); the previous checkpoint is kept whole. "
            "Free space on that disk, or give --runs_dir on another one."
        ) from error
    if trainer.is_global_zero:  # only rank zero writes files
        os.replace(partial, path)


class _AtomicSaves(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose files are written by :func:`save_atomically`."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        broken = non_finite_weight(trainer.lightning_module)
        if broken is not None:  # a diverged run must not replace the last good checkpoint with broken weights
            log.warning("%s not written: the weight %s is not finite; the previous checkpoint is kept", Path(filepath).name, broken)
            return
        save_atomically(trainer, filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def non_finite_weight(module: torch.nn.Module) -> str | None:
    """The name of the first floating-point weight or buffer of ``module`` holding NaN or infinity, else ``None``."""
    return next((name for name, value in module.state_dict().items()
                 if value.is_floating_point() and not torch.isfinite(value).all()), None)  # fmt: skip


class BestCheckpoint(_AtomicSaves):
    """The best checkpoint by the task's monitored metric: ``best-epochNNN.ckpt``."""

    def __init__(self, monitor: str, mode: str) -> None:
        super().__init__(
            monitor=monitor, mode=mode, save_top_k=1, filename="best-epoch{epoch:03d}", auto_insert_metric_name=False
        )


class LastCheckpoint(_AtomicSaves):
    """``last.ckpt``: the newest state, rewritten at the end of every epoch whatever the metric did."""

    def __init__(self) -> None:
        super().__init__(monitor=None, save_top_k=1, filename="last", enable_version_counter=False)


class StepCheckpoint(_AtomicSaves):
    """``last.ckpt`` also every ``every_n_train_steps`` steps, for long epochs: add it to the Trainer's callbacks
    (``--trainer.callbacks+=visiontasks.StepCheckpoint --trainer.callbacks.every_n_train_steps=500``).
    A run resumed from such a checkpoint goes on mid-epoch, as if never stopped."""

    def __init__(self, every_n_train_steps: int) -> None:
        super().__init__(monitor=None, save_top_k=1, filename="last", enable_version_counter=False,
                         every_n_train_steps=every_n_train_steps)  # fmt: skip


FINISHED = "fit-finished"
"""A file a run's checkpoints folder holds once its ``fit`` ended normally (not stopped by a signal or a kill)."""
INTERRUPTED_KEY = "interrupted_by"
"""Set in a checkpoint saved on a signal (``SIGTERM``, ``SIGINT``): the fit did not finish."""


def _readable(path: Path) -> dict[str, Any] | None:
    try:
        return read_checkpoint(path)
    except CheckpointError as error:
        log.warning("Skipped %s", error)
        return None


def _best_score(checkpoint: dict[str, Any]) -> tuple[str, str, float] | None:
    """(monitor, mode, score) kept by the checkpoint's best-checkpoint callback, if any."""
    for key, state in checkpoint.get("callbacks", {}).items():  # Lightning's key: "BestCheckpoint{'monitor': ..., 'mode': ...}"
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_score") is not None:
            mode = "max" if "'mode': 'max'" in str(key) else "min"
            return str(state["monitor"]), mode, float(state["best_model_score"])
    return None


def find_checkpoint(root: str | Path, experiment: str, kind: str) -> Path:
    """The checkpoint ``--ckpt_path last`` or ``best`` means among the runs of ``experiment``, said in one line.

    ``last``: the newest readable ``last.ckpt`` (an interrupted one too: it is what ``fit`` resumes; the line
    says it was interrupted). ``best``: the best score of the task's monitor among the runs whose fit finished
    (the newest on a tie); when none finished, among all (the line says so). Damaged files are skipped with a
    warning naming them.
    """
    pattern = f"{experiment}/*/{FOLDER}/{PATTERNS[kind]}"
    found = sorted(Path(root).glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    readable = [(path, checkpoint) for path in found if (checkpoint := _readable(path)) is not None]
    if not readable:
        damaged = f" ({len(found)} damaged)" if found else ""
        raise CheckpointError(
            f"--ckpt_path {kind}: no checkpoint found at {Path(root) / pattern}{damaged} (the runs of experiment {experiment!r}); "
            "train first with `fit`, give a checkpoint's path, or name the experiment with --experiment."
        )
    if kind == "last":
        path, checkpoint = readable[0]
        stopped = checkpoint.get(INTERRUPTED_KEY)
        state = f"interrupted by {stopped}" if stopped else "finished" if (path.parent / FINISHED).is_file() else "unfinished"
        print(f"--ckpt_path last: {path} (run {path.parent.parent.name}, epoch {checkpoint.get('epoch')}, {state})")
        return path
    finished = [(p, c) for p, c in readable if (p.parent / FINISHED).is_file()]
    pool = finished or readable
    scored = [(p, s) for p, c in pool if (s := _best_score(c)) is not None]
    if not scored:
        path = pool[0][0]
    else:
        mode = scored[0][1][1]
        path, (monitor, _, score) = (max if mode == "max" else min)(scored, key=lambda item: item[1][2])
    among = f"among {len(finished)} finished runs" if finished else f"no run finished: among {len(readable)} unfinished runs"
    metric = f"{monitor} {score:.4g}" if scored else "no score kept"
    print(f"--ckpt_path best: {path} (run {path.parent.parent.name}, {metric}, {among})")
    return path


def run_of_checkpoint(path: Path) -> Path | None:
    """The run folder holding checkpoint ``path`` (``<run>/checkpoints/x.ckpt``), or ``None`` for a loose file."""
    folder = path.resolve().parent
    if folder.name == FOLDER and (folder.parent / "config.yaml").is_file():
        return folder.parent
    return None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, loaded safely (``weights_only``: tensors and plain data, never code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:  # what weights_only refuses: objects that would run code
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: not a checkpoint that can be loaded safely ({reason[:200]}). Give a .ckpt written by "
            "visiontasks/Lightning; files holding pickled code are refused."
        ) from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: the checkpoint is damaged (truncated or not a checkpoint: {reason[:120]}); use another one "
            "(the run's last.ckpt or best*.ckpt) or train again."
        ) from None


def loadable(path: str | Path | IO) -> str | Path | IO:
    """``path`` as Lightning can restore it into today's task: a checkpoint of an older version holding options
    tasks no longer take comes back as an in-memory copy without them; any other is returned as it is."""
    if not isinstance(path, (str, Path)):
        return path
    checkpoint = read_checkpoint(path)
    retired = set(RETIRED_HPARAMS) & set(checkpoint.get("hyper_parameters", {}))
    if not retired:
        return path
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k not in retired}
    buffer = io.BytesIO()
    torch.save({**checkpoint, "hyper_parameters": hparams}, buffer)
    buffer.seek(0)
    return buffer


def stamp(checkpoint: dict[str, Any], task: str, version: str, inputs: dict[str, Any]) -> None:
    """Record in ``checkpoint`` which task made it (by class name), the package version, and how its images were
    prepared (see :func:`saved_inputs`)."""
    checkpoint[SECTION] = {"task": task, "version": version, "inputs": inputs}


def made_by(checkpoint: dict[str, Any]) -> str | None:
    """The class name of the task that made ``checkpoint`` (``None`` for checkpoints of older versions)."""
    return checkpoint.get(SECTION, {}).get("task")


def saved_inputs(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """How the checkpoint's data prepared images; for checkpoints of older versions, the training size that the
    data module's state holds (no eval transforms were kept then)."""
    kept = checkpoint.get(SECTION, {}).get("inputs")
    if kept is not None:
        return kept
    state = next((v for v in checkpoint.values() if isinstance(v, dict) and "image_size" in v and "state_dict" not in v), None)
    return None if state is None else {"image_size": state["image_size"]}


def check_fits(path: str | Path, task: Any, options: bool = True) -> None:
    """Say clearly when ``path`` was made by another kind of task or, with ``options``, for other classes
    (``options=False`` where the task is rebuilt from the checkpoint's own options, as export does)."""
    checkpoint = read_checkpoint(path)
    maker = made_by(checkpoint)
    if maker and maker != type(task).__name__:
        raise CheckpointError(
            f"{path}: this checkpoint is of a {maker}, but the config builds a {type(task).__name__}; "
            "use the config the checkpoint was trained with."
        )
    saved = checkpoint.get("hyper_parameters", {})
    own = getattr(task, "hparams", {})
    for name in CHECKED_HPARAMS if options else ():
        if name in saved and name in own and saved[name] is not None and own[name] is not None and saved[name] != own[name]:
            raise CheckpointError(
                f"{path}: the checkpoint has {name}={saved[name]!r} but the config and data give {own[name]!r}; "
                "use the data and config the checkpoint was trained with."
            )
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: holds no model weights (no state_dict); is it a weights file? Pass it as --model.init_args.weights.")
