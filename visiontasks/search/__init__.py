"""Hyper-parameter search: ``python -m visiontasks tune`` runs an Optuna study whose trials are ordinary fits."""

from visiontasks.search.command import tune
from visiontasks.search.pruning import TrialPruning
from visiontasks.search.space import SearchError, SearchSpace

__all__ = ["SearchError", "SearchSpace", "TrialPruning", "tune"]
