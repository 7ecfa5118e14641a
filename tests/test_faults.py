"""Fault injection: hostile data, bad options, signals, full disks and damaged files, each with its outcome.

Every case writes a tiny input (or injects a fault) and expects either one clear error naming the
file or option and the fix, or the documented handling, checked on the result and the log, with
nothing lost. The runner is :func:`test_bad_inputs.run_case` (the matrix of ordinary bad inputs);
this file holds the faults of issue 27 and their neighbours. What is checked is listed in
docs/faults.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_bad_inputs import Case, run_case
from test_bad_inputs import coco as coco_data
from test_coco import _edit, write_coco

FAULTS: dict[str, Case] = {}


def fault(name: str, make: Callable[[], Callable[[], Any]], error: str | None = None, check=None,
          raises: type[BaseException] | None = None) -> None:  # fmt: skip
    from visiontasks import DataError

    FAULTS[name] = Case(make, error, check, raises or DataError)


# ----- COCO: every field checked before pycocotools sees it ---------------------------------------
def segmented(*polygon: Any, bbox=(1, 1, 5, 5), task: str = "instance_segmentation", **annotation: Any) -> Callable[[], Any]:
    segmentation = list(polygon) if polygon else [[1, 1, 6, 1, 6, 6, 1, 6]]
    return coco_data(annotations=[{"bbox": list(bbox), "segmentation": segmentation, **annotation}], task=task)


def coco_sources(annotations: list[dict], task: str = "instance_segmentation") -> Callable[[], Any]:
    """The module's one source (no split: two images are too few for three splits)."""
    from visiontasks import CocoDataModule

    path = write_coco(Path("c"), annotations)
    return lambda: CocoDataModule(train_json=str(path), task=task).make_sources()["all"]


def coco_edit(change: Callable[[dict], Any], **kwargs: Any) -> Callable[[], Any]:
    return coco_data(lambda r: _edit(r, change), **kwargs)


NAN = float("nan")
fault("coco: NaN in a polygon", lambda: segmented([1, 1, NAN, 1, 6, 6]), r"c/train\.json: annotation 1: polygon .* NaN or infinity")
fault("coco: infinity in a polygon", lambda: segmented([1, 1, float("inf"), 1, 6, 6]), r"annotation 1: polygon .* NaN or infinity")
fault("coco: NaN polygon in a detection file is refused too", lambda: segmented([1, 1, NAN, 1, 6, 6], task="detection"),
      r"annotation 1: polygon .* NaN or infinity")
fault("coco: odd-length polygon", lambda: segmented([1, 1, 6, 1, 6]), r"annotation 1: polygon \[1, 1, 6, 1, 6\] is not a flat")
fault("coco: polygon of two points", lambda: segmented([1, 1, 6, 6]), r"annotation 1: polygon .* 3 or more points")
fault("coco: polygon holding a string", lambda: segmented([1, 1, "6", 1, 6, 6]), r"annotation 1: polygon .* holds a non-number")
fault("coco: polygon far outside the image", lambda: segmented([1, 1, 1e9, 1, 6, 1e9]), r"annotation 1: polygon .* lies far outside the 40x30 image")
fault("coco: polygon that is not a list", lambda: segmented("1 1 6 1 6 6"), r"annotation 1: polygon 1 1 6 1 6 6 is not a flat")
fault("coco: bbox that disagrees with its polygon", lambda: segmented([1, 1, 6, 1, 6, 6, 1, 6], bbox=(20, 10, 5, 5)),
      r"annotation 1: bbox \[20\.0, 10\.0, 5\.0, 5\.0\] disagrees with its polygon, which spans \[1\.0, 1\.0, 5\.0, 5\.0\] .*fix the bbox")
fault("coco: bbox of its polygon (within rounding) is accepted",
      lambda: coco_sources(annotations=[{"bbox": [1, 1, 5, 5], "segmentation": [[1.2, 0.7, 6.4, 1, 6, 6.3, 1, 6]]}]),
      check=lambda source, log: len(source.records[0].labels) == 1 and source[0]["masks"].sum() > 20)
fault("coco: duplicate image ids", lambda: coco_edit(lambda c: c["images"][1].update(id=1)),
      r"c/train\.json: images\[1\] repeats id 1 of images\[0\]; ids must be unique")
fault("coco: duplicate annotation ids", lambda: coco_edit(lambda c: c["annotations"][1].update(id=1)),
      r"c/train\.json: annotations\[1\] repeats id 1 of annotations\[0\]")
fault("coco: duplicate category ids", lambda: coco_edit(lambda c: c["categories"][1].update(id=1)),
      r"c/train\.json: categories\[1\] repeats id 1 of categories\[0\]")
fault("coco: duplicate category names (case and spaces)", lambda: coco_edit(lambda c: c["categories"][1].update(name=" Cat")),
      r"c/train\.json: categories 1 \('cat'\) and 2 \(' Cat'\) have one name .*give each category one entry")
fault("coco: category_id given as a string", lambda: coco_edit(lambda c: c["annotations"][0].update(category_id="2")),
      r"c/train\.json: annotations\[0\] has category_id '2' \(str\); COCO ids are integers: write 2 without quotes")
fault("coco: image id given as a float", lambda: coco_edit(lambda c: c["images"][0].update(id=1.5)),
      r"c/train\.json: images\[0\] has id 1\.5 \(float\); COCO ids are integers")
fault("coco: category id true", lambda: coco_edit(lambda c: c["categories"][0].update(id=True)),
      r"categories\[0\] has id True \(bool\)")
fault("coco: negative image width", lambda: coco_edit(lambda c: c["images"][0].update(width=-40)),
      r"c/train\.json: image 1 has width -40; it must be a positive integer")
fault("coco: iscrowd 2", lambda: coco_edit(lambda c: c["annotations"][0].update(iscrowd=2)),
      r"c/train\.json: annotation 1 has iscrowd 2; COCO's iscrowd is 0 or 1")
fault("coco: RLE counts that do not cover the image",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": {"size": [30, 40], "counts": [5, 10]}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE counts add up to 15 pixels, the 40x30 image has 1200")
fault("coco: RLE with a negative run",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": {"size": [30, 40], "counts": [-5, 1205]}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE counts hold a negative or non-integer run")
fault("coco: RLE size that is not [height, width]",
      lambda: coco_data(annotations=[{"bbox": [0, 0, 4, 4], "segmentation": {"size": "30x40", "counts": "abc"}}],
                        task="instance_segmentation"),
      r"annotation 1: RLE size '30x40' is not \[height, width\]")


# ----- the runner -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name, caplog, capsys):
    run_case(FAULTS[name], caplog, capsys)
