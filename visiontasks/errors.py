"""One exception type for bad user input, so callers and tests can tell it from a bug."""


class DataError(ValueError):
    """Raised at set-up when the data on disk or in a config cannot be used; says what to fix."""
