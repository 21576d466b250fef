"""The request side of the webhook pipeline, shared by every webhook endpoint.

Steps, in order: read the body within the limit (413), verify the signature
over the raw bytes (401, counted, nothing stored), parse leniently (400 only
when nothing can be parsed), then hand the event to the processor, which
deduplicates, applies it in one transaction or spools it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from renchi.observability import metrics
from renchi.observability.logging import LogThrottle
from renchi.runtime import Runtime
from renchi.web.errors import ApiError, PayloadTooLarge
from renchi.webhooks.intake import EventUnavailable, InboundEvent, Processed

logger = structlog.get_logger(__name__)
# Anyone can send a request with a bad signature; the metric counts them all.
_rejection_logs = LogThrottle(per_window=20, window_seconds=60.0)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole body, failing with 413 as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """Parse a form-encoded body, keeping repeated and empty fields; 400 if it is not text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            "VALIDATION_ERROR", "Request body is not valid UTF-8 form data."
        ) from error
    try:
        return parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=1000
        )
    except ValueError as error:
        raise ApiError("VALIDATION_ERROR", f"Invalid form body: {error}.") from error


def reject_signature(source: str, reason: str) -> ApiError:
    """Count and log a failed signature check, and return the 401 to raise."""
    metrics.webhook_signature_failures.labels(source).inc()
    metrics.webhook_events.labels(source, "unknown", "rejected").inc()
    allowed, held_back = _rejection_logs.allow(source)
    if allowed:
        logger.warning(
            "webhook signature rejected",
            source=source,
            reason=reason,
            similar_lines_held_back=held_back,
        )
    return ApiError("UNAUTHORIZED", f"Invalid or missing webhook signature: {reason}.")


def invalid_event(source: str, event_type: str, message: str) -> ApiError:
    metrics.webhook_events.labels(source, event_type, "invalid").inc()
    logger.warning(
        "webhook event invalid", source=source, type=event_type, error=message
    )
    return ApiError("VALIDATION_ERROR", message)


async def process_or_503(runtime: Runtime, event: InboundEvent) -> Processed:
    """Apply or spool `event`; respond 503 when neither the database nor the spool can keep it."""
    try:
        return await runtime.processor.process(event)
    except EventUnavailable as error:
        raise unavailable() from error


def unavailable() -> ApiError:
    return ApiError(
        "UNAVAILABLE",
        "The event could not be stored; retry later.",
        headers={"Retry-After": "5"},
    )


def acknowledge(processed: Processed) -> Response:
    """Respond to an event whose sender reads nothing but the status code."""
    status = {"applied": "accepted"}.get(processed.status, processed.status)
    return JSONResponse({"status": status})
