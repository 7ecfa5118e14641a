"""Start-up of ``python -m visiontasks --help`` against importing what it cannot avoid, side by side.

    python benchmarks/startup.py              # 5 interleaved rounds, target <= 1.1x
    python benchmarks/startup.py --rounds 9

The package imports W&B, matplotlib, pycocotools, scikit-image, scikit-learn and albumentations
only where they are used, so a command costs little more than torch, torchvision and Lightning.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report, seconds  # noqa: E402

BASELINE = [sys.executable, "-c", "import torch, torchvision, pytorch_lightning"]
COMMAND = [sys.executable, "-m", "visiontasks", "--help"]


def run(command: list[str]) -> float:
    return seconds(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(COMMAND)  # warm the file cache for both
    medians = interleaved({"help": lambda: run(COMMAND), "imports": lambda: run(BASELINE)}, args.rounds)
    report("start-up", ("visiontasks --help", medians["help"]), ("import torch+torchvision+lightning", medians["imports"]),
           "s", "<= 1.1")  # fmt: skip


if __name__ == "__main__":
    main()
