"""Structured logging for every process: JSON lines on devices, readable lines on a console."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

# structlog imports optional integrations for whatever is installed: rich (its console, and
# its traceback and pretty-printer with pygments) to colour console tracebacks, about 6 MiB of
# a gateway's RSS that logs JSON; greenlet for its deprecated thread-local context; Twisted's
# log observer (Twisted comes with the fleet extra). No tier uses them: hidden while structlog
# loads (console tracebacks are plain), importable afterwards. Whatever a process imported
# before stays as it is (rich.traceback stays hidden even then).
_OPTIONAL = ("rich", "rich.traceback", "rich.pretty", "greenlet", "twisted")
_HIDDEN = [name for name in _OPTIONAL if name not in sys.modules]
for _name in _HIDDEN:
    sys.modules[_name] = None  # type: ignore[assignment]  # None: that import fails
try:
    import structlog
finally:
    for _name in _HIDDEN:
        del sys.modules[_name]

_SECRET_KEYS = frozenset(
    {"password", "secret", "token", "passphrase", "authorization", "private_key", "cookie"}
)


def _redact_secrets(
    _logger: object, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Secrets must never reach a log file, whoever passes them in."""
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "***"
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of the call, not at configure() time.

    A CLI run inside a test (or a daemon re-opening its streams) swaps sys.stderr; a logger
    holding the old stream would write to a closed file.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(json: bool | None = None, level: str = "info") -> None:
    """Set up structlog once per process; json=None picks JSON when stderr is not a terminal."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(**context: object) -> structlog.typing.FilteringBoundLogger:
    # A lazy proxy: safe at import time, it binds to whatever configure() set up later.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**context)
    return logger
