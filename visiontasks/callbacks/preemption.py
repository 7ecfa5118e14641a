"""SIGTERM (what SLURM and cloud schedulers send on preemption) and Ctrl+C during ``fit``: nothing lost.

Lightning notes a SIGTERM and stops after the current training step; this callback makes Ctrl+C
(SIGINT) do the same, then saves where the fit stands as the run's ``last.ckpt`` (mid-epoch: the
data module keeps how many batches of the epoch are done, so a resumed run goes on exactly as if
never stopped), prints the command that resumes, and makes the exit status say what happened:
143 for SIGTERM, 130 for SIGINT (128 + the signal), never 0. A second Ctrl+C stops at once.
Under SLURM, Lightning's own auto-requeue (SIGUSR1) works alongside (docs/faults.md).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from visiontasks.checkpoints import FINISHED, INTERRUPTED_KEY, save_atomically



def resume_command(checkpoint: Path) -> str:
    """How to go on: the same command line with ``--ckpt_path last`` when run from the CLI (the checkpoint's path
    when no config names the experiment: the run's own config comes with it), else Python's call."""
    words = sys.argv[1:]
    if words[:1] == ["fit"]:
        kept = [w for i, w in enumerate(words) if not w.startswith("--ckpt_path") and words[i - 1] != "--ckpt_path"]
        named = any(w in ("--config", "-c") or w.startswith(("--config=", "-c=")) for w in kept)
        return shlex.join([Path(sys.executable).name, "-m", "visiontasks", *kept, f"--ckpt_path={'last' if named else checkpoint}"])
    return f"trainer.fit(task, datamodule=data, ckpt_path={str(checkpoint)!r})"


class Preemption(Callback):
    """Saves a resumable checkpoint on SIGTERM or SIGINT during ``fit`` and exits non-zero (see the module)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: Any = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.signal = None
        finished = self._folder(trainer) / FINISHED
        if trainer.is_global_zero and finished.is_file():
            finished.unlink()  # a finished run fitted further is unfinished until it ends again
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.signal = signal.SIGINT
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl+C stops at once
        rank_zero_info("Ctrl+C: stopping after this step and saving a checkpoint (press again to stop at once).")
        os.kill(os.getpid(), signal.SIGTERM)  # Lightning's way to stop cleanly after the step; its loops check it

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous)
        self._previous = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        if trainer.is_global_zero and not trainer.received_sigterm:  # `--ckpt_path best` chooses among finished runs
            folder = self._folder(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / FINISHED).touch()

    @staticmethod
    def _folder(trainer: pl.Trainer) -> Path:
        """The run's checkpoints folder: where ``last.ckpt`` goes."""
        last = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath and c.filename == "last"),
                    None)  # fmt: skip
        return Path(last.dirpath) if last is not None else Path(trainer.default_root_dir)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.received_sigterm:
            checkpoint[INTERRUPTED_KEY] = signal.Signals(self.signal or signal.SIGTERM).name

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        received = signal.Signals(self.signal or signal.SIGTERM)
        path = self._folder(trainer) / "last.ckpt"
        save_atomically(trainer, path)  # the whole state: optimiser, loops, data position
        if trainer.is_global_zero:
            print(f"{received.name}: the fit stopped at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {path}. "
                  f"Resume with: {resume_command(path)}", file=sys.stderr, flush=True)  # fmt: skip
        exception.code = 128 + received.value  # Lightning's SIGTERMException would exit 0
