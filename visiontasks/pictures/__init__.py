"""Pictures of a run: drawing primitives shared by results, run-folder curves and grids, W&B overlays, test plots,
interpretation."""

from visiontasks.pictures.callback import RunPictures

__all__ = ["RunPictures"]
