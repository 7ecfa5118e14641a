"""The course's metrics beside the usual ones: balanced error rate and mean average best overlap."""

from __future__ import annotations

import pytest
import torch

from visiontasks.metrics import MeanAverageBestOverlap, classification_metrics


def test_balanced_error_rate_weighs_every_class_alike():
    """9 of class 0 all right, 1 of class 1 wrong: accuracy 0.9, but half the classes fail: BER 0.5."""
    metrics = classification_metrics(2)
    target = torch.tensor([0] * 9 + [1])
    metrics.update(torch.tensor([[0.9, 0.1]] * 10), target)
    values = metrics.compute()
    assert float(values["acc"]) == pytest.approx(0.9) and float(values["ber"]) == pytest.approx(0.5)


def test_multilabel_balanced_error_rate_is_the_mean_of_miss_and_false_alarm_rates():
    metrics = classification_metrics(2, multilabel=True)
    target = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.1], [0.1, 0.8], [0.1, 0.7]])  # label 0: one miss of 2; label 1: 1 of 3 false
    metrics.update(scores, target)
    assert float(metrics.compute()["ber"]) == pytest.approx((0.5 * (1 / 2 + 0) + 0.5 * (0 + 1 / 3)) / 2)


def test_mabo_averages_each_true_objects_best_overlap_per_class_then_over_classes():
    metric = MeanAverageBestOverlap()
    preds = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5]]), "labels": torch.tensor([1, 0]), "scores": torch.tensor([0.9, 0.8])}]
    target = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 10]]), "labels": torch.tensor([0, 0, 1])}]
    metric.update(preds, target)
    values = metric.compute()
    # class 0: best overlaps 1.0 (any class counts) and 0.0 (nothing near) -> 0.5; class 1: 0.5 -> MABO 0.5
    assert values["abo_per_class"] == pytest.approx({0: 0.5, 1: 0.5})
    assert float(values["mabo"]) == pytest.approx(0.5)
