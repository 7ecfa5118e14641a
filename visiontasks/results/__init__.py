"""Typed per-image predictions that draw and save themselves, and the predict command's writer."""

from visiontasks.results.types import (
    ClassificationResult,
    DetectionResult,
    LocalizationResult,
    Result,
    SegmentationResult,
    network_picture,
)

__all__ = ["ClassificationResult", "DetectionResult", "LocalizationResult", "Result", "SegmentationResult", "network_picture"]
