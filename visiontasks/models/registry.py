"""Models by name: builders register themselves where they are defined; tasks call :func:`create_model`.

As timm does: no central list to keep in sync, unknown names fail with the close matches, and
options left ``None`` are dropped so a model keeps its own default. A model's options are its
builder's keyword arguments, declared once there; an option the model lacks is an error.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from visiontasks.errors import DataError
from visiontasks.kinds import kind_of

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelFacts:
    """What a task needs to know of a model besides building it, declared with its registration (for timm's
    models, read from their pretrained config): the input statistics its weights expect, the input size they
    were trained at, and the layers (names inside the model) that stay trainable when the backbone is frozen."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int] | None = None
    trainable_when_frozen: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelFamily:
    """Models named ``<prefix><name>`` for every name a library knows (``timm/convnext_atto``): too many to
    register one by one, so the family lists them and makes an entry on demand."""

    prefix: str
    kind: str
    names: Callable[[], Sequence[str]]
    """The family's names without the prefix (may be long: timm knows over a thousand)."""
    entry: Callable[[str], ModelEntry]
    """The entry of one known name, prefix included."""
    accepts: Callable[[str], bool]
    """Whether a name without the prefix is one of the family (a tagged ``arch.tag`` too)."""


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder and the task kind its outputs fit (see :mod:`visiontasks.kinds`)."""

    name: str
    kind: str
    builder: Callable[..., nn.Module]
    passes_to: tuple[str, ...] = ()
    facts: ModelFacts | None = None

    @property
    def options(self) -> dict[str, Any]:
        """Every option the model takes, with its default (``inspect.Parameter.empty`` when required)."""
        parameters = inspect.signature(self.builder).parameters.values()
        named = {p.name: p.default for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        return named | {name: None for name in self.passes_to if name not in named}


_MODELS: dict[str, ModelEntry] = {}
_FAMILIES: list[ModelFamily] = []


def register_model(name: str, kind: str, passes_to: Iterable[str] = ()) -> Callable[[Builder], Builder]:
    """Decorator recording ``builder`` under ``name``; ``passes_to`` names further options its
    ``**kwargs`` hand on (to a torchvision class) that are accepted as they are."""

    kind_of(kind)  # a misspelt kind would hide the model from its task

    def record(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({_MODELS[name].builder})")
        _MODELS[name] = ModelEntry(name, kind, builder, tuple(passes_to))
        return builder

    return record


def register_family(family: ModelFamily) -> None:
    """Record a family of models named ``<prefix><name>`` (one per task kind and prefix)."""
    kind_of(family.kind)
    _FAMILIES.append(family)


def model_families(kind: str | None = None) -> list[ModelFamily]:
    """The registered families, all or those of one task kind."""
    return [family for family in _FAMILIES if kind is None or family.kind == kind]


def model_kinds() -> list[str]:
    """The task kinds that have models, in registration order."""
    return list(dict.fromkeys([entry.kind for entry in _MODELS.values()] + [family.kind for family in _FAMILIES]))


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
    families = model_families(kind)
    for family in families:
        if str(name).startswith(family.prefix) and family.accepts(name.removeprefix(family.prefix)):
            return family.entry(name)
    what = f"{kind} model" if kind else "model"
    close = close_names(str(name), names, families)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    more = "".join(f", or any {f.prefix}<name> (`python -m visiontasks models {f.prefix}` lists them)" for f in families)
    raise DataError(f"unknown {what} {name!r}: {hint}choose from {', '.join(names)}{more}.")


def close_names(name: str, names: Sequence[str], families: Sequence[ModelFamily]) -> list[str]:
    """The registered names and family members closest to a misspelt ``name`` (a family member also when
    ``name`` lacks the prefix: ``convnext_atto`` suggests ``timm/convnext_atto``)."""
    close = difflib.get_close_matches(name, names, n=3)
    for family in families:
        bare = name.removeprefix(family.prefix)
        close += [family.prefix + match for match in difflib.get_close_matches(bare, family.names(), n=3)]
    return difflib.get_close_matches(name, close, n=3, cutoff=0) if close else []


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
