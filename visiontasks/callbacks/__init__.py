"""Callbacks the tasks bring along: prediction writers."""
