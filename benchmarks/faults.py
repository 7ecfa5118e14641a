"""Hostile inputs that used to take the machine down: time and peak RSS of a fresh process each.

    python benchmarks/faults.py nan_polygon        # a NaN inside a COCO polygon: target < 5 s, < 1 GB
    python benchmarks/faults.py large_predict      # predict on a 12000 x 12000 photo: target < 1.5 GB
    python benchmarks/faults.py startup            # importing visiontasks alone: the baseline of both

Each case runs in its own Python process (``/usr/bin/time``-like: wall time and ``ru_maxrss``),
so one case's memory does not hide another's. The process is capped with ``RLIMIT_AS`` (8 GB) so
a regression fails here instead of waking the kernel's OOM killer.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = {
    "startup": r"""
from visiontasks import CocoDataModule, DataError, SegmentationTask
print("outcome: imported (the baseline of the other cases)")
""",
    "nan_polygon": r"""
import json, pathlib
from PIL import Image
from visiontasks import CocoDataModule, DataError
root = pathlib.Path(sys.argv[1])
import time; start = time.perf_counter()
Image.new("RGB", (640, 480)).save(root / "a.png")
coco = {"images": [{"id": 1, "file_name": "a.png", "height": 480, "width": 640}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 100],
                         "segmentation": [[10, 10, float("nan"), 10, 110, 110, 10, 110]]}],
        "categories": [{"id": 1, "name": "thing"}]}
(root / "c.json").write_text(json.dumps(coco))
try:
    data = CocoDataModule(train_json=str(root / "c.json"), task="instance_segmentation")
    source = data.make_sources()["all"]
    source[0]
    print("outcome: accepted (wrong)")
except DataError as error:
    print("outcome:", error)
print("after_import_s:", round(time.perf_counter() - start, 3))
""",
    "large_predict": r"""
import pathlib
from PIL import Image
from visiontasks import SegmentationTask
from visiontasks.results.formats import write_picture
root = pathlib.Path(sys.argv[1])
Image.MAX_IMAGE_PIXELS = None  # the photo is wanted: 144 Mpx
task = SegmentationTask(num_classes=4, model_options={"base_channels": 4, "depth": 2})
task.saved_inputs = {"image_size": 64, "in_channels": 3}  # as a checkpoint trained at 64 px says
(result,) = task.predict([str(root / "big.png")])
result.save(root / "out")  # the class mask, as the predict command writes it
write_picture(root / "out" / "big_overlay.png", result.plot())  # and its drawing, as the predict command writes it
print("outcome:", result.mask.shape, sorted(p.name for p in (root / "out").iterdir()))
""",
}

SETUP = {
    "large_predict": r"""
import pathlib, sys
import numpy as np
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
tile = np.random.default_rng(0).integers(0, 255, (500, 500, 3), dtype=np.uint8)
Image.fromarray(np.tile(tile, (24, 24, 1))).save(pathlib.Path(sys.argv[1]) / "big.png", compress_level=1)
""",
}
"""Inputs made in a process of their own first, so that making them is not measured."""

PRELUDE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
"""
EPILOGUE = """
print("peak_rss_bytes:", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def run(name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        if name in SETUP:
            subprocess.run([sys.executable, "-c", SETUP[name], folder], check=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PRELUDE + CASES[name] + EPILOGUE, folder], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    rss = int(lines.get("peak_rss_bytes", 0)) / 2**30
    after = f" ({lines['after_import_s']} s after the imports)" if "after_import_s" in lines else ""
    print(f"{name}: {seconds:.2f} s{after}, peak RSS {rss:.2f} GiB, exit {done.returncode}; {lines.get('outcome', done.stderr[-300:])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES), choices=list(CASES))
    for case in parser.parse_args().cases:
        run(case)
