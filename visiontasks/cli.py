"""The command line: ``python -m visiontasks {fit,validate,test,predict} --config cfg.yaml``.

LightningCLI in subclass mode: a config names any task and any data module by class path (or
short name). The data module's classes and channels flow into the task, so nobody types them twice.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

import visiontasks
from visiontasks.data.base import VisionDataModule
from visiontasks.errors import DataError
from visiontasks.runs import latest_checkpoint, run_dir
from visiontasks.tasks.base import BaseTask
from visiontasks.wandb_mode import choose_wandb_mode


class SaveRunConfig(SaveConfigCallback):
    """Writes the resolved config as ``config.yaml`` into the run folder, next to ``checkpoints/``."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = run_dir(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, folder / self.config_filename, skip_none=False, overwrite=True)
        self.already_saved = True


class VisionCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in ("num_classes", "class_names", "in_channels"):
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        choose_wandb_mode()

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

    def _parse_ckpt_path(self) -> None:
        """The config and the command line define the task, for a checkpoint path as for ``last``/``best``.

        Lightning would otherwise replace the model options with the checkpoint's when ``--ckpt_path``
        is a file, silently dropping ``--model.init_args...`` given for predict or test (thresholds,
        drawing); the weights still come from the checkpoint.
        """

    def _resolve_ckpt_path(self) -> None:
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") in ("last", "best"):
            found = latest_checkpoint(self.trainer, config["ckpt_path"])
            if found is None:
                raise SystemExit(f"--ckpt_path {config['ckpt_path']}: no such checkpoint in earlier runs of this config.")
            print(f"Using checkpoint {found}")
            config["ckpt_path"] = str(found)

    before_fit = before_validate = before_test = before_predict = _resolve_ckpt_path


def main(args: list[str] | None = None, run: bool = True) -> VisionCLI:
    """Entry point of ``python -m visiontasks`` and the ``visiontasks`` command."""
    return VisionCLI(
        BaseTask,
        VisionDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveRunConfig,
        parser_kwargs={
            "prog": "visiontasks",
            "description": "Train, evaluate and predict with visiontasks tasks from a YAML config.",
            "version": f"visiontasks {visiontasks.__version__}",
        },
        args=args,
        run=run,
        auto_configure_optimizers=False,
    )
