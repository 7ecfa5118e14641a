"""The command line: ``python -m visiontasks {fit,validate,test,predict,export,tune} --config cfg.yaml``.

LightningCLI in subclass mode: a config names any task and any data module by class path (or
short name). The data module's classes and channels flow into the task, so nobody types them twice.
Every command works in one run folder (see :mod:`visiontasks.runs`); errors users can fix print
as one line (set ``VISIONTASKS_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException

import visiontasks
from visiontasks import ranks
from visiontasks.callbacks.budget import TrainingBudget
from visiontasks.callbacks.lr_finder import LearningRateSearch
from visiontasks.checkpoints import check_fits, find_checkpoint, run_of_checkpoint
from visiontasks.commands import PLAIN_COMMANDS
from visiontasks.data.datamodule import VisionDataModule
from visiontasks.cv import cross_validate
from visiontasks.errors import CheckpointError, DataError, OptionError, VisionTasksError, check_option
from visiontasks.export import SUFFIXES, ExportFormat, export
from visiontasks.pictures import RunPictures
from visiontasks.results import PredictionWriter
from visiontasks.runs import RUNS_DIR, RunFolder, stage_dir
from visiontasks.search import tune
from visiontasks.tasks.base import BaseTask
from visiontasks.wandb_mode import choose_wandb_mode

DEBUG_ENV = "VISIONTASKS_DEBUG"


class VisionTrainer(pl.Trainer):
    """Lightning's Trainer with the ``export`` command."""

    def export(
        self,
        model: BaseTask,
        datamodule: Any = None,
        ckpt_path: str | None = None,
        format: ExportFormat = "onnx",
        output: str | None = None,
        weights_only: bool | None = None,
    ) -> Path:
        """Export a checkpoint's task to ONNX or TorchScript, with a JSON of its inputs and outputs beside it.

        Args:
            model: the task of the config; its class restores the checkpoint (options included).
            ckpt_path: the checkpoint: ``best``, ``last`` (of the experiment) or a file.
            format: ``onnx`` or ``torchscript``.
            output: the model file; default ``<run>/export/model.onnx`` (``.pt`` for TorchScript).
            weights_only: as for the other commands (a run's ``config.yaml`` holds it): how the checkpoint is loaded.
        """
        if not ckpt_path:
            raise CheckpointError("export needs --ckpt_path: best, last or a checkpoint file.")
        task = type(model).load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=weights_only)
        default = stage_dir(self) / f"model{SUFFIXES.get(format, '')}"
        path = export(task, format, output or default)
        print(f"Exported {type(task).__name__} to {path} (inputs and outputs described in {path.with_suffix('.json')})")
        return path


class SaveRunConfig(SaveConfigCallback):
    """Writes the resolved config as ``config.yaml`` where the command writes: the run folder for ``fit``,
    its ``test/`` (etc.) folder for the other commands, so a test never overwrites the training config."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = stage_dir(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, folder / self.config_filename, skip_none=False, overwrite=True)
            log_config_to_wandb(trainer, self.config)
        self.already_saved = True


def log_config_to_wandb(trainer: Any, config: Namespace) -> None:
    """The whole resolved config (model, data, trainer, pictures, ...) as the W&B run's config."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            plain = json.loads(json.dumps(config.clone().as_dict(), default=str))
            logger.experiment.config.update(plain, allow_val_change=True)


