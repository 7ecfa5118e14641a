"""Image classification: one label per image (softmax) or several (multi-label, sigmoid)."""

from __future__ import annotations

import math
from typing import Any, Literal

from torch import Tensor
from torchmetrics import MetricCollection

from visiontasks.errors import check_option
from visiontasks.metrics import classification_metrics
from visiontasks.models.classification_losses import ClassificationLoss, ClassificationLossName
from visiontasks.models.classifiers import head_name
from visiontasks.models.timm_weights import load_timm_weights
from visiontasks.models.tta import TTAName
from visiontasks.models.weights import load_matching, state_dict_for
from visiontasks.pictures.test_plots import confusion_figures, roc_figure
from visiontasks.reports import per_class_rows, save_report
from visiontasks.results import ClassificationResult
from visiontasks.tasks.balance import loss_weights
from visiontasks.tasks.base import BaseTask
from visiontasks.tasks.export_graph import CLASSES, ExportGraph, Probabilities
from visiontasks.tasks.tta import active_views, evaluation_scores


class ClassificationTask(BaseTask):
    """Classify whole images.

    Args:
        model: a registered classifier (``model_names("classification")``: torchvision's resnet18,
            vgg16, mobilenet_v3_large, ..., ``lenet5``, ``simple_cnn``); first and last layers adapt
            to ``in_channels`` and ``num_classes``.
        model_options: the model's own options, e.g. ``{dropout: 0.3}`` for ``simple_cnn``.
        multilabel: several labels per image (targets are multi-hot vectors).
        label_smoothing: cross-entropy label smoothing (single-label only).
        class_weights: per-class loss weights for imbalanced data: one per class (``pos_weight`` for multi-label),
            or ``auto``: inverse class frequency in the training split (logged with the counts).
        loss: ``ce`` (cross-entropy; binary cross-entropy for multi-label) or ``focal`` (Lin et al., 2017:
            confident, easy images count less; torchvision's ``sigmoid_focal_loss`` for multi-label).
        focal_gamma: focusing exponent of the focal loss.
        tta: test-time augmentation at test and predict: the class probabilities averaged over the image and
            its views (``hflip``, ``vflip``, ``scale_up``, ``scale_down``: only those that cannot change the
            label); ``true`` is ``[hflip]``. Results and predictions record the views used.
        top_k: how many ranked classes predictions list.
        **kwargs: the shared options of :class:`BaseTask` (num_classes, weights, optimizer, ...).
    """

    monitor = "val/acc"
    monitor_mode = "max"
    kinds = ("classification", "multilabel")
    explained_by_grad_cam = True

    def __init__(
        self,
        model: str = "resnet18",
        model_options: dict[str, Any] | None = None,
        multilabel: bool = False,
        label_smoothing: float = 0.0,
        class_weights: list[float] | Literal["auto"] | None = None,
        top_k: int = 3,
        loss: ClassificationLossName = "ce",
        focal_gamma: float = 2.0,
        tta: bool | list[TTAName] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        self.model = self.build_model("classification", num_classes=self.num_classes, in_channels=self.hparams.in_channels)

    def configure_losses(self) -> None:
        weights = self.hparams.class_weights
        check_option(not isinstance(weights, list) or all(math.isfinite(w) and w >= 0 for w in weights),
                     "--model.init_args.class_weights", weights, "weights are finite numbers, 0 or more (or auto).")  # fmt: skip
        smoothing = self.hparams.label_smoothing
        check_option(0 <= smoothing < 1, "--model.init_args.label_smoothing", smoothing, "give a number in [0, 1), e.g. 0.1.")
        check_option(self.hparams.top_k >= 1, "--model.init_args.top_k", self.hparams.top_k, "give 1 or more classes to rank.")
        self.criterion = ClassificationLoss(self.hparams.loss, self.hparams.multilabel, loss_weights(self),
                                            self.hparams.label_smoothing, self.hparams.focal_gamma)  # fmt: skip

    def configure_metrics(self, stage: str) -> MetricCollection:
        return classification_metrics(self.num_classes, self.hparams.multilabel, stage)

    def load_pretrained(self, weights: str) -> None:
        if not load_timm_weights(self.model, weights):
            load_matching(self.model, state_dict_for(weights, self.hparams.model))

    def trainable_when_frozen(self) -> tuple[str, ...]:
        return super().trainable_when_frozen() or (f"model.{head_name(self.model)}",)

    def export_graph(self) -> ExportGraph:
        multi = bool(self.hparams.multilabel)
        kind = "sigmoid per class (multi-label: each >= 0.5 is a label)" if multi else "softmax"
        return ExportGraph(Probabilities(self, multi), {"probabilities": f"B x num_classes: {kind} {CLASSES}"})

    def forward(self, images: Tensor) -> Tensor:
        """Class logits of a BxCxHxW batch in [0, 1]."""
        return self.model(self.standardize(images))

    def probabilities(self, logits: Tensor) -> Tensor:
        return logits.sigmoid() if self.hparams.multilabel else logits.softmax(dim=1)

    def compute(self, batch: dict[str, Any], stage: str) -> tuple[Tensor, Tensor]:
        logits = evaluation_scores(self, batch["image"], multilabel=self.hparams.multilabel)
        return self.criterion(logits, batch["label"]), logits

    def sample_losses(self, batch: dict[str, Any]) -> Tensor:
        reduction, self.criterion.reduction = self.criterion.reduction, "none"
        try:
            losses = self.criterion(self(batch["image"]), batch["label"])
        finally:
            self.criterion.reduction = reduction
        return losses.mean(dim=1) if losses.ndim > 1 else losses  # multi-label: the mean over the labels

    def update_metrics(self, metrics: MetricCollection, logits: Tensor, batch: dict[str, Any]) -> None:
        target = batch["label"].long()
        metrics.update(self.probabilities(logits), target)

    def results(self, batch: dict[str, Any], outputs: Tensor | None = None) -> list[ClassificationResult]:
        """Per image: the predicted label(s) and score(s), the top-k classes and every class's probability."""
        logits = evaluation_scores(self, batch["image"], multilabel=self.hparams.multilabel) if outputs is None else outputs
        probs = self.probabilities(logits).detach().float().cpu()
        tta = active_views(self)
        names = self.class_names
        k = min(self.hparams.top_k, self.num_classes)
        results = []
        for i, p in enumerate(probs):
            scores, indices = p.topk(k)
            if self.hparams.multilabel:
                chosen = (p >= 0.5).nonzero().flatten().tolist()
                label, score = [names[c] for c in chosen], [round(float(p[c]), 4) for c in chosen]
            else:
                label, score = names[int(indices[0])], round(float(scores[0]), 4)
            top = [(names[int(c)], float(v)) for v, c in zip(scores, indices)]
            results.append(ClassificationResult(**self.result_fields(batch, i), label=label, score=score, top_k=top,
                                                probabilities=p.numpy(), tta=tta))  # fmt: skip
        return results

    def report(self, values: dict[str, Any]) -> None:
        """Precision, recall, F1 and support per class; confusion matrices (single-label) and ROC curves."""
        matrix, names = values["test/confmat"].cpu().numpy(), self.class_names
        if self.hparams.multilabel:  # one 2x2 matrix per label: [[tn, fp], [fn, tp]]
            tp, fp, fn = matrix[:, 1, 1], matrix[:, 0, 1], matrix[:, 1, 0]
            figures, confusion = {}, None
        else:
            tp = matrix.diagonal()
            fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
            figures, confusion = confusion_figures(matrix, names), (matrix, names)
        fpr, tpr = ([c.cpu().numpy() for c in curve] for curve in values["test/roc"][:2])
        figures["roc"] = roc_figure(fpr, tpr, names)
        rows = per_class_rows(names, tp, fp, fn)
        curves = {"roc_plot": (fpr, tpr, names, "ROC (test)", "false positive rate")}
        save_report(self.trainer, "test_report", "Classification report (test)", rows, figures, confusion, curves)
