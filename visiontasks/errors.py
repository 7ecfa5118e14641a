"""Exception types for problems a user can fix, so the CLI can print them as one line and tests can tell them from bugs."""


class VisionTasksError(Exception):
    """A problem with the user's data, options, checkpoint or run; the message says what to fix."""


class DataError(VisionTasksError, ValueError):
    """Raised at set-up when the data on disk or in a config cannot be used; says what to fix."""


class CheckpointError(VisionTasksError, ValueError):
    """A checkpoint or weights file that is missing, unreadable, unsafe or made for another task."""


class TrainingStopped(VisionTasksError, RuntimeError):
    """Training cannot go on (a non-finite loss); the message names the step and the last good checkpoint."""


class ExportError(VisionTasksError):
    """The model cannot be exported in the asked format."""