def _import(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def experiment_name(config: Namespace) -> str:
    """The experiment a command belongs to: ``--experiment``, else the first config file's name, else the task's."""
    if config.get("experiment"):
        return config.experiment
    files = config.get("config") or []
    if files:
        return Path(str(files[0])).stem
    model = config.get("model")
    class_path = model.get("class_path", "") if isinstance(model, Namespace) else ""
    return class_path.rpartition(".")[2].removesuffix("Task").lower() or "visiontasks"


def place_logger(logger: Namespace, run: RunFolder) -> bool:
    """Point one logger's files at the run folder; W&B gets the run's id so later commands resume the same run.
    Returns whether the logger is W&B's."""
    cls, args = _import(logger.class_path), logger.init_args
    if issubclass(cls, WandbLogger):
        args.save_dir, args.id, args.name = str(run.path), run.wandb_id, run.run_id
        args.group, args.job_type, args.resume = args.get("group") or run.group, run.stage, "allow"
        return True
    if "save_dir" in args:  # CSV, TensorBoard, ...: files straight into the run (or stage) folder
        args.save_dir = str(run.stage_dir)
        for key in ("name", "version"):
            if key in args:
                args[key] = ""
        if issubclass(cls, CSVLogger):  # its step-by-step log beside the run's per-epoch metrics.csv, not over it
            args.name = "csv"
    return False


def finish_open_wandb_run() -> None:
    """A W&B run left open by an earlier command in this process (a notebook) would swallow this command's logs."""

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


COMMANDS: dict[str, set[str]] = {**LightningCLI.subcommands(), "export": {"model", "datamodule"}}
"""Every command, with the Trainer method's arguments that the CLI fills itself (not options)."""


class VisionCLI(LightningCLI):
    current_run: RunFolder | None = None  # the run of the command under way, to tidy up after a failure

    def __init__(self, *options: Any, args: Any = None, **kwargs: Any) -> None:
        words = sys.argv[1:] if args is None else args
        first = words[0] if isinstance(words, list) and words else None
        self.requested = first if first in COMMANDS else None  # the command asked for, when it comes first
        self.checkpoint: str | None = None  # --ckpt_path as given, set aside while Lightning reads the config
        super().__init__(*options, args=args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]  # Lightning's is static: all, always
        """The commands to build parsers for: only the one asked for (each of the five takes ~0.2 s to build, at
        every start); all of them for ``--help``, a misspelt command, or anything else."""
        requested = getattr(self, "requested", None)
        return {requested: COMMANDS[requested]} if requested else dict(COMMANDS)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in ("num_classes", "class_names", "in_channels"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.add_argument(
            "--experiment", type=str | None, default=None,
            help="Experiment name: runs go to <runs_dir>/<experiment>/<run id>/ (default: the config file's name).",
        )  # fmt: skip
        parser.add_argument("--runs_dir", type=str, default=RUNS_DIR, help="Folder holding the experiments' runs.")
        parser.add_argument("--run_id", type=str | None, default=None, help="The new run's folder name (default: the time).")
        parser.add_lightning_class_args(RunPictures, "pictures")  # --pictures.<switch>: which pictures a run makes
        parser.add_lightning_class_args(PredictionWriter, "writer")  # predict's files: --writer.draw true
        parser.add_lightning_class_args(TrainingBudget, "budget")  # epochs from the data, early stop, schedule
        parser.add_argument("--lr_find", type=bool, default=False,
                            help="Find the peak learning rate with a range test before training (plot: <run>/lr_find.png).")  # fmt: skip

    def instantiate_classes(self) -> None:
        """A ``num_classes``/``class_names`` given for the task must agree with the data's, not be replaced by it."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        given = {name: config.get(f"model.init_args.{name}") for name in ("num_classes", "class_names")}
        super().instantiate_classes()
        for name, value in given.items():
            found = getattr(self.datamodule, name, None)
            if value is not None and found is not None and value != found:
                raise DataError(
                    f"--model.init_args.{name}={value} disagrees with the data's {found} ({type(self.datamodule).__name__} "
                    f"classes {self.datamodule.class_names}): drop the option, the data sets it, or fix the data."
                )
        self._follow_multilabel_data()

    @staticmethod
    def _check_trainer_options(config: Namespace) -> None:
        """What Lightning takes unchecked and then divides by (``accumulate_grad_batches=0``), or hands to NumPy
        (``seed_everything=-1``): one line naming the option, before anything is built."""
        trainer = config.get("trainer") or Namespace()
        for name in ("accumulate_grad_batches", "check_val_every_n_epoch"):
            value = trainer.get(name)
            check_option(value is None or (isinstance(value, int) and value >= 1), f"--trainer.{name}", value, "give 1 or more.")
        interval = trainer.get("val_check_interval")
        check_option(interval is None or (isinstance(interval, (int, float)) and interval > 0), "--trainer.val_check_interval",
                     interval, "give a share of the epoch in (0, 1] or a number of steps (1 or more).")  # fmt: skip
        clip = trainer.get("gradient_clip_val")
        check_option(clip is None or (isinstance(clip, (int, float)) and clip >= 0), "--trainer.gradient_clip_val", clip,
                     "give 0 (no clipping) or a positive gradient norm.")  # fmt: skip
        seed = config.get("seed_everything")
        check_option(seed is None or isinstance(seed, bool) or (isinstance(seed, int) and 0 <= seed < 2**32), "--seed_everything",
                     seed, "give a seed in 0..4294967295, or true (a random one, printed).")  # fmt: skip

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """A Trainer option Lightning refuses (``max_epochs=-2``, ``devices=0``) is one line naming it, not a traceback."""
        try:
            return super().instantiate_trainer(**kwargs)
        except MisconfigurationException as error:
            reason = " ".join(str(error).split())
            raise OptionError(f"--trainer: {reason} Fix the trainer option in the config or on the command line.") from None

    def _follow_multilabel_data(self) -> None:
        """Multi-label data makes a task that can be multi-label one, as the data sets ``num_classes``.

        The task is built again with ``multilabel=True`` (its loss and metrics depend on it); the
        other way round, ``multilabel: true`` on single-label data, stays the set-up error it is.
        """
        hparams = getattr(self.model, "hparams", {})
        if getattr(self.datamodule, "multilabel", False) and hparams.get("multilabel") is False:
            options = {k: v for k, v in hparams.items() if not k.startswith("_")}
            self.model = type(self.model)(**{**options, "multilabel": True}, optimizer=self.model.optimizer_factory,
                                          lr_scheduler=self.model.lr_scheduler_factory)  # fmt: skip
            print(f"The data has several labels per image: {type(self.model).__name__} is multi-label (multilabel: true).")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """The config and the command line define the task, for a checkpoint path as for ``last``/``best``.

        A checkpoint of a run given without ``--config`` brings the run's ``config.yaml`` (see
        :func:`run_config_first`); options given on top override it.

        Lightning would otherwise replace the model options with the checkpoint's when ``--ckpt_path``
        is a file, silently dropping ``--model.init_args...`` given for predict or test (thresholds,
        drawing); the weights still come from the checkpoint. So ``ckpt_path`` is set aside here and
        given back, resolved, by :meth:`before_instantiate_classes`.
        """
        words = sys.argv[1:] if args is None else args
        with_run_config = run_config_first(words) if isinstance(words, list) else None
        if with_run_config is None:
            super().parse_arguments(parser, args)
        else:  # not through Lightning's, which warns of args given beside sys.argv
            self.config = parser.parse_args(with_run_config)
        command = self.config.get("subcommand")
        self._check_trainer_options(self.config[command] if command else self.config)  # before Lightning seeds
        if command and self.config[command].get("ckpt_path"):
            self.checkpoint, self.config[command].ckpt_path = self.config[command].ckpt_path, None

    def before_instantiate_classes(self) -> None:
        """Choose the run folder: the checkpoint's run for ``--ckpt_path``, else a new run of the experiment."""
        config = self.config[self.subcommand] if self.subcommand else self.config  # no subcommand: main(run=False)
        stage = self.subcommand or "fit"
        experiment = experiment_name(config)
        checkpoint = self.checkpoint
        if checkpoint in ("last", "best"):
            checkpoint = str(find_checkpoint(config.runs_dir, experiment, checkpoint))
            print(f"Using checkpoint {checkpoint}")
        if checkpoint and not Path(checkpoint).is_file():
            raise CheckpointError(f"--ckpt_path {checkpoint}: checkpoint file not found.")
        if checkpoint:
            config.ckpt_path = checkpoint
        run_path = run_of_checkpoint(Path(checkpoint)) if checkpoint else None
        if run_path is not None:
            self.run = RunFolder.of(run_path, stage)
        else:
            self.run = RunFolder.new(config.runs_dir, experiment, stage, config.get("run_id"))
        self.run.announce()
        VisionCLI.current_run = self.run
        # the run folder joins the Trainer's callbacks as Lightning's persistent callbacks do (not configurable)
        self.trainer_defaults = {**self.trainer_defaults, "callbacks": [self.run, *self._training_choices(config, stage)]}
        self._place_loggers(config.trainer)
        print(f"Run folder: {self.run.stage_dir}")

    @staticmethod
    def _training_choices(config: Namespace, stage: str) -> list:
        """A fit given no ``trainer.max_epochs``/``max_steps`` trains as long as the budget says (``-1``: see
        callbacks/budget.py); ``--lr_find true`` adds the learning-rate search."""
        if stage != "fit":
            return []
        if config.trainer.get("max_epochs") is None and config.trainer.get("max_steps", -1) in (None, -1):
            config.trainer.max_epochs = -1
        return [LearningRateSearch()] if config.get("lr_find") else []

    def _place_loggers(self, trainer: Namespace) -> None:
        """Every logger writes into the run folder; no logger configured means a CSV logger there."""
        if trainer.get("logger") in (None, True):
            trainer.logger = Namespace(class_path="pytorch_lightning.loggers.CSVLogger", init_args=Namespace(save_dir=""))
        loggers = trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]
        uses_wandb = [place_logger(logger, self.run) for logger in loggers if isinstance(logger, Namespace)]
        trainer.default_root_dir = str(self.run.stage_dir)
        if any(uses_wandb):
            choose_wandb_mode(self.run.path)
            finish_open_wandb_run()

    def _check_checkpoint(self) -> None:
        """Say clearly, before Lightning loads it, when ``--ckpt_path`` was made by another task or for other classes."""
        checkpoint = self.config_init[self.subcommand].get("ckpt_path")
        if checkpoint:  # export builds the task from the checkpoint's own options: the config's data cannot disagree
            check_fits(checkpoint, self.model, options=self.subcommand != "export")
        elif self.subcommand != "fit" and self.model.needs_checkpoint:
            raise CheckpointError(
                f"{self.subcommand} needs --ckpt_path (best, last or a checkpoint file): without it the "
                f"{type(self.model).__name__} would run on untrained weights."
            )

    before_fit = before_validate = before_test = before_predict = before_export = _check_checkpoint

    def _run_subcommand(self, subcommand: str) -> None:
        """On several processes, the command ends together: a rank that fails tells the others, which then fail too."""
        try:
            super()._run_subcommand(subcommand)
        except BaseException as error:
            ranks.report_failure(error)
            ranks.end_started_processes(self.trainer)
            raise
        ranks.wait_for_all_ranks()


