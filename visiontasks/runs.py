"""Where an experiment's files live, and finding them again.

One experiment, one place: ``runs/<experiment>/<run id>/`` holds ``config.yaml``, ``checkpoints/``
(``last.ckpt`` every epoch, ``best-epochNNN.ckpt`` by the task's monitor), the logger's files and,
made later with that run's checkpoint, ``validate/``, ``test/`` and ``predict/<time>/``.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from visiontasks.errors import CheckpointError, OptionError

RUNS_DIR = "runs"
STAGE_FOLDERS = {"fit": "", "validate": "validate", "test": "test", "predict": "predict", "export": "export"}
CHECKPOINT_PATTERNS = {"last": "last.ckpt", "best": "best*.ckpt"}


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


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _launched_rank() -> int:
    """This process's rank as set by a launcher (torchrun, SLURM, Lightning's own), 0 when unset."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


class RunFolder(Callback):
    """The folder of one run, handed to the Trainer so that every file of the run goes into it.

    ``stage`` says what the command does: ``fit`` writes into the run folder itself; ``validate``,
    ``test`` and ``predict`` with a run's checkpoint write into ``validate/``, ``test/`` and
    ``predict/<time>/`` inside it, beside the model that made them.
    """

    ENV = "VISIONTASKS_RUN_FOLDER"  # rank zero's choice, read by the processes a launcher starts after it

    def __init__(self, root: str | Path, experiment: str, run_id: str, stage: str) -> None:
        self.root, self.experiment, self.run_id, self.stage = Path(root), experiment, run_id, stage
        self.predict_time = timestamp()

    @classmethod
    def new(cls, root: str | Path, experiment: str, stage: str) -> RunFolder:
        """A new run of ``experiment``, named by the time (``-2``, ``-3``... when that name is taken)."""
        inherited = os.environ.get(cls.ENV)
        if inherited and _launched_rank() != 0:
            return cls.of(Path(inherited), stage)
        base = timestamp()
        run_id, count = base, 1
        while (Path(root) / experiment / run_id).exists():
            count += 1
            run_id = f"{base}-{count}"
        return cls(root, experiment, run_id, stage)

    @classmethod
    def of(cls, path: Path, stage: str) -> RunFolder:
        """The run that lives at ``path`` (``<root>/<experiment>/<run id>``)."""
        return cls(path.parent.parent, path.parent.name, path.name, stage)

    @property
    def path(self) -> Path:
        return self.root / self.experiment / self.run_id

    @property
    def stage_dir(self) -> Path:
        folder = self.path / STAGE_FOLDERS[self.stage]
        return folder / self.predict_time if self.stage == "predict" else folder

    @property
    def wandb_id(self) -> str:
        """The W&B run id: the same for every command on this run, so test and predict resume the fit's run."""
        return f"{self.experiment}-{self.run_id}"

    def announce(self) -> None:
        """Make the folder (on rank zero) and tell the processes a launcher starts after this one which run they belong to."""
        if _launched_rank() == 0:
            try:
                self.stage_dir.mkdir(parents=True, exist_ok=True)
                probe = self.stage_dir / ".write-test"
                probe.touch()
                probe.unlink()
            except OSError as error:
                raise OptionError(
                    f"--runs_dir {self.root}: cannot write the run folder {self.stage_dir} ({error.strerror}); "
                    "give a writable folder with --runs_dir."
                ) from None
        os.environ[self.ENV] = str(self.path)

    def remove_if_empty(self) -> None:
        """After a command that failed before writing anything, leave no empty folder behind."""
        for folder in (self.stage_dir, self.path, self.path.parent):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # every rank must agree with rank zero (ranks of a multi-node run may have picked other times)
        chosen = Path(trainer.strategy.broadcast(str(self.path)))
        self.root, self.experiment, self.run_id = chosen.parent.parent, chosen.parent.name, chosen.name
        self.predict_time = trainer.strategy.broadcast(self.predict_time)
        if trainer.is_global_zero:
            self.stage_dir.mkdir(parents=True, exist_ok=True)
        # a resumed run writes into its own checkpoints/ again, by design: Lightning's warning would suggest a mistake
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = os.path.realpath(self.path / "checkpoints")  # as Lightning keeps it, for resume


def _run_folder(trainer: pl.Trainer) -> RunFolder | None:
    return next((c for c in trainer.callbacks if isinstance(c, RunFolder)), None)


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder of the run: the CLI's run folder; in plain Python, the folder of the checkpoints or the logger."""
    run = _run_folder(trainer)
    if run is not None:
        return run.path
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.dirpath is not None:
        return Path(checkpoint.dirpath).parent
    if trainer.loggers and trainer.loggers[0].log_dir:
        return Path(trainer.loggers[0].log_dir)
    return Path(trainer.default_root_dir)


def stage_dir(trainer: pl.Trainer) -> Path:
    """Where the current command writes: the run folder when fitting, else its ``validate/``, ``test/``, ``predict/...``."""
    run = _run_folder(trainer)
    if run is not None:
        return run.stage_dir
    return run_dir(trainer) / STAGE_FOLDERS.get(trainer.state.fn.value if trainer.state.fn else "fit", "")


def find_checkpoint(root: str | Path, experiment: str, kind: str) -> Path:
    """The newest ``last.ckpt`` (``kind="last"``) or best checkpoint among the runs of ``experiment``."""
    pattern = f"{experiment}/*/checkpoints/{CHECKPOINT_PATTERNS[kind]}"
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
    if folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file():
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


def check_checkpoint_fits(path: str | Path, task: pl.LightningModule) -> None:
    """Say clearly when ``path`` was made by another kind of task or for other classes."""
    checkpoint = read_checkpoint(path)
    made_by = checkpoint.get("visiontasks", {}).get("task")
    if made_by and made_by != type(task).__name__:
        raise CheckpointError(
            f"{path}: this checkpoint is of a {made_by}, but the config builds a {type(task).__name__}; "
            "use the config the checkpoint was trained with."
        )
    saved = checkpoint.get("hyper_parameters", {})
    own = getattr(task, "hparams", {})
    for name in ("num_classes", "class_names", "in_channels", "model"):
        if name in saved and name in own and saved[name] is not None and own[name] is not None and saved[name] != own[name]:
            raise CheckpointError(
                f"{path}: the checkpoint has {name}={saved[name]!r} but the config and data give {own[name]!r}; "
                "use the data and config the checkpoint was trained with."
            )
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: holds no model weights (no state_dict); is it a weights file? Pass it as --model.init_args.weights.")
