"""The same Optuna study of a config with and without pruning, side by side: CPU time and best metric; and the
shipped config's own fit on the same data, so the study's best trial can be compared with it.

    python benchmarks/digit_scenes.py digits/                  # real handwritten digits (once)
    python benchmarks/tune_pruning.py --data digits --digits digits/ --trials 12

Both studies use the same sampler seed (``--seed``), so they propose the same values until the sampler
learns from the results (Optuna's TPE: after 10 trials); each runs as its own ``visiontasks tune`` process
with W&B off and one thread, and its CPU time (user + system, the trials included) is that process's.
``--data shapes`` runs on the built-in shapes instead (``--num_samples`` of them). Targets: pruned / unpruned
CPU time <= 0.6, best metric within 0.5 %.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from measure_configs import CONFIGS, digits_data, last_values

SEARCH = CONFIGS / "search"
QUIET = ["--trainer.logger=CSVLogger", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def data_args(options: argparse.Namespace) -> list[str]:
    if options.data == "digits":
        return digits_data(options.config, options.digits.resolve())
    return [f"--data.init_args.num_samples={options.num_samples}"]


def measured(args: list[str], log: Path) -> tuple[float, float, int]:
    """Run ``python -m visiontasks ARGS``; its CPU seconds (children included), wall seconds and exit code."""
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "visiontasks", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def study(options: argparse.Namespace, pruner: str) -> dict:
    name = f"{options.data}-{pruner}"
    args = ["tune", "--config", str(CONFIGS / f"{options.config}.yaml"), "--config", str(SEARCH / f"{options.config}.yaml"),
            f"--trials={options.trials}", f"--pruner={pruner}", f"--seed={options.seed}", f"--study={name}",
            f"--runs_dir={options.runs.resolve()}", *data_args(options), *QUIET]  # fmt: skip
    cpu, wall, code = measured(args, options.runs / f"{name}.log")
    folder = options.runs / options.config / f"tune-{name}"
    with open(folder / "trials.csv") as handle:
        trials = list(csv.DictReader(handle))
    done = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(done, key=lambda t: float(t["value"])) if done else None
    last = last_values(Path(best["run"])) if best else {}
    return {"name": name, "cpu": cpu, "wall": wall, "ok": code == 0, "trials": len(trials),
            "pruned": sum(t["state"] == "PRUNED" for t in trials), "epochs": sum(int(t["epochs"] or 0) for t in trials),
            "best": float(best["value"]) if best else float("nan"), "best_last": last.get(f"val/{options.metric}"),
            "best_number": best["number"] if best else "-"}  # fmt: skip


def shipped(options: argparse.Namespace) -> dict:
    """The shipped config's own fit on the same data: its best and last-epoch metric."""
    args = ["fit", "--config", str(CONFIGS / f"{options.config}.yaml"), f"--runs_dir={options.runs.resolve()}",
            f"--experiment={options.config}-shipped-{options.data}", *data_args(options), *QUIET]  # fmt: skip
    cpu, wall, code = measured(args, options.runs / "shipped.log")
    runs = sorted((options.runs / f"{options.config}-shipped-{options.data}").iterdir())
    with open(runs[-1] / "metrics.csv") as handle:
        values = [float(row[f"val/{options.metric}"]) for row in csv.DictReader(handle) if row.get(f"val/{options.metric}")]
    return {"cpu": cpu, "ok": code == 0, "best": max(values, default=float("nan")), "last": values[-1] if values else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="lenet5")
    parser.add_argument("--metric", default="acc", help="the config's monitored metric, without val/")
    parser.add_argument("--data", default="digits", choices=["digits", "shapes"])
    parser.add_argument("--digits", type=Path, default=Path("digits"))
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs-tune-pruning"))
    parser.add_argument("--parallel", type=int, default=2, help="jobs at once (the two studies and the shipped fit)")
    options = parser.parse_args()
    options.runs.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(options.parallel) as pool:
        plain, pruned, base = pool.submit(study, options, "none"), pool.submit(study, options, "median"), pool.submit(shipped, options)
        plain, pruned, base = plain.result(), pruned.result(), base.result()
    print(f"{options.config} on {options.data}, {options.trials} trials, sampler seed {options.seed}:")
    print("| study | trials (pruned) | epochs trained | CPU time | best val/{0} (its last epoch) |\n|---|---|---|---|---|".format(options.metric))
    for result in (plain, pruned):
        print(f"| pruner {result['name'].rpartition('-')[2]} | {result['trials']} ({result['pruned']}) | {result['epochs']} | "
              f"{result['cpu']:.0f} s | {result['best']:.4f} ({result['best_last']}) trial {result['best_number']} |")  # fmt: skip
    print(f"| shipped config, one fit | 1 | - | {base['cpu']:.0f} s | {base['best']:.4f} (last epoch {base['last']:.4f}) |")
    ratio = pruned["cpu"] / plain["cpu"]
    gap = (plain["best"] - pruned["best"]) / plain["best"] * 100
    print(f"CPU time with pruning / without: {ratio:.2f} (target <= 0.6); best metric {gap:+.2f} % below the unpruned study's "
          f"(target within 0.5 %)")  # fmt: skip
    if not (plain["ok"] and pruned["ok"] and base["ok"]):
        raise SystemExit(f"a run failed: see the logs in {options.runs}")


if __name__ == "__main__":
    main()
