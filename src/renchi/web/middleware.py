"""ASGI middleware: request id, request metrics and log line, and the body size limit.

Written as plain ASGI rather than `BaseHTTPMiddleware`, which buffers and
costs a task per request on the webhook hot path.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renchi.observability import metrics
from renchi.web.errors import (
    PayloadTooLarge,
    error_response,
    unexpected_error_response,
)

logger = structlog.get_logger("renchi.web.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Tag each request with an id, enforce the body limit, and record its metrics."""

    def __init__(self, app: ASGIApp, *, body_limit: Callable[[str], int]) -> None:
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        path = scope["path"]
        status_code = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                status_code = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            limit = self.body_limit(path)
            declared = headers.get(b"content-length")
            if declared is not None and not declared.isdigit():
                response = error_response(
                    "VALIDATION_ERROR", "Invalid Content-Length header."
                )
                await response(scope, receive, send_with_id)
            elif declared is not None and int(declared) > limit:
                response = error_response(
                    "PAYLOAD_TOO_LARGE", f"Request body is larger than {limit} bytes."
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, _limited(receive, limit), send_with_id)
        except Exception as error:
            # Responded to and logged here once; re-raising would make the server
            # log the same error again as a bare traceback.
            if response_started:
                logger.error(
                    "error after the response started", path=path, exc_info=error
                )
            else:
                answer = unexpected_error_response(error, path=path)
                await answer(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            method = scope["method"]
            metrics.http_requests.labels(method, template, str(status_code)).inc()
            metrics.http_request_duration.labels(method, template).observe(elapsed)
            log = (
                logger.debug
                if path in _QUIET_PATHS and status_code < 400
                else logger.info
            )
            log(
                "request",
                method=method,
                path=path,
                route=template,
                status=status_code,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        return message

    return receive_within_limit
