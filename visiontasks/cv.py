"""``python -m visiontasks cv --config C --folds 5``: k-fold cross-validation, each fold an ordinary run.

Fold ``k`` is ``fit`` with the same options plus ``--data.init_args.fold [k, n]`` (see
:mod:`visiontasks.data.folds`: stratified, grouped, seeded; the test split untouched), in
``runs/<experiment>/cv-<time>/fold-<k>/`` (config, checkpoints, pictures; one W&B run per fold, grouped by the
cross-validation). Its best checkpoint is then validated on its fold, and at the end the folds' metrics go to
``cv_results.csv`` (one row per fold, then mean and std), ``cv_results.png`` and the console, and the images of
each validation fold to ``cv_folds.csv``. Under DDP every process runs the same loop, each fold on all of them.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visiontasks.errors import DataError
from visiontasks.pictures.curves import FAST_PNG
from visiontasks.pictures.folds import folds_figure
from visiontasks.results.formats import write_csv
from visiontasks.runs import launched_rank, timestamp

log = logging.getLogger(__name__)

CV_ENV = "VISIONTASKS_CV_ID"  # rank zero's cross-validation folder, read by the processes a launcher starts
TAKEN = ("--run_id", "--data.init_args.fold", "--data.fold", "--ckpt_path")


@dataclass
class CrossValidation:
    """What ``cv`` made: its folder, every fold's run folder and validation metrics, and the files it wrote."""

    folder: Path
    runs: list[Path] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)

    @property
    def table(self) -> Path:
        return self.folder / "cv_results.csv"

    def summary(self) -> dict[str, tuple[float, float]]:
        """Per metric: (mean, std) over the folds (std with n-1, as for a sample)."""
        names = sorted({name for row in self.metrics for name in row})
        values = {name: np.asarray([row.get(name, np.nan) for row in self.metrics], dtype=float) for name in names}
        return {name: (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0) for name, v in values.items()}


def parse(args: list[str]) -> tuple[int, list[str]]:
    """``--folds`` and the options every fold's ``fit`` gets (all the others)."""
    parser = argparse.ArgumentParser(
        prog="visiontasks cv", allow_abbrev=False,
        description="k-fold cross-validation: one fit per fold, then every fold's validation metrics with mean ± std.",
        epilog="Every other option is fit's (python -m visiontasks fit --help): --config, --model..., --data..., --trainer...",
    )  # fmt: skip
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    known, rest = parser.parse_known_args(args)
    taken = [word for word in rest if word.split("=", 1)[0] in TAKEN]
    if taken:
        raise DataError(f"cv: {taken[0].split('=', 1)[0]} is set by cv for each fold; leave it out.")
    if known.folds < 2:
        raise DataError(f"cv: --folds {known.folds}: cross-validation needs at least 2 folds.")
    return known.folds, rest


def cross_validate(args: list[str], fit: Callable[[list[str]], Any]) -> CrossValidation:
    """Run ``fit`` (the CLI's entry) once per fold with ``args`` and summarise the folds' validation metrics."""
    folds, options = parse(args)
    if launched_rank() == 0:
        os.environ[CV_ENV] = f"cv-{timestamp()}"
    name = os.environ.get(CV_ENV) or f"cv-{timestamp()}"
    result, lead, val_images = None, True, []
    for k in range(1, folds + 1):
        cli = fit(["fit", *options, f"--run_id={name}/fold-{k}", f"--data.init_args.fold=[{k},{folds}]"])
        trainer = cli.trainer
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        validated = trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=best, verbose=False)
        scores = {key: float(value) for key, value in (validated[0] if validated else {}).items()}
        result = result or CrossValidation(cli.run.path.parent)
        result.runs.append(cli.run.path)
        result.metrics.append(scores)
        val_images += [{"fold": k, "image": image} for image in split_images(cli.datamodule.datasets["val"])]
        lead = trainer.is_global_zero
    if result is not None and lead:
        write_results(result, val_images)
    return result


def split_images(dataset: Any) -> list[str]:
    """The image files of a split (indices into its source where the source has no files)."""
    paths = getattr(dataset.source, "paths", None)
    return [str(paths[i]) if paths is not None else str(i) for i in dataset.indices]


def write_results(result: CrossValidation, val_images: list[dict[str, Any]]) -> None:
    """``cv_results.csv`` (fold rows, then mean and std), ``cv_results.png``, ``cv_folds.csv``, and the table printed."""
    summary = result.summary()
    names = list(summary)
    rows = [{"fold": k, **{n: row.get(n, "") for n in names}, "run": str(run)}
            for k, (row, run) in enumerate(zip(result.metrics, result.runs), start=1)]  # fmt: skip
    rows += [{"fold": stat, **{n: summary[n][i] for n in names}, "run": ""} for i, stat in enumerate(("mean", "std"))]
    write_csv(result.table, rows)
    write_csv(result.folder / "cv_folds.csv", val_images)
    title = f"{len(result.runs)}-fold cross-validation: validation metrics of each fold's best checkpoint"
    figure = folds_figure({n: [row[n] for row in result.metrics if n in row] for n in names}, title)
    figure.savefig(result.folder / "cv_results.png", dpi=120, pil_kwargs=FAST_PNG)
    import matplotlib.pyplot as plt

    plt.close(figure)
    width = max(map(len, names), default=6)
    lines = [title, "  ".join(["metric".ljust(width), *(f"fold {k}".rjust(8) for k in range(1, len(result.runs) + 1)),
                               "mean ± std".rjust(17)])]  # fmt: skip
    for n in names:
        folds = [f"{row[n]:.4f}".rjust(8) if n in row else "-".rjust(8) for row in result.metrics]
        lines.append("  ".join([n.ljust(width), *folds, f"{summary[n][0]:.4f} ± {summary[n][1]:.4f}".rjust(17)]))
    text = "\n".join(lines)
    print(f"\n{text}\n\nWritten: {result.table}, {result.folder / 'cv_results.png'}, {result.folder / 'cv_folds.csv'}")
    (result.folder / "cv_results.txt").write_text(text + "\n")
