"""Object detection (Faster R-CNN) and instance segmentation (Mask R-CNN): one implementation.

Labels in batches are 0-based; the detector's slot 0 is background, so the task shifts labels by
one on the way in and out. COCO mAP is accumulated over the epoch and computed once at its end.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import MetricCollection

from visiontasks.data.collate import original_targets
from visiontasks.errors import OptionError
from visiontasks.kinds import kind_of
from visiontasks.metrics import detection_metrics
from visiontasks.models.detection import coco_model_name, detect, load_backbone_weights, load_detector_weights
from visiontasks.models.registry import model_entry
from visiontasks.pictures.test_plots import pr_figure
from visiontasks.reports import save_report
from visiontasks.results import DetectionResult
from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.export_graph import ExportGraph


class DetectionTask(BaseTask):
    """Find every object: a box, a class and a score for each (torchvision Faster R-CNN with an FPN).

    Args:
        model: the registered detector; default ``faster_rcnn`` (``mask_rcnn`` for
            :class:`InstanceSegmentationTask`).
        model_options: the detector's own options: backbone, anchors, input sizes, thresholds, head
            widths, and any argument of torchvision's FasterRCNN/MaskRCNN (declared by
            :func:`~visiontasks.models.detection.build_detector`; table in docs/detection.md).
        backbone_weights: ImageNet weights for the backbone (``DEFAULT``, ``IMAGENET1K_V1``) or a file.
        category_ids: the data's category id of each label (COCO ids); taken from the data module.
        map_backend: COCO evaluation code behind the mAP: ``faster_coco_eval`` (faster, same
            numbers) or ``pycocotools``.
        **kwargs: the shared options of :class:`BaseTask`; ``weights`` takes torchvision's COCO
            weights by name (``DEFAULT``, ``COCO_V1``; resnet50, and mobilenet_v3_large for boxes)
            or a file.
    """

    monitor = "val/map"
    monitor_mode = "max"
    kinds = ("detection",)
    default_model = "faster_rcnn"

    def __init__(
        self,
        model: str | None = None,
        model_options: dict[str, Any] | None = None,
        backbone_weights: str | None = None,
        category_ids: list[int] | None = None,
        map_backend: Literal["faster_coco_eval", "pycocotools"] = "faster_coco_eval",
        **kwargs: Any,
    ) -> None:
        model = model or self.default_model  # saved as such in the checkpoint's hyper-parameters
        super().__init__(**kwargs)
        if category_ids is not None and len(category_ids) != self.num_classes:
            raise OptionError(f"{len(category_ids)} category_ids given for num_classes={self.num_classes}")
        self.test_metrics["map"].class_metrics = True  # per-class AP for the test report only
        self.test_metrics["map"].extended_summary = True  # and the precision-recall curves

    @property
    def masks(self) -> bool:
        """Objects have masks as well as boxes (the kind's samples carry instance masks)."""
        return kind_of(self.kinds[0]).instance_masks is not None

    @property
    def backbone(self) -> str:
        """The detector's backbone: its ``backbone`` option, else the model's default."""
        return (self.hparams.model_options or {}).get("backbone") or model_entry(self.hparams.model).options["backbone"]

    @property
    def category_ids(self) -> list[int]:
        """The category id of each label: the data's COCO ids, else 1..num_classes (COCO's convention)."""
        return list(self.hparams.category_ids or range(1, self.num_classes + 1))

    def configure_models(self) -> None:
        h = self.hparams
        pretrained = bool(h.weights or h.backbone_weights)
        self.model = self.build_model(self.kinds[0], num_classes=self.num_classes, pretrained=pretrained)
        if h.weights:
            coco_model_name(h.model, self.backbone, h.weights)  # no such COCO model: fail now, not at fit

    def configure_metrics(self, stage: str) -> MetricCollection:
        return detection_metrics(self.masks, self.hparams.map_backend)

    def load_pretrained(self, weights: str) -> None:
        load_detector_weights(self.model, weights, self.hparams.model, self.backbone)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if getattr(datamodule, "category_ids", None):
            self.hparams.category_ids = list(datamodule.category_ids)  # kept in the checkpoint
        self.follow_input_size(getattr(datamodule, "input_size", None))
        weights = self.hparams.backbone_weights
        if weights and not self.hparams.weights and self.trainer.ckpt_path is None and not self.pretrained_loaded:
            load_backbone_weights(self.model, weights, self.backbone)
            self.pretrained_loaded = True

    def follow_input_size(self, size: tuple[int, int] | None) -> None:
        """Without ``min_size``/``max_size`` in ``model_options`` the detector takes images at the data's input
        size instead of torchvision's 800 px (a 25-fold upscale of 32 px digits); recorded in the checkpoint."""
        options = dict(self.hparams.model_options or {})
        if size is None or "min_size" in options or "max_size" in options:
            return
        options.update(min_size=min(size), max_size=max(size))
        self.model.transform.min_size, self.model.transform.max_size = (min(size),), max(size)
        self.hparams.model_options = options

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A restored detector takes images at the size it was trained at: the CLI builds the task from the config
        (no ``min_size``/``max_size``), and a predict folder gives no training size to follow."""
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("hyper_parameters", {}).get("model_options") or {}
        if "min_size" in saved and "max_size" in saved:
            self.follow_input_size((int(saved["min_size"]), int(saved["max_size"])))

    def export_graph(self) -> ExportGraph:
        """torchvision's detector itself: it resizes, normalises and maps boxes back to the input's pixels."""
        outputs = {"boxes": "N x 4: x_min, y_min, x_max, y_max in the input image's pixels",
                   "labels": "N: class index + 1 (0 is the background), so class_names[label - 1]",
                   "scores": "N: confidence, highest first"}  # fmt: skip
        if self.masks:
            outputs["masks"] = "N x 1 x H x W: mask probabilities at the input's size; > 0.5 is the object"
        return ExportGraph(self.model, outputs, any_size=True, one_image=True, sidecar={
            "category_ids": list(self.category_ids),
            "torchscript_call": "model([image]) returns (losses, detections); detections[0] holds boxes, labels, scores",
        })  # fmt: skip

    def forward(self, images: list[Tensor], output_sizes: list[tuple[int, int]] | None = None) -> list[dict[str, Tensor]]:
        """Detections of CxHxW images in [0, 1]: ``boxes`` (xyxy), ``scores``, ``labels`` (0-based), ``masks``."""
        _, detections = detect(self.model, images, output_sizes=output_sizes)
        return [dict(d, labels=d["labels"] - 1) for d in detections]

    def _targets(self, batch: dict[str, Any], crowd: bool) -> list[dict[str, Tensor]]:
        """Per-image targets with 0-based labels; crowd regions only where asked (the metric ignores them)."""
        targets = []
        for k, (boxes, labels) in enumerate(zip(batch["boxes"], batch["labels"])):
            iscrowd = batch["iscrowd"][k] if "iscrowd" in batch else torch.zeros_like(labels)
            keep = torch.ones_like(iscrowd, dtype=torch.bool) if crowd else iscrowd == 0
            target = {"boxes": boxes[keep], "labels": labels[keep]}
            if crowd:
                target["iscrowd"] = iscrowd
            if self.masks:
                target["masks"] = batch["masks"][k][keep]
            targets.append(target)
        return targets

    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, list[dict[str, Tensor]] | None]:
        targets = [dict(t, labels=t["labels"] + 1) for t in self._targets(batch, crowd=False)]
        # detections in the files' own pixels, where the metrics score them (see update_metrics)
        sizes = batch.get("orig_size") if "original" in batch else None
        losses, detections = detect(self.model, list(batch["image"]), targets, output_sizes=sizes)
        self.log_losses(stage, losses, len(targets))
        if detections is not None:
            detections = [dict(d, labels=d["labels"] - 1) for d in detections]
        return sum(losses.values()), detections

    def sample_losses(self, batch: dict[str, Any]) -> Tensor:
        targets = [dict(t, labels=t["labels"] + 1) for t in self._targets(batch, crowd=False)]
        return torch.stack([sum(detect(self.model, [image], [target])[0].values()) for image, target in zip(batch["image"], targets)])

    def update_metrics(self, metrics: MetricCollection, detections: Any, batch: dict[str, Any]) -> None:
        if detections is None:  # training: the detector gives losses only
            return
        predictions = [dict(d, masks=d["masks"].bool()) if self.masks else d for d in detections]
        truth = self._targets(original_targets(batch), crowd=True)  # in the files' pixels, as COCO scores
        targets = [dict(t, masks=t["masks"].bool()) if self.masks else t for t in truth]
        metrics.update(predictions, targets)

    def on_train_epoch_end(self) -> None:
        """No training mAP: the detector gives no detections in training mode."""

    def results(self, batch: dict[str, Any], outputs: list[dict[str, Tensor]] | None = None) -> list[DetectionResult]:
        """Per image: boxes (xyxy), labels, scores (and masks) in the original file's pixels, with the data's
        category ids and, for COCO data, the image's id. ``outputs``: ``forward`` at the original sizes."""
        fields = [self.result_fields(batch, i) for i in range(len(batch["image"]))]
        if outputs is None:
            outputs = self(list(batch["image"]), [f["orig_size"] for f in fields])
        results = []
        for k, (found, f) in enumerate(zip(outputs, fields)):
            found = {key: value.detach().cpu().numpy() for key, value in found.items()}
            image_id = batch["image_id"][k] if "image_id" in batch else None
            results.append(DetectionResult(**f, boxes=found["boxes"], labels=found["labels"], scores=found["scores"],
                                           masks=found.get("masks"), category_ids=self.category_ids,
                                           image_id=None if image_id is None else int(image_id)))  # fmt: skip
        return results

    def report(self, values: dict[str, Any]) -> None:
        """COCO AP (IoU .50:.95), AR@100 and ABO (average best overlap) per class, and for masks their mask AP;
        precision-recall curves at IoU 0.5."""
        columns = {"ap": "test/map_per_class", "ar_100": "test/mar_100_per_class"}
        if self.masks:
            columns["mask_ap"] = "test/segm_map_per_class"
        abo = values.get("test/abo_per_class") or {}
        rows, classes = [], values.get("test/classes", [])
        for n, label in enumerate(classes):
            row = {"class": self.class_names[label], "category_id": self.category_ids[label]}
            row.update({name: float(values[key][n]) for name, key in columns.items()})
            rows.append(row | {"abo": float(abo.get(label, 0.0))})
        overall = {"ap": "test/map", "ar_100": "test/mar_100", "mask_ap": "test/segm_map"}
        rows.append({"class": "all", "category_id": "", **{k: float(values[overall[k]]) for k in columns},
                     "abo": float(values.get("test/mabo", 0.0))})  # fmt: skip
        figures, curves = {}, {}
        precision = values.get("test/precision")
        if precision is not None and len(classes):
            recall = torch.linspace(0, 1, precision.shape[1]).numpy()
            at_50 = [precision[0, :, n, 0, -1].cpu().numpy() for n in range(len(classes))]  # IoU .5, all sizes, 100 dets
            names = [self.class_names[label] for label in classes]
            figures["pr_curve"] = pr_figure(recall, at_50, names, "precision-recall at IoU 0.5 (test)")
            kept = [(recall[p >= 0], p[p >= 0]) for p in at_50]
            curves["pr_curve_plot"] = ([k[0] for k in kept], [k[1] for k in kept], names, "precision-recall at IoU 0.5", "recall")
        title = "Detection report (test): COCO AP per class, ABO = average best overlap"
        save_report(self.trainer, "test_report", title, rows, figures, curves=curves)


class InstanceSegmentationTask(DetectionTask):
    """Find every object with its mask (torchvision Mask R-CNN); box and mask mAP are logged
    (``val/map...`` and ``val/segm_map...``). Takes the options of :class:`DetectionTask`."""

    kinds = ("instance_segmentation",)
    default_model = "mask_rcnn"
