"""The search file: which config keys a study varies, over which ranges, towards which metric.

A search file holds one ``tune:`` section; its ``space`` names LightningCLI keys (the dotted paths of
``--print_config``, list items by their index) with a range each::

    tune:
      trials: 12
      pruner: median                    # median, hyperband or none
      metric: val/acc                   # default: the task's monitor, in its direction
      seed: 0                           # the sampler's seed: the same values in the same order (default: none)
      space:
        model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 3.0e-2, log: true}
        model.init_args.optimizer.init_args.weight_decay: {low: 0.0, high: 0.1}
        data.init_args.batch_size: [16, 32, 64]
        data.init_args.train_transforms.0.init_args.p: {low: 0.0, high: 1.0, step: 0.25}

A range with two integers (``{low: 1, high: 4}``) gives integers; ``step`` makes it discrete; ``log``
samples evenly in log scale. A list is a choice among its items (any YAML: numbers, names, mappings).
Every mistake is one line naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from visiontasks.errors import VisionTasksError

SECTION = "tune"
SETTINGS = ("trials", "pruner", "metric", "direction", "seed", "space")
RANGE_FIELDS = ("low", "high", "log", "step", "type")
DIRECTIONS = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}


class SearchError(VisionTasksError, ValueError):
    """A search file, a study or a storage that cannot be used as given; the message says what to fix."""


def close_matches(word: str, choices: Any, cutoff: float = 0.6) -> str:
    """`` (did you mean a, b?)`` for the choices that look like ``word``, else an empty string."""
    found = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f" (did you mean {', '.join(found)}?)" if found else ""


def close_keys(key: str, keys: set[str]) -> str:
    """The close matches of a dotted key: its siblings' names when its parent exists, else any key."""
    parent, _, name = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == parent}
    if parent in keys and siblings:
        found = difflib.get_close_matches(name, list(siblings), n=3, cutoff=0.6)
        return f" (did you mean {', '.join(siblings[f] for f in found)}?)" if found else ""
    return close_matches(key, keys, cutoff=0.8)


@dataclass
class Param:
    """One key of the space and its range: a float or int range, or a choice among items."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: list[Any] | None = None

    @classmethod
    def parse(cls, key: str, spec: Any, where: str) -> Param:
        if isinstance(spec, list):
            if not spec:
                raise SearchError(f"{where}: {key}: an empty list of choices; give at least one value.")
            return cls(key, choices=spec)
        if not isinstance(spec, dict):
            raise SearchError(
                f"{where}: {key}: {spec!r} is no range; write {{low: 0.001, high: 0.1}} (log: true, step: 0.01 optional) "
                "or a list of choices [16, 32, 64]."
            )
        unknown = [name for name in spec if name not in RANGE_FIELDS]
        if unknown:
            raise SearchError(f"{where}: {key}: unknown range field {unknown[0]!r}{close_matches(unknown[0], RANGE_FIELDS)}; "
                              f"a range takes {', '.join(RANGE_FIELDS)}.")  # fmt: skip
        if "low" not in spec or "high" not in spec:
            raise SearchError(f"{where}: {key}: a range needs both low and high, e.g. {{low: 0.001, high: 0.1}}.")
        low, high, step = spec["low"], spec["high"], spec.get("step")
        for name, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SearchError(f"{where}: {key}: {name} {value!r} is not a number (write 1.0e-4, not 1e-4, in YAML).")
        if spec.get("type") not in (None, "int", "float"):
            raise SearchError(f"{where}: {key}: type {spec['type']!r}: give int or float.")
        integer = spec.get("type") == "int" or (spec.get("type") is None and all(
            isinstance(v, int) for v in (low, high, step) if v is not None))  # fmt: skip
        log = bool(spec.get("log", False))
        if low > high:
            raise SearchError(f"{where}: {key}: low {low} is above high {high}; swap them.")
        if log and low <= 0:
            raise SearchError(f"{where}: {key}: a log range must stay above 0 but low is {low}; "
                              f"give a positive low (e.g. {high / 1000:g}) or drop log: true.")  # fmt: skip
        if log and step is not None:
            raise SearchError(f"{where}: {key}: log and step do not go together; drop one of them.")
        if step is not None and step <= 0:
            raise SearchError(f"{where}: {key}: step {step} must be above 0.")
        return cls(key, low=low, high=high, log=log, step=step, integer=integer)

    def suggest(self, trial: optuna.Trial) -> Any:
        """This key's value for ``trial``; a choice that is not a plain scalar is suggested by its JSON text."""
        if self.choices is not None:
            if all(c is None or isinstance(c, (bool, int, float, str)) for c in self.choices):
                return trial.suggest_categorical(self.key, self.choices)
            picked = trial.suggest_categorical(self.key, [json.dumps(c) for c in self.choices])
            return json.loads(picked)
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def value_of(self, stored: Any) -> Any:
        """The config value of a stored trial parameter (the inverse of the JSON text of :meth:`suggest`)."""
        if self.choices is not None and isinstance(stored, str) and stored not in self.choices:
            return json.loads(stored)
        return stored


