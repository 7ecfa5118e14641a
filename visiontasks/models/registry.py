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
from visiontasks.models.normalize import IMAGENET_MEAN, IMAGENET_STD

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


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
    """A registered builder, the task kind its outputs fit (see :mod:`visiontasks.kinds`) and the model's facts
    that tasks ask for, kept with it as timm keeps them in its pretrained configs.

    Args:
        trainable_when_frozen: parameter-name prefixes (inside the model) of the head: what stays trainable
            when the backbone is frozen.
        backbone_weights: the torchvision classifier whose pretrained weights fill this model's backbone, and the
            prefix of the backbone's layers in the classifier's weights; ``None``: the weights are the model's own.
        by_gradient: a network trained by gradient; ``False``: a classic method (no gradient, no weights).
        mean: the RGB statistics the model's input is standardised with (ImageNet's, as torchvision's weights
            expect; a timm model's from its pretrained config).
        std: ... and their standard deviations.
        input_size: the (height, width) its pretrained weights were trained at, when known.
    """

    name: str
    kind: str
    builder: Callable[..., nn.Module]
    passes_to: tuple[str, ...] = ()
    trainable_when_frozen: tuple[str, ...] = ()
    backbone_weights: tuple[str, str] | None = None
    by_gradient: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_size: tuple[int, int] | None = None

    @property
    def description(self) -> str:
        return describe(self.kind, self.by_gradient)

    @property
    def options(self) -> dict[str, Any]:
        """Every option the model takes, with its default (``inspect.Parameter.empty`` when required)."""
        parameters = inspect.signature(self.builder).parameters.values()
        named = {p.name: p.default for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        return named | {name: None for name in self.passes_to if name not in named}


_MODELS: dict[str, ModelEntry] = {}
_FAMILIES: list[ModelFamily] = []


def register_model(
    name: str,
    kind: str,
    passes_to: Iterable[str] = (),
    trainable_when_frozen: Iterable[str] = (),
    backbone_weights: tuple[str, str] | None = None,
    by_gradient: bool = True,
) -> Callable[[Builder], Builder]:
    """Decorator recording ``builder`` under ``name``; ``passes_to`` names further options its
    ``**kwargs`` hand on (to a torchvision class) that are accepted as they are; the model's facts
    are those of :class:`ModelEntry`."""

    kind_of(kind)  # a misspelt kind would hide the model from its task

    def record(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({_MODELS[name].builder})")
        _MODELS[name] = ModelEntry(name, kind, builder, tuple(passes_to), tuple(trainable_when_frozen), backbone_weights, by_gradient)
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


def describe(kind: str | None, by_gradient: bool = True) -> str:
    """How errors name a family of models: ``segmentation model``, ``classic segmentation method``."""
    if not by_gradient:
        return f"classic {kind} method" if kind else "classic method"
    return f"{kind} model" if kind else "model"


def model_names(kind: str | None = None, by_gradient: bool = True) -> list[str]:
    """Registered model names, all or those of one task kind, in registration order: the networks, or with
    ``by_gradient=False`` the classic methods."""
    return [name for name, e in _MODELS.items() if (kind is None or e.kind == kind) and e.by_gradient == by_gradient]


def model_entry(name: str, kind: str | None = None, by_gradient: bool = True) -> ModelEntry:
    """The entry of ``name``; an unknown name (or one of another kind) is an error with the close matches."""
    names = model_names(kind, by_gradient)
    if name in names:
        return _MODELS[name]
    if name in _MODELS:
        raise DataError(f"{name!r} is a {_MODELS[name].description}, not a {describe(kind, by_gradient)}: "
                        f"choose from {', '.join(names)}.")  # fmt: skip
    families = model_families(kind) if by_gradient else []
    for family in families:
        if str(name).startswith(family.prefix) and family.accepts(name.removeprefix(family.prefix)):
            return family.entry(name)
    close = close_names(str(name), names, families)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    more = "".join(f", or any {f.prefix}<name> (`python -m visiontasks models {f.prefix}` lists them)" for f in families)
    raise DataError(f"unknown {describe(kind, by_gradient)} {name!r}: {hint}choose from {', '.join(names)}{more}.")


def close_names(name: str, names: Sequence[str], families: Sequence[ModelFamily]) -> list[str]:
    """The registered names and family members closest to a misspelt ``name`` (a family member also when
    ``name`` lacks the prefix: ``convnext_atto`` suggests ``timm/convnext_atto``)."""
    close = difflib.get_close_matches(name, names, n=3)
    for family in families:
        bare = name.removeprefix(family.prefix)
        close += [family.prefix + match for match in difflib.get_close_matches(bare, family.names(), n=3)]
    return difflib.get_close_matches(name, close, n=3, cutoff=0) if close else []


def model_options(name: str, options: dict[str, Any] | None = None, kind: str | None = None, by_gradient: bool = True) -> dict[str, Any]:
    """``options`` checked against the model's own, ``None`` ones dropped: what its builder will get."""
    entry = model_entry(name, kind, by_gradient)
    given = {key: value for key, value in (options or {}).items() if value is not None}
    known = entry.options
    foreign = sorted(set(given) - set(known))
    if foreign:
        raise DataError(
            f"model {name!r} has no option {', '.join(foreign)} (its options: {', '.join(known) or 'none'}); "
            "remove it, or choose a model that has it."
        )
    return given


def create_model(name: str, kind: str | None = None, by_gradient: bool = True, **options: Any) -> Any:
    """Build the model registered as ``name`` (restricted to one task ``kind`` when given) with ``options``."""
    return model_entry(name, kind, by_gradient).builder(**model_options(name, options, kind, by_gradient))
