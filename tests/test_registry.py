"""The model registry: names in one place, close matches for typos, options checked against the model's own."""

from __future__ import annotations

import pytest
import torch

from visiontasks import ClassificationTask, DataError, SegmentationTask
from visiontasks.models import create_model, model_names
from visiontasks.models.registry import model_options


def test_unknown_name_suggests_the_close_ones():
    with pytest.raises(DataError, match="unknown classification model 'resnet19': did you mean resnet18"):
        ClassificationTask(model="resnet19", num_classes=3)
    with pytest.raises(DataError, match="'unet' is a segmentation model, not a classification model"):
        ClassificationTask(model="unet", num_classes=3)


def test_an_option_the_model_lacks_is_an_error_naming_its_options():
    lacks = r"model 'fcn_resnet50' has no option base_channels \(its options: num_classes, in_channels\)"
    with pytest.raises(DataError, match=lacks):
        SegmentationTask(model="fcn_resnet50", num_classes=3, model_options={"base_channels": 8})
    with pytest.raises(DataError, match="model_options num_classes: SegmentationTask sets these itself"):
        SegmentationTask(num_classes=3, model_options={"num_classes": 5})


def test_none_options_are_dropped_so_the_model_keeps_its_default():
    assert model_options("unet", {"depth": None, "base_channels": 4}) == {"base_channels": 4}
    assert len(create_model("unet", num_classes=2, depth=None, base_channels=4).down) == 5  # default depth 4
    assert model_options("resnet18", {"dropout": None}) == {}  # even one it lacks: None means "not given"


def test_options_given_by_name_reach_the_model():
    task = SegmentationTask(num_classes=3, model_options={"base_channels": 4, "depth": 2, "upsampling": "bilinear"})
    assert len(task.model.down) == 3 and task.model.head.in_channels == 4
    assert create_model("simple_cnn", "classification", num_classes=3, dropout=0.25).features[-1].p == 0.25


@pytest.mark.parametrize("name", model_names("classification"))
def test_every_registered_classifier_builds_and_runs_at_32_px(name):
    size = 64 if name == "alexnet" else 32  # AlexNet's stride-4 stem and three poolings need 63 px or more
    model = create_model(name, "classification", num_classes=3, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, size, size)).shape == (1, 3)
