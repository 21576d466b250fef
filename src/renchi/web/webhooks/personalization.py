"""ElevenLabs' personalization webhook: the variables of a call about to start.

ElevenLabs calls it for numbers in `native` mode while the phone rings, and
starts the call with whatever it returns. So every failure after the secret
check still returns 200 with the variables of an unknown caller.
"""

from __future__ import annotations

import asyncio
import hmac
import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.calls.elevenlabs_events import InvalidEvent, parse_body
from renchi.calls.personalization import (
    PersonalizationRequest,
    personalize,
    variables_without_database,
)
from renchi.db.engine import is_unavailable
from renchi.observability import metrics
from renchi.observability.logging import LogThrottle
from renchi.runtime import Runtime
from renchi.web.errors import ApiError
from renchi.web.webhooks.pipeline import read_body, runtime_of

logger = structlog.get_logger(__name__)
# Anyone can send a request without the secret; the metric counts them all.
_rejection_logs = LogThrottle(per_window=20, window_seconds=60.0)

PERSONALIZE_PATH = "/api/webhooks/elevenlabs/personalize"
# The label of secret failures in renchi_webhook_signature_failures_total.
SOURCE = "elevenlabs_personalization"


async def personalize_webhook(request: Request) -> Response:
    """Return the dynamic variables of a call that ElevenLabs is about to connect."""
    started = time.perf_counter()
    try:
        return await _personalize(request)
    finally:
        metrics.personalization_duration.observe(time.perf_counter() - started)


async def _personalize(request: Request) -> Response:
    runtime = runtime_of(request)
    if not _personalization_authorized(request, runtime):
        metrics.personalization_requests.labels("rejected").inc()
        metrics.webhook_signature_failures.labels(SOURCE).inc()
        if _rejection_logs.allow(SOURCE)[0]:
            logger.warning("personalization request rejected: missing or wrong secret")
        raise ApiError("UNAUTHORIZED", "Missing or invalid webhook secret.")

    body = await read_body(request, runtime.settings.max_body_bytes)
    try:
        payload = parse_body(body)
    except InvalidEvent as error:
        metrics.personalization_requests.labels("invalid").inc()
        raise ApiError("VALIDATION_ERROR", str(error)) from error
    personalization_request = PersonalizationRequest.from_payload(payload)
    structlog.contextvars.bind_contextvars(call_sid=personalization_request.call_sid)

    variables, result = await _variables(runtime, personalization_request)
    metrics.personalization_requests.labels(result).inc()
    return JSONResponse(
        {"type": "conversation_initiation_client_data", "dynamic_variables": variables}
    )


async def _variables(
    runtime: Runtime, request: PersonalizationRequest
) -> tuple[dict[str, str], str]:
    """Compute the variables and the result label; empty variables when the database fails."""
    health = runtime.processor.health
    if health.paused:
        return _without_database(runtime, request), "database_unavailable"
    try:
        async with asyncio.timeout(runtime.settings.database_timeout_seconds):
            async with runtime.database.sessions() as session:
                found = await personalize(session, request, routes=runtime.routes)
    except Exception as error:
        if not is_unavailable(error):
            # The call starts either way, and variables without history beat none.
            logger.exception("personalization failed")
            return _without_database(runtime, request), "error"
        health.mark_down(error)
        logger.warning("personalization without the database", error=repr(error))
        return _without_database(runtime, request), "database_unavailable"
    return found.variables, found.matched_by


def _without_database(
    runtime: Runtime, request: PersonalizationRequest
) -> dict[str, str]:
    return variables_without_database(request, routes=runtime.routes)


def _personalization_authorized(request: Request, runtime: Runtime) -> bool:
    """Check `x-webhook-secret` or `Authorization: Bearer` against the secret, in constant time."""
    secret = runtime.settings.personalization_secret
    if secret is None:
        return False
    expected = secret.get_secret_value().encode()
    offered: list[str] = []
    header = request.headers.get("x-webhook-secret")
    if header:
        offered.append(header)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        offered.append(token.strip())
    return any(hmac.compare_digest(value.encode(), expected) for value in offered)


routes = [Route(PERSONALIZE_PATH, personalize_webhook, methods=["POST"])]
