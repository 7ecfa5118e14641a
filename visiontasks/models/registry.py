"""Models by name: builders register themselves where they are defined; tasks call :func:`create_model`.

As timm does: no central list to keep in sync, unknown names fail with the close matches, and
options left ``None`` are dropped so a model keeps its own default. A model's options are its
builder's keyword arguments, declared once there; an option the model lacks is an error.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from visiontasks.errors import DataError
from visiontasks.kinds import kind_of

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder, the task kind its outputs fit (see :mod:`visiontasks.kinds`) and the model's facts
    that tasks ask for, kept with it as timm keeps them in its pretrained configs.

    Args:
        trainable_when_frozen: parameter-name prefixes (inside the model) of the head: what stays trainable
            when the backbone is frozen.
        backbone_weights: the torchvision classifier whose pretrained weights fill this model's backbone, and the
            prefix of the backbone's layers in the classifier's weights; ``None``: the weights are the model's own.
    """

    name: str
    kind: str
    builder: Callable[..., nn.Module]
    passes_to: tuple[str, ...] = ()
    trainable_when_frozen: tuple[str, ...] = ()
    backbone_weights: tuple[str, str] | None = None

    @property
    def options(self) -> dict[str, Any]:
        """Every option the model takes, with its default (``inspect.Parameter.empty`` when required)."""
        parameters = inspect.signature(self.builder).parameters.values()
        named = {p.name: p.default for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        return named | {name: None for name in self.passes_to if name not in named}


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    kind: str,
    passes_to: Iterable[str] = (),
    trainable_when_frozen: Iterable[str] = (),
    backbone_weights: tuple[str, str] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator recording ``builder`` under ``name``; ``passes_to`` names further options its
    ``**kwargs`` hand on (to a torchvision class) that are accepted as they are; the model's facts
    are those of :class:`ModelEntry`."""

    kind_of(kind)  # a misspelt kind would hide the model from its task

    def record(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({_MODELS[name].builder})")
        _MODELS[name] = ModelEntry(name, kind, builder, tuple(passes_to), tuple(trainable_when_frozen), backbone_weights)
        return builder

    return record


def model_names(kind: str | None = None) -> list[str]:
    """Registered model names, all or those of one task kind, in registration order."""
    return [name for name, entry in _MODELS.items() if kind is None or entry.kind == kind]


def model_entry(name: str, kind: str | None = None) -> ModelEntry:
    """The entry of ``name``; an unknown name (or one of another kind) is an error with the close matches."""
    names = model_names(kind)
    if name in names:
        return _MODELS[name]
    if name in _MODELS:
        raise DataError(f"{name!r} is a {_MODELS[name].kind} model, not a {kind} one: choose from {', '.join(names)}.")
    close = difflib.get_close_matches(str(name), names, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    what = f"{kind} model" if kind else "model"
    raise DataError(f"unknown {what} {name!r}: {hint}choose from {', '.join(names)}.")


def model_options(name: str, options: dict[str, Any] | None = None, kind: str | None = None) -> dict[str, Any]:
    """``options`` checked against the model's own, ``None`` ones dropped: what its builder will get."""
    entry = model_entry(name, kind)
    given = {key: value for key, value in (options or {}).items() if value is not None}
    known = entry.options
    foreign = sorted(set(given) - set(known))
    if foreign:
        raise DataError(
            f"model {name!r} has no option {', '.join(foreign)} (its options: {', '.join(known) or 'none'}); "
            "remove it, or choose a model that has it."
        )
    return given


def create_model(name: str, kind: str | None = None, **options: Any) -> nn.Module:
    """Build the model registered as ``name`` (restricted to one task ``kind`` when given) with ``options``."""
    return model_entry(name, kind).builder(**model_options(name, options, kind))
