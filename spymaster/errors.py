"""One exception hierarchy for everything spymaster refuses.

Every error carries enough context to act on: the file, the key, the date. The CLI turns a
:class:`SpymasterError` into a one-line message and a non-zero exit code (a traceback only with
``--debug``).
"""

from __future__ import annotations

from pathlib import Path


class SpymasterError(Exception):
    """Base class of all errors spymaster raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigError(SpymasterError):
    """A configuration file or value is invalid (names the key)."""

    exit_code = 2


class InputError(SpymasterError):
    """An input file is missing, unreadable, corrupt, of the wrong schema or out of order."""

    exit_code = 3


class MissingInputError(InputError):
    """A file needed for a trading date is not in the lake."""


class CorruptInputError(InputError):
    """A file exists but cannot be decoded (empty, truncated, bad compression, bad header)."""


class SchemaMismatchError(InputError):
    """A file holds another schema (or several) than the one its place in the lake requires."""


class OrderingError(InputError):
    """Records go backwards in ``ts_recv`` where the contract requires sorted input."""


class InstrumentError(InputError):
    """No usable ES contract / option definitions for the session."""


class CalendarError(SpymasterError):
    """A date is not an XNYS trading day or outside the calendar's range."""

    exit_code = 2


class OutputError(SpymasterError):
    """An output cannot be written or an existing output is inconsistent."""

    exit_code = 4


class LiveError(SpymasterError):
    """The live feed failed (authentication, gateway error, reconnect policy exhausted)."""

    exit_code = 5