def _option_value(words: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` among ``words`` (the last one given), else ``None``."""
    found = None
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            found = words[i + 1]
        elif isinstance(word, str) and word.startswith(f"{name}="):
            found = word.split("=", 1)[1]
    return found


def has_config(words: list[str]) -> bool:
    """A ``--config``/``-c`` is among the command's ``words``."""
    return any(w in ("--config", "-c") or str(w).startswith(("--config=", "-c=")) for w in words)


def run_config_first(words: list[str]) -> list[str] | None:
    """``words`` with ``--config <run>/config.yaml`` after the command when ``--ckpt_path`` names a checkpoint
    inside a run folder and no config is given: the run's own config (written by its ``fit``) defines the task
    and the data, so ``fit`` (which resumes the run) and ``test``/``predict``/``export``/``validate`` need only
    the checkpoint. ``None`` otherwise."""
    if not words or words[0] not in COMMANDS or has_config(words):
        return None
    checkpoint = _option_value(words, "--ckpt_path")
    if not checkpoint or any(str(w) in ("--data", "--model") or str(w).startswith(("--data=", "--model=")) for w in words):
        return None  # no checkpoint, or the task and data classes given on the command line
    if checkpoint in ("best", "last"):
        raise OptionError(
            f"--ckpt_path {checkpoint} needs --config (the config names the experiment whose runs are searched); "
            "give the config, or the checkpoint file (runs/<experiment>/<run>/checkpoints/last.ckpt)."
        )
    if not Path(checkpoint).is_file():
        raise CheckpointError(f"--ckpt_path {checkpoint}: checkpoint file not found.")
    run = run_of_checkpoint(Path(checkpoint))
    if run is None:
        raise OptionError(
            f"--ckpt_path {checkpoint}: a checkpoint outside a run folder (no config.yaml beside its checkpoints/ folder) "
            "does not say which task and data it was made with; give --config too."
        )
    print(f"Using the config of the checkpoint's run: {run / 'config.yaml'}")
    return [words[0], "--config", str(run / "config.yaml"), *words[1:]]


def check_config_files(args: list[str]) -> None:
    """A config file that is not YAML, or not a mapping, fails naming the file (the parser names only a line)."""
    paths = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    paths += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"]
    for path in map(Path, paths):
        if not path.is_file():
            continue  # the parser says so, with the file's name
        try:
            content = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise DataError(f"{path}: not valid YAML{where} ({getattr(error, 'problem', None) or error}).") from None
        if content is not None and not isinstance(content, dict):
            raise DataError(
                f"{path}: a config is a mapping of options (seed_everything:, model:, data:, trainer:), "
                f"this file holds a {type(content).__name__}."
            )


def _user_error(error: BaseException) -> VisionTasksError | None:
    """Our error behind ``error``, also when jsonargparse or Lightning wrapped it while instantiating classes."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, VisionTasksError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def show_log_lines() -> None:
    """Our INFO lines (which layout a folder has, which split was used) reach the console once."""
    log = logging.getLogger("visiontasks")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(args: list[str] | None = None, run: bool = True) -> Any:
    """Entry point of ``python -m visiontasks`` and the ``visiontasks`` command (``save`` and ``models`` run
    outside LightningCLI: see :mod:`visiontasks.commands`;
    ``cv`` gives a :class:`~visiontasks.cv.CrossValidation`)."""
    show_log_lines()
    VisionCLI.current_run = None
    try:
        words = list(sys.argv[1:] if args is None else args)
        if words[:1] and words[0] in PLAIN_COMMANDS:  # a model folder, the model names: no Trainer
            return PLAIN_COMMANDS[words[0]](words[1:])
        if words[:1] == ["tune"]:  # an Optuna study whose trials are fits (visiontasks.search)
            return tune(words[1:], fit=lambda fit_args: main(["fit", *fit_args]))
        if words[:1] == ["cv"]:  # k-fold cross-validation: one fit per fold (visiontasks.cv)
            return cross_validate(words[1:], fit=main)
        check_config_files(words)
        return VisionCLI(
            BaseTask,
            VisionDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_class=VisionTrainer,
            save_config_callback=SaveRunConfig,
            parser_kwargs={
                "prog": "visiontasks",
                "description": "Train, evaluate and predict with visiontasks tasks from a YAML config. "
                               "`visiontasks tune --help`: hyper-parameter search (an Optuna study of fits); "
                               "`visiontasks cv --help`: k-fold cross-validation; "
                               "`visiontasks save --help`: a checkpoint as a model folder; `visiontasks models`: the model names.",
                "version": visiontasks.__version__,
            },
            args=args,
            run=run,
            auto_configure_optimizers=False,
        )
    except Exception as error:
        if VisionCLI.current_run is not None:
            VisionCLI.current_run.remove_if_empty()
        found = _user_error(error)
        if found is None:  # a collective broken by another rank's failure: name that rank and its reason
            found = ranks.failure_elsewhere()
        if found is None or os.environ.get(DEBUG_ENV):
            raise
        where = "" if isinstance(found, ranks.RankFailed) else ranks.rank_prefix()
        raise SystemExit(f"visiontasks: error: {where}{found}") from None
