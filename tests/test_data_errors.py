"""Bad input fails when the data is set up, naming the file and the fix (the case matrix is tests/test_bad_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import write_image
from PIL import Image

from visiontasks import ClassificationTask, DataError, ShapesDataModule


def test_num_classes_that_disagrees_with_the_data():
    import pytorch_lightning as pl

    data = ShapesDataModule(task="classification", num_samples=30, image_size=32, batch_size=8)
    task = ClassificationTask(model="lenet5", num_classes=5)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False)
    with pytest.raises(DataError, match=r"num_classes=5 but the data has 3 classes"):
        trainer.fit(task, datamodule=data)


def test_image_modes_convert_to_in_channels():
    from visiontasks.data.images import read_image

    rgba = write_image(Path("a.png"), mode="RGBA")
    gray = write_image(Path("g.png"), mode="L")
    palette = write_image(Path("p.png"), mode="P")
    deep = Path("d.png")
    Image.fromarray(np.full((16, 16), 60000, dtype=np.uint16)).save(deep)
    for path in (rgba, gray, palette):
        assert read_image(path, 3).shape == (16, 16, 3)
        assert read_image(path, 1).shape == (16, 16, 1)
    sixteen = read_image(deep, 3)
    assert sixteen.shape == (16, 16, 3) and sixteen.dtype == np.float32
    assert sixteen.max() == pytest.approx(60000 / 65535)
