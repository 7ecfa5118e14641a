"""The cross-validation picture: every fold's value of each metric, with the folds' mean ± std."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def folds_figure(values: dict[str, Sequence[float]], title: str, columns: int = 4) -> Any:
    """One panel per metric: a dot per fold (numbered) and the mean with a ±1 std bar."""
    names = list(values)
    columns = max(1, min(columns, len(names)))
    lines = max(1, math.ceil(len(names) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(2.6 * columns, 2.8 * lines), squeeze=False)
    for axis, name in zip(axes.flat, names):
        points = np.asarray(values[name], dtype=float)
        axis.plot(np.zeros(len(points)), points, "o", alpha=0.6, markersize=5)
        for fold, value in enumerate(points, start=1):
            axis.annotate(str(fold), (0, value), xytext=(5, 0), textcoords="offset points", fontsize=7, va="center")
        mean, std = points.mean(), points.std(ddof=1) if len(points) > 1 else 0.0
        axis.errorbar([0.5], [mean], yerr=[std], fmt="s", color="black", capsize=4)
        axis.set_title(f"{name}\n{mean:.3f} ± {std:.3f}", fontsize=9)
        axis.set_xlim(-0.5, 1.0)
        axis.set_xticks([0, 0.5], ["folds", "mean"], fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3, axis="y")
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
