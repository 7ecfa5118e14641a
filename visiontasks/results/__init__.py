"""Typed per-image predictions that draw and save themselves, and the predict command's writer."""

from visiontasks.results.types import (
    ClassificationResult,
    DetectionResult,
    LocalizationResult,
    Result,
    SegmentationResult,
    network_picture,
)
from visiontasks.results.writer import PredictionWriter

__all__ = ["PredictionWriter", "ClassificationResult", "DetectionResult", "LocalizationResult", "Result", "SegmentationResult", "network_picture"]
