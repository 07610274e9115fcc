"""structlog configuration, done once per process.

Readable key=value lines on a terminal; JSON lines with ``--log-json`` or when stderr is not a
TTY. Logs go to stderr so the CLI's stdout stays clean for its printed results.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_CONFIGURED: dict[str, Any] = {}


class _Stderr:
    """Writes to whatever ``sys.stderr`` is *now* (test runners swap it; a captured stream may close)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool | None = None, level: str = "info") -> None:
    """Configure structlog (idempotent; a later call with other settings reconfigures).

    ``json=None`` picks JSON when stderr is not a terminal.
    """
    use_json = (not sys.stderr.isatty()) if json is None else json
    key = {"json": use_json, "level": level}
    if _CONFIGURED == key:
        return
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if use_json:
        processors += [structlog.processors.TimeStamper(fmt="iso", utc=True),
                       structlog.processors.JSONRenderer(sort_keys=True)]
    else:
        processors += [structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
                       structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),
        cache_logger_on_first_use=False,
    )
    _CONFIGURED.clear()
    _CONFIGURED.update(key)


def configured() -> dict[str, Any]:
    """The settings of the last :func:`configure` (``{"json": bool, "level": str}``; {} before it)."""
    return dict(_CONFIGURED)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name (``log.info("event", key=value)``)."""
    return structlog.get_logger(component=name)
