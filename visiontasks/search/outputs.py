"""What a study leaves in its folder: ``best.yaml``, ``trials.csv`` and Optuna's pictures of the study.

``best.yaml`` is the resolved base config with the best trial's values: ``fit --config best.yaml`` trains
the best trial again (same seed, same metric). Every worker writes these files when it ends; each file is
replaced whole, so a reader never sees half of one.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from visiontasks.search.space import SearchSpace, with_values

PICTURES = {  # file name: Optuna's matplotlib plot
    "history.png": "plot_optimization_history",
    "intermediate_values.png": "plot_intermediate_values",  # each trial's metric by validation round: where pruning cut
    "importances.png": "plot_param_importances",
    "parallel_coordinates.png": "plot_parallel_coordinate",
}


def _replace(path: Path, text: str | bytes) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}")
    part.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(part, path)


def write_best(study: optuna.Study, space: SearchSpace, config: dict[str, Any], experiment: str, path: Path) -> Path | None:
    """``best.yaml``: the base config with the best trial's values, runs going to the base experiment."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not finished:
        return None
    best = study.best_trial
    values = space.values_of(best.params)
    resolved = with_values(config, values)
    resolved["experiment"] = experiment
    header = [f"# The best trial ({best.number}) of study {study.study_name}: {best.user_attrs.get('metric', 'value')} "
              f"{best.value:.6g} in {best.user_attrs.get('run', '?')}", "# Its values:"]  # fmt: skip
    header += [f"#   {key}: {value!r}" for key, value in values.items()]
    header.append(f"# python -m visiontasks fit --config {path}")
    _replace(path, "\n".join(header) + "\n" + yaml.safe_dump(resolved, sort_keys=False))
    return path


def write_trials_csv(study: optuna.Study, path: Path) -> Path:
    """One row per trial: number, state, value, its parameters, duration, run folder."""
    trials = study.get_trials(deepcopy=False)
    keys = sorted({key for trial in trials for key in trial.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", "value", *keys, "epochs", "seconds", "run"])
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else ""
        writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, *(t.params.get(k, "") for k in keys),
                         len(t.intermediate_values), seconds and f"{seconds:.1f}", t.user_attrs.get("run", "")])  # fmt: skip
    _replace(path, out.getvalue())
    return path


def write_pictures(study: optuna.Study, folder: Path) -> list[Path]:
    """The optimisation history, each trial's rounds, the parameters' importances and the parallel coordinates (PNG).

    A picture that needs more than the study has (two finished trials, a parameter that varied) is left out.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    written: list[Path] = []
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return written
    for name, plot in PICTURES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = getattr(plots, plot)(study)
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        figure.set_size_inches(8, 5)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        _replace(folder / name, buffer.getvalue())
        written.append(folder / name)
    return written
