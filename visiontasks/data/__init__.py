"""Data modules: one shared base, one module per data source, and the built-in shapes."""

from visiontasks.data.datamodule import VisionDataModule
from visiontasks.data.coco import CocoDataModule
from visiontasks.data.csv import CsvDataModule
from visiontasks.data.folder import ImageFolderDataModule
from visiontasks.data.segmentation_folder import SegmentationFolderDataModule
from visiontasks.data.shapes import ShapesDataModule

__all__ = ["CocoDataModule", "CsvDataModule", "ImageFolderDataModule", "SegmentationFolderDataModule", "ShapesDataModule", "VisionDataModule"]
