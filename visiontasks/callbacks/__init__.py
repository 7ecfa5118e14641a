"""Callbacks the tasks bring along (prediction writers) and the speed switches a config can list."""
