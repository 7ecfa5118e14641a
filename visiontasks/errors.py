"""Exception types for problems a user can fix, so the CLI can print them as one line and tests can tell them from bugs."""

from __future__ import annotations

import re

_WORKER_TRACEBACK = re.compile(r"Caught (?P<name>\w+) in [^\n]*\.\nOriginal Traceback.*\n(?:[\w.]+\.)?(?P=name): (?P<message>.*?)\n?\Z", re.DOTALL)


def worker_message(message: str) -> str:
    """The error's own message when torch re-raised it from a data loader worker (or its pin-memory thread),
    which builds it again from ``"Caught X in DataLoader worker process 0. Original Traceback ..."``: a file
    deleted mid-epoch is then one line naming it, as with ``num_workers: 0``, not a worker's traceback."""
    found = _WORKER_TRACEBACK.match(message)
    return found.group("message") if found else message


class VisionTasksError(Exception):
    """A problem with the user's data, options, checkpoint or run; the message says what to fix."""

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (worker_message(args[0]),)
        super().__init__(*args)


class DataError(VisionTasksError, ValueError):
    """Raised at set-up when the data on disk or in a config cannot be used; says what to fix."""


class CheckpointError(VisionTasksError, ValueError):
    """A checkpoint or weights file that is missing, unreadable, unsafe or made for another task."""


class TrainingStopped(VisionTasksError, RuntimeError):
    """Training cannot go on (a non-finite loss); the message names the step and the last good checkpoint."""


class ExportError(VisionTasksError):
    """The model cannot be exported in the asked format."""


class OptionError(VisionTasksError, ValueError):
    """An option outside its range (a negative learning rate, ``val_fraction=1.5``); the message names the option."""


def check_option(ok: bool, name: str, value: object, rule: str) -> None:
    """Raise :class:`OptionError` ``"<name>=<value>: <rule>"`` unless ``ok``: one line naming the option and the fix."""
    if not ok:
        raise OptionError(f"{name}={value!r}: {rule}")
