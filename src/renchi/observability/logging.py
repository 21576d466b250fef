"""Structured logs: one JSON object a line in production, readable lines in development.

Context bound with `structlog.contextvars` (request id, call sid, conversation
id, team) is added to every line of the request or task that bound it.
"""

from __future__ import annotations

import logging
import sys
import time

import structlog

_HANDLER_NAME = "renchi"


def configure_logging(*, level: str = "INFO", format: str = "json") -> None:
    """Route structlog and the standard library's logging through one renderer."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if format == "console":
        # Plain tracebacks: the rich ones print local variables, which hold
        # payloads, phone numbers and settings.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )
    else:
        renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler, so test harnesses keep theirs.
    root.handlers[:] = [old for old in root.handlers if old.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic reports every schema check; `renchi migrate` turns it back on.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uvicorn's access log repeats what the request middleware logs.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class LogThrottle:
    """Allows a few log lines per key and time window, and counts the rest.

    Used for lines that anyone on the internet can cause, such as rejected
    signatures, so a flood of bad requests cannot flood the logs. The metric
    beside each such line still counts every occurrence.
    """

    def __init__(self, *, per_window: int = 10, window_seconds: float = 60.0) -> None:
        self._per_window = per_window
        self._window_seconds = window_seconds
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> tuple[bool, int]:
        """Return whether to log now, and how many lines were held back before it."""
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self._window_seconds:
            suppressed = max(0, count - self._per_window)
            self._windows[key] = (now, 1)
            return True, suppressed
        self._windows[key] = (started, count + 1)
        return count < self._per_window, 0
