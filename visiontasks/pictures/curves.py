"""The training curves picture: loss and every metric per epoch, train beside val."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STAGE_STYLES = {"train": "o-", "val": "s-"}
FAST_PNG = {"compress_level": 1}
"""Every picture a run writes (curves each epoch, test reports) is saved with light PNG compression: a little
larger, and the PNG step several times faster (a report figure 0.25 s -> 0.19 s)."""


def metric_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics shown (``loss`` first), each once whatever stages logged it."""
    names = {key.split("/", 1)[1] for row in rows for key in row if key.split("/", 1)[0] in STAGE_STYLES}
    return sorted(names, key=lambda name: (name != "loss", not name.startswith("loss"), name))


def curves_figure(rows: Sequence[dict[str, Any]], columns: int = 4) -> Any:
    """One panel per metric, x = epoch, a line per stage; values of -1 (COCO's "no such objects") are left out."""
    names = metric_names(rows)
    columns = max(1, min(columns, len(names)))
    lines = max(1, math.ceil(len(names) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(3.2 * columns, 2.6 * lines), squeeze=False)
    for axis, name in zip(axes.flat, names):
        for stage, style in STAGE_STYLES.items():
            points = [(row["epoch"], row[f"{stage}/{name}"]) for row in rows
                      if row.get(f"{stage}/{name}") not in (None, "") and float(row[f"{stage}/{name}"]) != -1]  # fmt: skip
            if points:
                axis.plot(*zip(*points), style, markersize=3, label=stage)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:  # a metric logged in no stage yet has no line to name
            axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    height = 2.6 * lines  # inches: margins of fixed inches for the titles and the epoch labels
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.5 / height, top=1 - 0.3 / height, wspace=0.3, hspace=0.6)
    return figure  # fixed margins: tight_layout would double the time of drawing the figure every epoch
