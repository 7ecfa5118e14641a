"""Where an experiment's files live, and finding them again.

One experiment, one place: ``runs/<experiment>/<run id>/`` holds ``config.yaml``, ``checkpoints/``
(``last.ckpt`` every epoch, ``best-epochNNN.ckpt`` by the task's monitor, see :mod:`visiontasks.checkpoints`),
the logger's files and, made later with that run's checkpoint, ``validate/``, ``test/`` and ``predict/<time>/``.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from visiontasks import checkpoints
from visiontasks.errors import OptionError

RUNS_DIR = "runs"
STAGE_FOLDERS = {"fit": "", "validate": "validate", "test": "test", "predict": "predict", "export": "export"}


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def launched_rank() -> int:
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
    def new(cls, root: str | Path, experiment: str, stage: str, run_id: str | None = None) -> RunFolder:
        """A new run of ``experiment``, named ``run_id`` or by the time (``-2``, ``-3``... when that name is taken)."""
        inherited = os.environ.get(cls.ENV)
        if inherited and launched_rank() != 0:
            return cls.of(Path(inherited), stage)
        if run_id:
            return cls(root, experiment, run_id, stage)
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
        return f"{self.experiment}-{self.run_id}".replace("/", "-")

    @property
    def group(self) -> str:
        """The W&B group: the experiment, or its runs made together (``cv-<time>/fold-1``: the cross-validation)."""
        parent = Path(self.run_id).parent.as_posix()
        return self.experiment if parent == "." else f"{self.experiment}/{parent}"

    def announce(self) -> None:
        """Make the folder (on rank zero) and tell the processes a launcher starts after this one which run they belong to."""
        if launched_rank() == 0:
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
                callback.dirpath = os.path.realpath(self.path / checkpoints.FOLDER)  # as Lightning keeps it, for resume


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
