"""Several processes, one result: 2-process DDP (gloo on the CPU) gives the metrics and files of one process,
writes one run folder from rank zero, and fails as a whole when any rank fails, naming it.

The 2-process commands run as users launch them: ``python -m visiontasks ... --trainer.devices 2
--trainer.strategy ddp`` (Lightning starts the second process), ``torchrun`` with one process per node, and a
script that runs several commands through :func:`visiontasks.cli.main` (commands_in_one_launch.py: the fit,
test and predict of every task kind on one pair of processes, so they start once instead of fifteen times).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from commands_in_one_launch import images_seen
from helpers import CONFIGS, remove_checkpoints, run_cli
from PIL import Image

TESTS = Path(__file__).resolve().parent
ON_CPU = ["--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
# Val and test are never limited: both sides must see every image. 45 shapes give 14 test and 3 val images:
# shards of 7/7 and 2/1 (uneven), batches of 4.
SMALL = ["--data.init_args.num_samples=45", "--data.init_args.batch_size=4", "--data.init_args.num_workers=0",
         "--data.init_args.image_size=32", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]  # fmt: skip

# task kind: (config, a metric that must be there, the predict output, whether the losses are means over images)
# Losses that are not (the U-Net's Dice term is one per batch; the detectors sample anchors and regions)
# depend on how images are batched, which differs between 1 and 2 processes; every metric must not.
KINDS = {
    "classification": ("lenet5.yaml", "acc", "predictions.csv", True),
    "localization": ("localization.yaml", "loc_acc", "predictions.csv", True),
    "detection": ("faster_rcnn.yaml", "map", "predictions.json", False),
    "instance_segmentation": ("mask_rcnn.yaml", "segm_map", "predictions.json", False),
    "segmentation": ("unet.yaml", "miou", "predictions", False),
}


def launch(*args: str, devices: int = 2, wandb: str = "disabled") -> subprocess.CompletedProcess:
    """``python -m visiontasks ARGS`` on ``devices`` CPU processes, as a user types it, logging to CSV."""
    strategy = ["--trainer.strategy=ddp"] if devices > 1 else []
    command = [sys.executable, "-m", "visiontasks", *args, *ON_CPU, f"--trainer.devices={devices}", *strategy]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment(wandb))


def environment(wandb: str = "disabled") -> dict[str, str]:
    """This environment, W&B as asked, the tests folder importable (for :mod:`faults`), a thread per rank."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, WANDB_MODE=wandb, PYTHONPATH=path, VISIONTASKS_RANK_WAIT_S="300", OMP_NUM_THREADS="1")


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def logged(folder: Path) -> dict[str, float]:
    """The last value of each column of the CSV logger's ``metrics.csv`` in a run or stage folder."""
    values: dict[str, float] = {}
    with open(folder / "csv" / "metrics.csv") as handle:
        for row in csv.DictReader(handle):
            values.update({key: float(value) for key, value in row.items() if value})
    return values


def only_run(experiment: str) -> Path:
    (run,) = [p for p in Path("runs", experiment).iterdir() if p.is_dir()]
    return run


def assert_same_predictions(two: Path, one: Path, output: str) -> None:
    """The 2-process predict folder holds what the 1-process one holds: one file, same rows, same order."""
    assert sorted(p.name for p in two.rglob("*") if "rank" in p.name) == []  # nothing written per rank
    if output.endswith(".csv"):
        rows = [list(csv.DictReader(open(folder / output))) for folder in (two, one)]
        assert [(r["path"], r["label"]) for r in rows[0]] == [(r["path"], r["label"]) for r in rows[1]]
        assert len(rows[0]) > 0
    elif output.endswith(".json"):
        found = [json.loads((folder / output).read_text()) for folder in (two, one)]
        assert [(d["image_id"], d["category_id"]) for d in found[0]] == [(d["image_id"], d["category_id"]) for d in found[1]]
        assert len(found[0]) > 0
        assert np.allclose([d["bbox"] for d in found[0]], [d["bbox"] for d in found[1]], atol=1e-3)
    else:
        names = [sorted(p.name for p in (folder / output).iterdir()) for folder in (two, one)]
        assert names[0] == names[1] and names[0]
        for name in names[0]:
            masks = [np.asarray(Image.open(folder / output / name)) for folder in (two, one)]
            assert (masks[0] == masks[1]).mean() > 0.999, name


def test_evaluation_shards_cover_each_sample_once_without_padding():
    from visiontasks.data.sampling import ShardSampler

    shards = [list(ShardSampler(range(21), num_replicas=2, rank=rank)) for rank in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(21)) and [len(s) for s in shards] == [11, 10]


def assert_shared(commands: list[dict], stage: str, one_process) -> None:
    """The 2-process ``stage`` split the images between the processes: each saw a part, together all of them."""
    shares = [c["images"] for c in commands if c["stage"] == stage]
    assert max(shares) < images_seen(one_process, stage) == sum(shares), (stage, shares, images_seen(one_process, stage))


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Iterator[Path]:
    """Every kind's config fitted, tested and predicted on 2 processes, all in one launch (one start-up of the two
    processes for the fifteen commands, see commands_in_one_launch.py); returns the folder holding ``runs/``."""
    folder = tmp_path_factory.mktemp("two_processes")
    configs = [str(CONFIGS / config) for config, *_ in KINDS.values()]
    command = [sys.executable, str(TESTS / "commands_in_one_launch.py"), *configs, "--", *SMALL, *ON_CPU,
               "--trainer.devices=2", "--trainer.strategy=ddp"]  # fmt: skip
    succeeded(subprocess.run(command, capture_output=True, text=True, timeout=1200, env=environment(), cwd=folder))
    yield folder
    remove_checkpoints(folder)


