"""Structured logs: one JSON object a line in production, readable lines in development.

Context bound with `structlog.contextvars` (request id, call sid, conversation
id, team) is added to every line of the request or task that bound it.
"""

from __future__ import annotations

import logging
import sys

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
