"""The commands beside LightningCLI's: ``save`` (a checkpoint as a model folder that travels) and ``models`` (the
models each task accepts). Neither trains, so neither needs a config, a data module or a Trainer.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import shutil
from pathlib import Path

from visiontasks.errors import CheckpointError
from visiontasks.models.detection import BACKBONES
from visiontasks.models.registry import ModelFamily, model_families, model_kinds, model_names
from visiontasks.checkpoints import find_checkpoint, made_by, read_checkpoint, run_of_checkpoint
from visiontasks.runs import RUNS_DIR
from visiontasks.tasks import TASK_OF_KIND
from visiontasks.tasks.base import BaseTask

METRICS_FILE = "metrics.csv"


def save(argv: list[str]) -> Path:
    """``python -m visiontasks save --ckpt_path <checkpoint|best|last> --output DIR``."""
    parser = argparse.ArgumentParser(prog="visiontasks save", description="Write a checkpoint as a model folder: "
                                     "weights (safetensors), config and class names, a model card with the run's metrics.")  # fmt: skip
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint file, or best/last of the experiment")
    parser.add_argument("--output", required=True, help="the folder to write")
    parser.add_argument("--config", help="the run's config file: names the experiment for best/last")
    parser.add_argument("--experiment", help="the experiment for best/last (default: the config file's name)")
    parser.add_argument("--runs_dir", default=RUNS_DIR, help="the folder holding the experiments' runs")
    args = parser.parse_args(argv)
    path = Path(args.ckpt_path)
    if args.ckpt_path in ("best", "last"):
        experiment = args.experiment or (Path(args.config).stem if args.config else None)
        if not experiment:
            raise CheckpointError(f"--ckpt_path {args.ckpt_path} needs --config or --experiment to say whose runs to look in.")
        path = find_checkpoint(args.runs_dir, experiment, args.ckpt_path)
    checkpoint = read_checkpoint(path)
    name = made_by(checkpoint)
    if not name:
        raise CheckpointError(f"{path}: not a visiontasks checkpoint (it does not say which task made it).")
    task = BaseTask.subclass_named(name).load_from_checkpoint(path, map_location="cpu")
    output = task.save_pretrained(args.output, run_metrics(path, checkpoint.get("epoch")))
    run = run_of_checkpoint(path)
    if run is not None:
        shutil.copyfile(run / "config.yaml", output / "config.yaml")  # the config the run was trained with
    print(f"Saved {name} of {path} to {output}: load it with {name}.from_pretrained({str(output)!r})")
    return output


def run_metrics(checkpoint: Path, epoch: int | None) -> dict[str, float]:
    """The validation and test metrics of the checkpoint's epoch, from its run's ``metrics.csv`` (none for a loose file)."""
    run = run_of_checkpoint(checkpoint)
    table = run / METRICS_FILE if run is not None else None
    if table is None or not table.is_file():
        return {}
    rows = list(csv.DictReader(table.open()))
    row = next((r for r in rows if r.get("epoch") == str(epoch)), rows[-1] if rows else {})
    metrics = {}
    for key, value in row.items():
        if key and key.startswith(("val/", "test/")) and value not in ("", None):
            try:
                metrics[key] = float(value)
            except ValueError:
                continue
    return metrics


def _matches(name: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatch(name, pattern) if any(c in pattern for c in "*?[") else pattern in name


def _family_line(family: ModelFamily, pattern: str | None) -> str:
    names = [family.prefix + name for name in family.names()]
    if pattern is None:
        return f"  {family.prefix}<name>: any of {len(names)} names (`python -m visiontasks models {family.prefix}` lists them)"
    chosen = [name for name in names if _matches(name, pattern)]
    return "".join(f"  {name}\n" for name in chosen).rstrip("\n")


def models(argv: list[str]) -> list[str]:
    """``python -m visiontasks models [pattern]``: the model names each task kind accepts (``pattern``: a part of
    the name, or a glob such as ``timm/convnext*``); prints and returns the lines."""
    parser = argparse.ArgumentParser(prog="visiontasks models", description="The models each task accepts, by name.")
    parser.add_argument("pattern", nargs="?", help="part of a name, or a glob (timm/convnext*); all when left out")
    pattern = parser.parse_args(argv).pattern
    lines = []
    for kind in model_kinds():
        names = [name for name in model_names(kind) if _matches(name, pattern)]
        families = [line for line in (_family_line(f, pattern) for f in model_families(kind)) if line]
        if not names and not families:
            continue
        lines.append(f"{kind} models, for {TASK_OF_KIND[kind].__name__}: model: <name>")
        lines += [f"  {name}" for name in names] + families
    detection = [b for b in BACKBONES if _matches(b, pattern)]
    timm_backbones = [line for f in model_families("classification") if (line := _family_line(f, pattern))]
    if detection or timm_backbones:
        lines.append("detection backbones, for DetectionTask and InstanceSegmentationTask: model_options: {backbone: <name>}")
        lines += [f"  {name}" for name in detection] + timm_backbones
    if lines:
        lines.append("LocalizationTask's backbone (model: <name>) is any classification model.")
    print("\n".join(lines) if lines else f"no model name matches {pattern!r}")
    return lines


PLAIN_COMMANDS = {"save": save, "models": models}
"""Commands run outside LightningCLI, by their first word."""