@pytest.mark.slow
@pytest.mark.xdist_group("two_process_runs")  # one test process launches the 2-process runs once
@pytest.mark.parametrize("kind", list(KINDS))
def test_two_processes_fit_validate_test_predict_like_one(kind, two_process_runs, monkeypatch):
    """Every task kind: a 2-process fit writes one run folder; its validation metrics (from the fit's last epoch,
    whose weights are last.ckpt) and test metrics (and losses that are means over images) equal one process's on
    the same checkpoint and data; its predictions equal one process's. (2-process ``validate`` runs in the
    failure test below.)"""
    config, metric, output, per_image_loss = KINDS[kind]
    monkeypatch.chdir(two_process_runs)
    common = ["--config", str(CONFIGS / config), *SMALL]
    run = only_run(Path(config).stem)
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and (run / "config.yaml").is_file()
    commands = [c for c in map(json.loads, open("commands.jsonl")) if c["config"] == Path(config).stem]
    ranks = {s: sorted((c["rank"], c["world_size"]) for c in commands if c["stage"] == s) for s in ("fit", "test", "predict")}
    assert all(found == [(0, 2), (1, 2)] for found in ranks.values()), ranks  # every command ran on both processes
    for stage, prefix, folder in (("validate", "val", run), ("test", "test", run / "test")):
        two = {k: v for k, v in logged(folder).items() if k.startswith(f"{prefix}/")}
        trainer = run_cli(stage, *common, f"--ckpt_path={checkpoint}", "--trainer.logger=false").trainer
        one = trainer.callback_metrics
        if stage == "test":  # each process tested its own share of the images, not all of them
            assert_shared(commands, "test", trainer)
        assert f"{prefix}/{metric}" in two and f"{prefix}/loss" in two
        two = {k: v for k, v in two.items() if per_image_loss or "loss" not in k}
        for key, value in two.items():
            assert value == pytest.approx(float(one[key]), rel=1e-4, abs=1e-6), (key, value, float(one[key]))
    (two,) = (run / "predict").iterdir()
    predicted = run_cli("predict", *common, f"--ckpt_path={checkpoint}", "--trainer.logger=false")
    assert_shared(commands, "predict", predicted.trainer)
    assert_same_predictions(two, predicted.run.stage_dir, output)


@pytest.mark.slow
def test_two_process_fit_makes_one_wandb_run():
    """Only rank zero logs: a 2-process fit with W&B (offline) leaves one W&B run in the run folder."""
    succeeded(launch("fit", "--config", str(CONFIGS / "lenet5.yaml"), *SMALL, wandb="offline"))
    run = only_run("lenet5")
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1


@pytest.fixture
def lenet_checkpoint() -> Path:
    run_cli("fit", "--config", str(CONFIGS / "lenet5.yaml"), *SMALL, "--trainer.logger=false")
    return only_run("lenet5") / "checkpoints" / "last.ckpt"


def fail_on(stage: str, rank: int) -> str:
    return f'--trainer.callbacks=[{{"class_path": "faults.FailOnRank", "init_args": {{"stage": "{stage}", "rank": {rank}}}}}]'


def test_a_failure_on_rank_one_fails_a_two_process_predict_naming_the_rank(lenet_checkpoint):
    """Rank 1 cannot read a file: the command exits non-zero on every rank with one line naming rank 1,
    instead of exiting 0 with rank 0's half of the predictions."""
    args = ["--config", str(CONFIGS / "lenet5.yaml"), *SMALL, f"--ckpt_path={lenet_checkpoint}", "--trainer.logger=false"]
    result = launch("predict", *args, fail_on("predict", rank=1))
    assert result.returncode != 0
    assert "visiontasks: error: rank 1 failed: broken.png: cannot be decoded" in result.stderr, result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("stage, rank", [("fit", 1), ("validate", 1), ("test", 0), ("predict", 0)])
def test_a_failure_on_any_rank_fails_every_stage(stage, rank, lenet_checkpoint):
    checkpoint = [] if stage == "fit" else [f"--ckpt_path={lenet_checkpoint}"]
    args = ["--config", str(CONFIGS / "lenet5.yaml"), *SMALL, *checkpoint, "--trainer.logger=false"]
    result = launch(stage, *args, fail_on(stage, rank))
    assert result.returncode != 0
    assert f"visiontasks: error: rank {rank}" in result.stderr and "broken.png: cannot be decoded" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_with_torchrun_on_localhost():
    """Two "nodes" of one process each, started by two torchrun commands as on two machines: one run folder,
    written by rank zero, with the checkpoint and the validation metrics of the whole run."""
    port = free_port()
    args = ["fit", "--config", str(CONFIGS / "lenet5.yaml"), *SMALL, *ON_CPU, "--trainer.logger=CSVLogger",
            "--trainer.num_nodes=2", "--trainer.devices=1", "--trainer.strategy=ddp"]  # fmt: skip
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node_rank={rank}",
             "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "visiontasks", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-4000:]
    run = only_run("lenet5")
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    two = logged(run)
    one = run_cli("validate", "--config", str(CONFIGS / "lenet5.yaml"), *SMALL, f"--ckpt_path={checkpoint}",
                  "--trainer.logger=false").trainer.callback_metrics  # fmt: skip
    for key in ("val/acc", "val/loss"):  # the fit's last validation, on both nodes' shares: one process's on all images
        assert two[key] == pytest.approx(float(one[key]), rel=1e-4, abs=1e-6), (key, two[key], float(one[key]))
