"""Domain errors. Each carries a message for the operator and, where useful, a hint.

Library exceptions are translated into these once, at the boundary where they are raised,
so the CLI can print one readable line instead of a traceback.
"""


class TrackerError(Exception):
    """Base class: an error the operator can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(TrackerError):
    """The config file or an environment variable is invalid."""

    exit_code = 2


class StoreError(TrackerError):
    """The database cannot be reached or is in the wrong state."""


class SchemaOutdatedError(StoreError):
    """The database exists but is not at the current schema revision."""


class NotFoundError(TrackerError):
    """An id given by the user is not in the store."""


class InputError(TrackerError):
    """A user-supplied file or query is malformed."""

    exit_code = 2


class SourceError(TrackerError):
    """A source (arXiv, a feed) failed: HTTP error, timeout, unparseable response."""


class SendError(TrackerError):
    """The SMTP server refused the digest or could not be reached."""
