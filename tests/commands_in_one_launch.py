"""Run ``fit``, ``test`` and ``predict`` of several configs one after another in one process, as a user's script
calling :func:`visiontasks.cli.main` would: ``python commands_in_one_launch.py CONFIG... -- ARGS``.

Launched with ``--trainer.devices=2 --trainer.strategy=ddp`` in ARGS, Lightning starts the second process once,
for the first command, and every later command runs on the same two processes: the 2-process tests of every
task kind pay for two process start-ups instead of thirty (tests/test_ddp.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

from visiontasks.cli import main

LOG = Path("commands.jsonl")  # one line per command and rank: how many processes ran it, how many images each saw
LOADERS = {"fit": "val_dataloaders", "validate": "val_dataloaders", "test": "test_dataloaders", "predict": "predict_dataloaders"}


def images_seen(trainer, stage: str) -> int:
    """How many images this process evaluated (fit: validated) in ``stage``: its shard under DDP, else all."""
    loaders = getattr(trainer, LOADERS[stage])  # the batch sampler: for predict Lightning wraps it around the shard
    return sum(len(batch) for loader in (loaders if isinstance(loaders, list) else [loaders]) for batch in loader.batch_sampler)


def record(config: str, stage: str, trainer) -> None:
    line = {"config": Path(config).stem, "stage": stage, "rank": dist.get_rank() if dist.is_initialized() else 0,
            "world_size": dist.get_world_size() if dist.is_initialized() else 1, "images": images_seen(trainer, stage)}  # fmt: skip
    with LOG.open("a") as log:
        log.write(json.dumps(line) + "\n")


def run_all(configs: list[str], args: list[str]) -> None:
    for config in configs:
        common = ["--config", config, *args]
        for stage, extra in (("fit", ["--trainer.logger=CSVLogger"]), ("test", ["--ckpt_path=last", "--trainer.logger=CSVLogger"]),
                             ("predict", ["--ckpt_path=last", "--trainer.logger=false"])):  # fmt: skip
            record(config, stage, main([stage, *common, *extra]).trainer)


if __name__ == "__main__":
    split = sys.argv.index("--")
    run_all(sys.argv[1:split], sys.argv[split + 1 :])
