"""Bad input fails when the data is set up, naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visiontasks import ClassificationTask, CsvDataModule, DataError, ImageFolderDataModule, ShapesDataModule


def write_image(path: Path, size: int = 16, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), 128).save(path)
    return path


def class_folders(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    for name in classes:
        for i in range(per_class):
            write_image(root / name / f"{i}.png")
    return root


def setup(datamodule) -> None:
    datamodule.setup("fit")


def test_corrupt_image_is_named():
    root = class_folders(Path("data"))
    (root / "cat" / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"broken\.png: cannot read this image"):
        setup(ImageFolderDataModule(root=str(root)))


def test_truncated_image_is_named():
    root = class_folders(Path("data"))
    good = write_image(root / "dog" / "cut.png", size=64)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.png: .*corrupt or truncated"):
        setup(ImageFolderDataModule(root=str(root)))


def test_empty_class_folder_and_empty_data_folder():
    root = class_folders(Path("data"))
    (root / "bird").mkdir()
    with pytest.raises(DataError, match=r"bird: class folder has no images"):
        setup(ImageFolderDataModule(root=str(root)))
    Path("empty").mkdir()
    with pytest.raises(DataError, match="no class folders found"):
        ImageFolderDataModule(root="empty")
    with pytest.raises(DataError, match="data folder not found"):
        ImageFolderDataModule(root="missing")


def test_class_folders_that_differ_between_train_and_val():
    class_folders(Path("data/train"), ("cat", "dog"))
    class_folders(Path("data/val"), ("cat", "cow"))
    with pytest.raises(DataError, match=r"data/val: class folders \['cat', 'cow'\] differ"):
        ImageFolderDataModule(root="data")


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("image,label\n" + "\n".join(rows) + "\n")
    return path


def test_csv_missing_file_unknown_label_and_out_of_range():
    for i in range(4):
        write_image(Path(f"img/{i}.png"))
    rows = [f"img/{i}.png,{'cat' if i % 2 else 'dog'}" for i in range(4)]
    with pytest.raises(DataError, match=r"train\.csv row 6: image file .*nothere\.png not found"):
        setup(CsvDataModule(csv_path=str(write_csv(Path("train.csv"), rows + ["img/nothere.png,cat"]))))
    with pytest.raises(DataError, match=r"row 6: unknown label 'cow'"):
        setup(CsvDataModule(csv_path=str(write_csv(Path("train.csv"), rows + ["img/0.png,cow"])),
                            class_names=["cat", "dog"]))  # fmt: skip
    numeric = [f"img/{i}.png,{i % 2}" for i in range(4)]
    with pytest.raises(DataError, match=r"row 6: label 7 is out of range for 2 classes"):
        setup(CsvDataModule(csv_path=str(write_csv(Path("n.csv"), numeric + ["img/0.png,7"])), class_names=["a", "b"]))


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
