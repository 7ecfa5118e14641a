"""Callbacks the tasks bring along (W&B overlays of validation predictions) and the speed switches a config can
list."""
