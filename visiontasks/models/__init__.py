"""Plain ``nn.Module`` builders: no Lightning, no file formats. Each registers itself by name
(:mod:`visiontasks.models.registry`); importing this package registers them all."""

# importing the builders registers them, in this order
from visiontasks.models import classifiers, small_cnns, unet, segmentation, detection, classic_segmentation, timm_models  # noqa: F401, I001
from visiontasks.models.registry import create_model, model_names, register_model

__all__ = ["create_model", "model_names", "register_model"]
