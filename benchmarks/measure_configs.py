"""Fit every shipped config through the CLI and print its final validation metric and wall time, on the
built-in shapes (what the configs were tuned on) and on real handwritten digits they were not tuned on
(written by digit_scenes.py), overriding only the data source, as a user pointing a config at their data.

    python benchmarks/digit_scenes.py digits/
    python benchmarks/measure_configs.py --data shapes digits --digits digits/ --cores 0 1

Each fit runs in its own process pinned to one core (``--cores``: one job per core at a time), with W&B
off and a CSV logger; the table gives the last epoch's validation metric of each run.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
METRICS = {  # config: the metrics to report, first = the headline
    "unet": ["miou", "dice"], "unet_timm": ["miou", "dice"], "deeplabv3": ["miou"], "classic_threshold": ["miou"], "classic_edges": ["miou"],
    "classic_kmeans": ["miou"], "classification": ["acc"], "lenet5": ["acc"], "localization": ["acc", "iou", "loc_acc"],
    "faster_rcnn": ["map", "map_50"], "mask_rcnn": ["map", "segm_map"],
}  # fmt: skip
SEGMENTATION_CLASSES = '["background", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'  # names, not numbers


def digits_data(config: str, root: Path) -> list[str]:
    """The CLI overrides that point ``config`` at the digit files of its kind: the data source, nothing else."""
    if config in ("classification", "lenet5"):
        return ["--data=visiontasks.ImageFolderDataModule", f"--data.init_args.root={root / 'classification'}"]
    if config == "localization":
        csvs = root / "localization"
        return ["--data=visiontasks.CsvDataModule", f"--data.init_args.csv_path={csvs / 'train.csv'}",
                f"--data.init_args.val_csv={csvs / 'val.csv'}", f"--data.init_args.test_csv={csvs / 'test.csv'}"]  # fmt: skip
    if config in ("faster_rcnn", "mask_rcnn"):
        coco = root / ("detection" if config == "faster_rcnn" else "instance_segmentation")
        return ["--data=visiontasks.CocoDataModule", f"--data.init_args.train_json={coco / 'train.json'}",
                f"--data.init_args.val_json={coco / 'val.json'}", f"--data.init_args.test_json={coco / 'test.json'}"]  # fmt: skip
    return ["--data=visiontasks.SegmentationFolderDataModule", f"--data.init_args.root={root / 'segmentation'}",
            f"--data.init_args.class_names={SEGMENTATION_CLASSES}"]  # fmt: skip


def last_values(run: Path) -> dict[str, float]:
    """The latest value of every column of the run's metrics.csv."""
    values: dict[str, float] = {}
    for path in run.rglob("metrics.csv"):
        with open(path) as handle:
            for row in csv.DictReader(handle):
                values.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return values


def fit(config: str, data: str, digits: Path, core: int, runs: Path) -> dict:
    args = [sys.executable, "-m", "visiontasks", "fit", f"--config={CONFIGS / config}.yaml", f"--runs_dir={runs}",
            f"--experiment={config}-{data}", "--trainer.logger=CSVLogger", "--trainer.enable_progress_bar=false"]  # fmt: skip
    if data == "digits":
        args += digits_data(config, digits)
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run(["taskset", "-c", str(core), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    folder = re.findall(r"Run folder: (\S+)", done.stdout + done.stderr)
    values = last_values(Path(folder[-1])) if folder else {}
    if done.returncode:
        print(f"{config} on {data} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
    return {"config": config, "data": data, "seconds": seconds, "values": values, "ok": done.returncode == 0}


def row(result: dict) -> str:
    values = result["values"]
    shown = ", ".join(f"{name} {values['val/' + name]:.3f}" for name in METRICS[result["config"]] if "val/" + name in values)
    minutes, seconds = divmod(round(result["seconds"]), 60)
    return f"| {result['config']} | {result['data']} | {shown if result['ok'] else 'FAILED'} | {minutes}:{seconds:02d} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=list(METRICS))
    parser.add_argument("--data", nargs="*", default=["shapes", "digits"], choices=["shapes", "digits"])
    parser.add_argument("--digits", type=Path, default=Path("digits"))
    parser.add_argument("--cores", nargs="*", type=int, default=[0])
    parser.add_argument("--runs", type=Path, default=Path("runs-measured"))
    options = parser.parse_args()
    cores: Queue[int] = Queue()
    for core in options.cores:
        cores.put(core)

    def job(pair: tuple[str, str]) -> dict:
        core = cores.get()
        try:
            result = fit(*pair, options.digits.resolve(), core, options.runs.resolve())
        finally:
            cores.put(core)
        print(row(result), flush=True)
        return result

    print("| config | data | last-epoch validation metrics | wall time (one core) |\n|---|---|---|---|", flush=True)
    jobs = [(config, data) for data in options.data for config in options.configs]
    with ThreadPoolExecutor(len(options.cores)) as pool:
        list(pool.map(job, jobs))


if __name__ == "__main__":
    main()
