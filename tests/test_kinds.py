"""The task-kind schema: every kind batches to the types its task reads, and a task given another kind fails at set-up."""

from __future__ import annotations

import pytest
import torch
from helpers import CONFIGS, run_cli, tiny

from visiontasks import DataError, ShapesDataModule
from visiontasks.kinds import KINDS, kind_of
from visiontasks.tasks import TASK_OF_KIND


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_collates_to_its_schema(name):
    kind = KINDS[name]
    data = ShapesDataModule(task=name, num_samples=24, image_size=32, batch_size=4, max_objects=3,
                            train_transforms=["HorizontalFlip"])  # fmt: skip
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["image"].dtype == torch.float32
    for key, dtype in kind.dtypes.items():
        if key in kind.object_fields:  # optional (COCO's crowd flags); the shapes have none
            continue
        if key in kind.list_keys:  # one tensor per image: objects differ in number
            assert isinstance(batch[key], list) and len(batch[key]) == 4 and all(v.dtype == dtype for v in batch[key])
        else:
            assert batch[key].dtype == dtype and len(batch[key]) == 4
    if kind.per_object:
        for boxes, labels in zip(batch[kind.box], batch[kind.label]):
            assert boxes.shape == (len(labels), 4)
        if kind.instance_masks:
            assert all(m.shape == (len(b), 32, 32) for m, b in zip(batch[kind.instance_masks], batch[kind.box]))
    if kind.multi_hot:
        assert batch[kind.label].shape == (4, 3)
    elif kind.single_object:
        assert batch[kind.label].shape == (4,)
    if kind.mask:
        assert batch[kind.mask].shape == (4, 32, 32)
    if kind.box and not kind.per_object:
        assert batch[kind.box].shape == (4, 4)
    assert isinstance(batch["path"], list) and isinstance(batch["orig_size"], list)


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_has_a_task_that_consumes_it(name):
    assert name in TASK_OF_KIND[name].kinds
    expected = {"multilabel": "ClassificationTask", "instance_segmentation": "InstanceSegmentationTask"}
    assert TASK_OF_KIND[name].__name__ == expected.get(name, name.capitalize() + "Task")


def test_unknown_kind_names_the_close_match():
    with pytest.raises(DataError, match="unknown task kind 'segmentaton': did you mean segmentation"):
        kind_of("segmentaton")


def test_segmentation_task_on_detection_data_fails_at_setup_through_the_cli(capsys):
    with pytest.raises((DataError, SystemExit)) as raised:
        run_cli("fit", "--config", str(CONFIGS / "unet.yaml"), "--data.init_args.task=detection",
                "--trainer.logger=false", *tiny(num_samples=12, image_size=32))  # fmt: skip
    text = f"{raised.value} {capsys.readouterr().err}"
    assert ("SegmentationTask trains on segmentation data, but ShapesDataModule gives detection samples: "
            "set data.init_args.task: segmentation, or use DetectionTask for detection data.") in text  # fmt: skip
