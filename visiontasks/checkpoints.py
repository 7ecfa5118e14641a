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
from pathlib import Path
from typing import IO, Any

import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from visiontasks.errors import CheckpointError

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


class BestCheckpoint(ModelCheckpoint):
    """The best checkpoint by the task's monitored metric: ``best-epochNNN.ckpt``."""

    def __init__(self, monitor: str, mode: str) -> None:
        super().__init__(
            monitor=monitor, mode=mode, save_top_k=1, filename="best-epoch{epoch:03d}", auto_insert_metric_name=False
        )


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt``: the newest state, rewritten at the end of every epoch whatever the metric did."""

    def __init__(self) -> None:
        super().__init__(monitor=None, save_top_k=1, filename="last", enable_version_counter=False)


class StepCheckpoint(ModelCheckpoint):
    """``last.ckpt`` also every ``every_n_train_steps`` steps, for long epochs: add it to the Trainer's callbacks
    (``--trainer.callbacks+=visiontasks.StepCheckpoint --trainer.callbacks.every_n_train_steps=500``).
    A run resumed from such a checkpoint goes on mid-epoch, as if never stopped."""

    def __init__(self, every_n_train_steps: int) -> None:
        super().__init__(monitor=None, save_top_k=1, filename="last", enable_version_counter=False,
                         every_n_train_steps=every_n_train_steps)  # fmt: skip


def find_checkpoint(root: str | Path, experiment: str, kind: str) -> Path:
    """The newest ``last.ckpt`` (``kind="last"``) or best checkpoint among the runs of ``experiment``."""
    pattern = f"{experiment}/*/{FOLDER}/{PATTERNS[kind]}"
    found = list(Path(root).glob(pattern))
    if not found:
        raise CheckpointError(
            f"--ckpt_path {kind}: no checkpoint found at {Path(root) / pattern} (the runs of experiment {experiment!r}); "
            "train first with `fit`, give a checkpoint's path, or name the experiment with --experiment."
        )
    return max(found, key=lambda p: p.stat().st_mtime)


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
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file that is no checkpoint
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: not a checkpoint that can be loaded safely ({reason[:200]}). Give a .ckpt written by "
            "visiontasks/Lightning; files holding pickled code are refused."
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


def saved_inputs(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """How the checkpoint's data prepared images; for checkpoints of older versions, the training size that the
    data module's state holds (no eval transforms were kept then)."""
    kept = checkpoint.get(SECTION, {}).get("inputs")
    if kept is not None:
        return kept
    state = next((v for v in checkpoint.values() if isinstance(v, dict) and "image_size" in v and "state_dict" not in v), None)
    return None if state is None else {"image_size": state["image_size"]}


def check_fits(path: str | Path, task: Any) -> None:
    """Say clearly when ``path`` was made by another kind of task or for other classes."""
    checkpoint = read_checkpoint(path)
    made_by = checkpoint.get(SECTION, {}).get("task")
    if made_by and made_by != type(task).__name__:
        raise CheckpointError(
            f"{path}: this checkpoint is of a {made_by}, but the config builds a {type(task).__name__}; "
            "use the config the checkpoint was trained with."
        )
    saved = checkpoint.get("hyper_parameters", {})
    own = getattr(task, "hparams", {})
    for name in CHECKED_HPARAMS:
        if name in saved and name in own and saved[name] is not None and own[name] is not None and saved[name] != own[name]:
            raise CheckpointError(
                f"{path}: the checkpoint has {name}={saved[name]!r} but the config and data give {own[name]!r}; "
                "use the data and config the checkpoint was trained with."
            )
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: holds no model weights (no state_dict); is it a weights file? Pass it as --model.init_args.weights.")
