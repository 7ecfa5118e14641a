"""The classic segmentation baselines and the U-Net side by side: test mIoU, Dice, accuracy and time.

    python benchmarks/classic_segmentation.py                        # every baseline + the U-Net, shipped configs
    python benchmarks/classic_segmentation.py --shapes circle        # one shape class: object vs background
    python benchmarks/classic_segmentation.py --methods otsu kmeans --no-unet

Each row is ``fit`` then ``test`` (best checkpoint) of a shipped config through the CLI, on the
same data (the configs' shapes: 1500 images of 64 px, seed 0, the same test split), and the
same metric for an all-background prediction. Prints a Markdown table for docs/segmentation.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import wandb

from visiontasks import ShapesDataModule
from visiontasks.cli import main as cli
from visiontasks.metrics import segmentation_metrics

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CONFIG_OF = {  # the shipped config of each method; the others run the config of their family
    "otsu": "classic_threshold", "local_threshold": "classic_threshold",
    "sobel_watershed": "classic_edges", "canny_watershed": "classic_edges",
    "kmeans": "classic_kmeans", "slic": "classic_kmeans",
}  # fmt: skip
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def fit_and_test(config: str, overrides: list[str]) -> dict[str, float]:
    """Test metrics and the seconds (wall and CPU) of fitting then testing one config."""
    wall, cpu = time.perf_counter(), time.process_time()
    fitted = cli(["fit", "--config", str(CONFIGS / f"{config}.yaml"), *overrides, *QUIET])
    best = fitted.trainer.checkpoint_callback.best_model_path
    tested = cli(["test", "--config", str(CONFIGS / f"{config}.yaml"), f"--ckpt_path={best}", *overrides, *QUIET])
    values = {k.removeprefix("test/"): float(v) for k, v in tested.trainer.callback_metrics.items() if k.startswith("test/")}
    values.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()
    return values


def all_background(shapes: list[str] | None) -> dict[str, float]:
    """The metrics of predicting background everywhere on the configs' test split."""
    data = ShapesDataModule(task="segmentation", num_samples=1500, image_size=64, batch_size=64,
                            **({"shapes": shapes} if shapes else {}))  # fmt: skip
    data.setup("test")
    metrics = segmentation_metrics(data.num_classes)
    for batch in data.test_dataloader():
        metrics.update(torch.zeros_like(batch["mask"]), batch["mask"])
    return {k: float(v) for k, v in metrics.compute().items() if v.numel() == 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=list(CONFIG_OF), choices=list(CONFIG_OF))
    parser.add_argument("--shapes", nargs="*", help="shape classes (default: the configs' circle, square, triangle)")
    parser.add_argument("--no-unet", action="store_true", help="leave out the U-Net (minutes on a CPU)")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    sys.argv = sys.argv[:1]
    data = [f"--data.init_args.shapes=[{','.join(args.shapes)}]"] if args.shapes else []
    rows = [("all background", "-", all_background(args.shapes))]
    for method in args.methods:
        rows.append((method, CONFIG_OF[method], fit_and_test(CONFIG_OF[method], [f"--model.init_args.model={method}", *data])))
    if not args.no_unet:
        rows.append(("U-Net", "unet", fit_and_test("unet", data)))
    print("\n| method | config | test mIoU | test Dice | test pixel acc | fit + test, wall | CPU time |")
    print("|---|---|---|---|---|---|---|")
    for name, config, v in rows:
        times = f"{v['wall']:.0f} s | {v['cpu']:.0f} s" if "wall" in v else "- | -"
        print(f"| {name} | `{config}` | {v['miou']:.3f} | {v['dice']:.3f} | {v['acc']:.3f} | {times} |")


if __name__ == "__main__":
    main()
