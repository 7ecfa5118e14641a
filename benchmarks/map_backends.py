"""Time COCO mAP computation with each torchmetrics backend, side by side on the same data.

    python benchmarks/map_backends.py                    # 500 images x 100 detections, boxes and masks
    python benchmarks/map_backends.py --images 100 --iou-types bbox

Times the tasks' ``MeanAveragePrecision.compute()`` only (the once-per-epoch cost); ``update`` is
the same for both backends. Prints each backend's seconds, the ratio, and checks the two agree.
"""

from __future__ import annotations

import argparse
import time

import torch

from visiontasks.metrics import CocoMeanAveragePrecision

BACKENDS = ("pycocotools", "faster_coco_eval")


def synthetic(images: int, detections: int, objects: int, classes: int, size: int, masks: bool, seed: int = 0):
    """Ground truth boxes and noisy detections around them (plus random ones), as torchmetrics takes them."""
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(images):
        corner = torch.rand(objects, 2, generator=g) * size * 0.7
        extent = 8 + torch.rand(objects, 2, generator=g) * size * 0.25
        truth = torch.cat([corner, corner + extent], 1)
        labels = torch.randint(classes, (objects,), generator=g)
        chosen = torch.randint(objects, (detections // 2,), generator=g)
        near = truth[chosen] + torch.randn(len(chosen), 4, generator=g) * 3
        far_corner = torch.rand(detections - len(near), 2, generator=g) * size * 0.8
        far = torch.cat([far_corner, far_corner + 4 + torch.rand(len(far_corner), 2, generator=g) * size * 0.2], 1)
        boxes = torch.cat([near, far]).clamp(0, size)
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        target = {"boxes": truth, "labels": labels}
        pred = {
            "boxes": boxes,
            "labels": torch.cat([labels[chosen], torch.randint(classes, (len(far),), generator=g)]),
            "scores": torch.rand(detections, generator=g),
        }
        if masks:
            target["masks"], pred["masks"] = box_masks(truth, size), box_masks(boxes, size)
        preds.append(pred)
        targets.append(target)
    return preds, targets


def box_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Filled boxes as masks: the mask IoU work is the same as for real shapes."""
    grid = torch.arange(size)
    x = (grid[None, :] >= boxes[:, 0, None].floor()) & (grid[None, :] < boxes[:, 2, None].ceil())
    y = (grid[None, :] >= boxes[:, 1, None].floor()) & (grid[None, :] < boxes[:, 3, None].ceil())
    return y[:, :, None] & x[:, None, :]


def time_compute(backend: str, iou_type: str, preds, targets, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of one compute, and the mAP it gave."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        metric = CocoMeanAveragePrecision(iou_type=iou_type, backend=backend)  # what the tasks run
        metric.warn_on_many_detections = False
        metric.update(preds, targets)
        start = time.perf_counter()
        value = float(metric.compute()["map"])
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--detections", type=int, default=100, help="detections per image")
    parser.add_argument("--objects", type=int, default=10, help="ground-truth objects per image")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (mask size)")
    parser.add_argument("--iou-types", nargs="+", default=["bbox", "segm"], choices=["bbox", "segm"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.images} images x {args.detections} detections ({args.objects} objects, {args.classes} classes)")
    for iou_type in args.iou_types:
        preds, targets = synthetic(
            args.images, args.detections, args.objects, args.classes, args.size, masks=iou_type == "segm"
        )
        results = {b: time_compute(b, iou_type, preds, targets, args.repeats) for b in BACKENDS}
        (slow, slow_map), (fast, fast_map) = results["pycocotools"], results["faster_coco_eval"]
        print(
            f"{iou_type:5s} pycocotools {slow:7.3f} s   faster_coco_eval {fast:7.3f} s   "
            f"ratio {slow / fast:5.2f}x   mAP {slow_map:.6f} vs {fast_map:.6f}"
            + ("" if abs(slow_map - fast_map) < 1e-6 else "   (MISMATCH)")
        )


if __name__ == "__main__":
    main()
