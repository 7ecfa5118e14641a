"""What each run picture costs per epoch, and the README's pictures.

Fits (and tests) a few shipped configs in this process with every picture on, reads the seconds each
picture took from the ``RunPictures`` callback, and prints them per epoch beside the epoch's time; then
fits once more with every picture off and prints the ratio of the two fit times (interleaved rounds).

    python benchmarks/pictures.py                       # lenet5, unet, localization; 400 images, 2 epochs
    python benchmarks/pictures.py --configs faster_rcnn --samples 120 --epochs 1
    python benchmarks/pictures.py --save-readme docs/pictures   # also copy the README's pictures there
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved  # noqa: E402

from visiontasks.cli import main  # noqa: E402
from visiontasks.pictures import RunPictures  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
OFF = ["--pictures.curves=false", "--pictures.grid=0", "--pictures.overlays=0", "--pictures.filters=false",
       "--pictures.top_losses=0", "--pictures.grad_cam=0"]  # fmt: skip
README_PICTURES = {  # config: pictures of its run (fit folder, or test/) shown in the README
    "lenet5": ["test/top_losses.png", "test/grad_cam.png"],
    "unet": ["val_predictions.png", "curves.png"],
}


def command(config: str, stage: str, samples: int, epochs: int, *extra: str) -> list[str]:
    return [stage, f"--config={CONFIGS / config}.yaml", f"--data.init_args.num_samples={samples}",
            "--data.init_args.num_workers=0", f"--trainer.max_epochs={epochs}", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.accelerator=cpu", "--trainer.devices=1", *extra]  # fmt: skip


def pictures_of(cli) -> RunPictures:
    return next(c for c in cli.trainer.callbacks if isinstance(c, RunPictures))


def measure(config: str, samples: int, epochs: int, rounds: int, save: Path | None) -> None:
    costs: dict[str, float] = {}

    def with_pictures() -> float:
        start = time.perf_counter()
        fitted = main(command(config, "fit", samples, epochs))
        seconds = time.perf_counter() - start
        costs.update({f"fit {k}": v / epochs for k, v in pictures_of(fitted).seconds.items()})
        run = fitted.run.path
        tested = main(command(config, "test", samples, epochs, f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
        costs.update({f"test {k}": v for k, v in pictures_of(tested).seconds.items()})
        if save is not None:
            for name in README_PICTURES.get(config, []):
                save.mkdir(parents=True, exist_ok=True)
                shutil.copy(run / name, save / f"{config}_{Path(name).name}")
        return seconds

    def without_pictures() -> float:
        start = time.perf_counter()
        main(command(config, "fit", samples, epochs, *OFF))
        return time.perf_counter() - start

    times = interleaved({"on": with_pictures, "off": without_pictures}, rounds)
    epoch = times["on"] / epochs
    print(f"\n{config}: {samples} images, {epochs} epochs; fit {times['on']:.1f} s with pictures, {times['off']:.1f} s "
          f"without: ratio {times['on'] / times['off']:.3f}; one epoch ~{epoch:.1f} s")  # fmt: skip
    for name, value in sorted(costs.items()):
        per = "per epoch" if name.startswith("fit") else "once, at test"
        print(f"  {name:<22} {value:7.3f} s {per}" + (f" ({100 * value / epoch:.1f}% of an epoch)" if per == "per epoch" else ""))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["lenet5", "unet", "localization"])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--save-readme", type=Path, default=None, help="copy the README's pictures into this folder")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse()
    save = args.save_readme.resolve() if args.save_readme else None
    os.chdir(tempfile.mkdtemp(prefix="pictures-bench-"))
    for name in args.configs:
        measure(name, args.samples, args.epochs, args.rounds, save)
