"""Callbacks the tasks bring along: W&B overlays of validation predictions."""
