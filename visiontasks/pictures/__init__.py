"""Run-folder pictures and W&B views of a run: curves, prediction grids, overlays, test plots, interpretation."""

from visiontasks.pictures.callback import RunPictures

__all__ = ["RunPictures"]
