"""Two ways of doing the same work, timed in one process: interleaved rounds, medians, one ratio.

Interleaving (A, B, A, B, ...) spreads the noise of a busy machine over both sides alike, and the
median of several rounds ignores the odd slow one, so the ratio means more than either time alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def seconds(work: Callable[[], object]) -> float:
    """Wall time of one call of ``work``."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def interleaved(sides: dict[str, Callable[[], float | dict[str, float]]], rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of each side's measurement (each callable returns its own number: seconds,
    images per second, bytes; or several by name, kept as ``side/name``), the sides taking turns every round."""
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for side, measure in sides.items():
            result = measure()
            named = result if isinstance(result, dict) else {"": result}
            for name, value in named.items():
                samples.setdefault(f"{side}/{name}" if name else side, []).append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, ours: tuple[str, float], theirs: tuple[str, float], unit: str, target: str) -> float:
    """Print both medians and ``ours / theirs``; returns the ratio."""
    ratio = ours[1] / theirs[1]
    print(f"{title}: {ours[0]} {ours[1]:.4g} {unit}, {theirs[0]} {theirs[1]:.4g} {unit}, ratio {ratio:.3f} (target {target})")
    return ratio