@dataclass
class SearchSpace:
    """A parsed search file: the keys to vary and the study's settings."""

    params: list[Param]
    source: str = "search file"
    trials: int = 20
    pruner: Any = "median"
    metric: str | None = None
    direction: str | None = None
    seed: int | None = None

    @staticmethod
    def is_search_file(content: Any) -> bool:
        return isinstance(content, dict) and SECTION in content

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        try:
            content = yaml.safe_load(path.read_text())
        except OSError as error:
            raise SearchError(f"{path}: cannot read the search file ({error.strerror}).") from None
        except yaml.YAMLError as error:
            raise SearchError(f"{path}: not valid YAML ({getattr(error, 'problem', None) or error}).") from None
        return cls.parse(content, str(path))

    @classmethod
    def parse(cls, content: Any, where: str = "search file") -> SearchSpace:
        if not cls.is_search_file(content):
            raise SearchError(f"{where}: a search file holds one `{SECTION}:` section with a `space:` of keys and ranges.")
        others = [k for k in content if k != SECTION]
        if others:
            raise SearchError(f"{where}: {others[0]!r} beside `{SECTION}:`; keep the search in its own file and the "
                              "config in another, both given with --config.")  # fmt: skip
        section = content[SECTION] or {}
        if not isinstance(section, dict):
            raise SearchError(f"{where}: `{SECTION}:` must be a mapping of {', '.join(SETTINGS)}.")
        for name in section:
            if name not in SETTINGS:
                raise SearchError(f"{where}: unknown setting {SECTION}.{name}{close_matches(name, SETTINGS)}; "
                                  f"a search takes {', '.join(SETTINGS)}.")  # fmt: skip
        space = section.get("space") or {}
        if not isinstance(space, dict) or not space:
            raise SearchError(f"{where}: {SECTION}.space is empty; name at least one config key with its range.")
        params = [Param.parse(str(key), spec, where) for key, spec in space.items()]
        direction = section.get("direction")
        if direction is not None and direction not in DIRECTIONS:
            raise SearchError(f"{where}: {SECTION}.direction {direction!r}: give maximize or minimize.")
        trials = section.get("trials", 20)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise SearchError(f"{where}: {SECTION}.trials {trials!r}: give a whole number of trials, at least 1.")
        seed = section.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SearchError(f"{where}: {SECTION}.seed {seed!r}: give a whole number, or leave it out.")
        return cls(params, where, trials, section.get("pruner", "median"), section.get("metric"),
                   DIRECTIONS.get(direction) if direction else None, seed)  # fmt: skip

    # ----- the space against a config -------------------------------------------------------------
    def check_keys(self, config: dict[str, Any]) -> None:
        """Every key of the space is a key of ``config`` (the resolved base config); else the close matches."""
        keys = set(flat_keys(config))
        for param in self.params:
            if param.key not in keys:
                hint = close_keys(param.key, keys) or " (see the keys with `python -m visiontasks fit --config ... --print_config`)"
                raise SearchError(f"{self.source}: {param.key} is not a key of the config{hint}.")

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {param.key: param.suggest(trial) for param in self.params}

    def values_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """The config values of a finished trial's stored parameters."""
        by_key = {param.key: param for param in self.params}
        return {key: by_key[key].value_of(value) if key in by_key else value for key, value in params.items()}


def flat_keys(tree: Any, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a config, inner ones too (``model``, ``model.init_args``, ...); list items by index."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for name, value in items:
        key = f"{prefix}{name}"
        yield key
        yield from flat_keys(value, f"{key}.")


def _split(key: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in key.split(".")]


def with_values(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``values`` set at their dotted keys."""
    result = json.loads(json.dumps(config))
    for key, value in values.items():
        *parents, last = _split(key)
        node = result
        for part in parents:
            node = node[part]
        node[last] = value
    return result


def overrides(config: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Command-line arguments that give ``values`` to a ``fit`` of ``config``.

    A key inside a list (``data.init_args.train_transforms.0.init_args.p``) cannot be set alone on the
    command line: the whole list is given, with every value of the trial set in it.
    """
    changed = with_values(config, values)
    args: dict[str, Any] = {}
    for key in values:
        parts = _split(key)
        first_list = next((i for i, part in enumerate(parts) if isinstance(part, int)), None)
        head = parts if first_list is None else parts[: first_list]
        node = changed
        for part in head:
            node = node[part]
        args[".".join(map(str, head))] = node
    return [f"--{key}={as_yaml(value)}" for key, value in args.items()]


def as_yaml(value: Any) -> str:
    """A value as the one-line YAML the command line parses back to the same value (``1.0e-05`` stays a float)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, sort_keys=False)
    return text.removesuffix("\n...\n").strip()
