"""Pictures of a run: run-folder curves and grids, W&B overlays, test plots, interpretation."""

from visiontasks.pictures.callback import RunPictures

__all__ = ["RunPictures"]
