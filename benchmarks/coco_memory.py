"""Memory of the COCO data module with 20k images against 1k: peak RSS of a fresh process each, side by side.

    python benchmarks/coco_memory.py                        # 1000 vs 20000 images, 3 boxes each, target <= 1.2x
    python benchmarks/coco_memory.py --small 500 --large 5000 --rounds 1

Each side reads its COCO JSON, sets up (the set-up decodes every image once to check it: a broken
file fails before training), and draws 200 training batches; samples are read from disk on demand,
so memory grows with the annotations only. ``cache_images`` is off here: ``auto`` (the default)
keeps decoded images in memory when they fit, on purpose trading memory for speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import interleaved, report  # noqa: E402

SIDE = r"""
import resource, sys
from visiontasks import CocoDataModule
data = CocoDataModule(train_json=sys.argv[1], images=sys.argv[2], image_size=32, batch_size=8, cache_images=False)
data.setup("fit")
for n, batch in enumerate(data.train_dataloader()):
    if n == 200:
        break
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def write_coco(root: Path, count: int) -> Path:
    """``count`` distinct 32x32 PNGs with 3 boxes each, and their COCO JSON."""
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    images, annotations = [], []
    for i in range(count):
        name = f"{i:06d}.png"
        if not (images_dir / name).exists():
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(images_dir / name)
        images.append({"id": i + 1, "file_name": name, "width": 32, "height": 32})
        for k in range(3):
            x, y = rng.integers(0, 20, 2).tolist()
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": k + 1,
                                "bbox": [x, y, 10, 10], "area": 100, "iscrowd": 0})  # fmt: skip
    path = root / f"coco_{count}.json"
    categories = [{"id": k + 1, "name": f"class{k}"} for k in range(3)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def peak_rss(json_file: Path) -> float:
    out = subprocess.run([sys.executable, "-c", SIDE, str(json_file), str(json_file.parent / "images")], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{json_file.name}: {out.stderr.strip().splitlines()[-1]}")
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        large = write_coco(Path(folder), args.large)  # the small set's images are the first of these
        small = write_coco(Path(folder), args.small)
        medians = interleaved({"large": lambda: peak_rss(large) / 2**20, "small": lambda: peak_rss(small) / 2**20},
                              args.rounds)  # fmt: skip
    report("COCO data module peak RSS", (f"{args.large} images", medians["large"]), (f"{args.small} images", medians["small"]),
           "MiB", "<= 1.2")  # fmt: skip


if __name__ == "__main__":
    main()
