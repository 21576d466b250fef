"""Twilio's webhooks: the incoming call, call status and recording callbacks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from renchi.adapters.twilio import SIGNATURE_HEADER, signed_url, unavailable_twiml
from renchi.calls.twilio_events import (
    RECORDING,
    SOURCE,
    STATUS,
    VOICE,
    InvalidEvent,
    VoiceFollowup,
    build_event,
)
from renchi.calls.variables import empty_variables
from renchi.calls.voice import (
    UNAVAILABLE,
    VoiceAnswer,
    VoiceAnswers,
    answer_call,
    fallback_answer,
)
from renchi.runtime import Runtime
from renchi.web.errors import ApiError
from renchi.web.webhooks.pipeline import (
    acknowledge,
    invalid_event,
    parse_form,
    process_or_503,
    read_body,
    reject_signature,
    runtime_of,
    unavailable,
)
from renchi.webhooks.intake import EventUnavailable, InboundEvent

logger = structlog.get_logger(__name__)

TWIML_MEDIA_TYPE = "text/xml"


async def _verified_payload(request: Request) -> tuple[Runtime, dict[str, Any]]:
    """Run the pipeline's body limit and signature check; return the form fields."""
    runtime = runtime_of(request)
    body = await read_body(request, runtime.settings.max_body_bytes)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise reject_signature(SOURCE, "missing X-Twilio-Signature header")
    pairs = parse_form(body)
    url = signed_url(
        public_url=runtime.settings.public_url,
        request_url=str(request.url),
        path=request.url.path,
        query=request.url.query,
    )
    if not runtime.twilio_signatures.verify(url=url, params=pairs, signature=signature):
        raise reject_signature(SOURCE, "signature does not match")
    payload: dict[str, Any] = dict(pairs)
    structlog.contextvars.bind_contextvars(call_sid=payload.get("CallSid"))
    return runtime, payload


def _event(event_type: str, payload: dict[str, Any]) -> InboundEvent:
    try:
        return build_event(event_type, payload, received_at=datetime.now(UTC))
    except InvalidEvent as error:
        raise invalid_event(SOURCE, event_type, str(error)) from error


async def _verified_event(
    request: Request, event_type: str
) -> tuple[Runtime, InboundEvent]:
    runtime, payload = await _verified_payload(request)
    return runtime, _event(event_type, payload)


async def status_callback(request: Request) -> Response:
    runtime, event = await _verified_event(request, STATUS)
    return acknowledge(await process_or_503(runtime, event))


async def recording_callback(request: Request) -> Response:
    runtime, event = await _verified_event(request, RECORDING)
    return acknowledge(await process_or_503(runtime, event))


async def voice(request: Request) -> Response:
    """Answer an incoming call with TwiML, whatever else fails after the signature check.

    Only a request that neither the database nor the spool can keep gets an
    error (503), so that Twilio tries the number's fallback URL.
    """
    runtime, payload = await _verified_payload(request)
    try:
        event = _event(VOICE, payload)
    except ApiError:
        return _twiml(fallback_answer(None).twiml)
    try:
        return await _answer_voice(request, runtime, event)
    except ApiError:
        raise
    except Exception:
        logger.exception("answering the voice request failed")
        route = runtime.routes.get(str(payload.get("To") or ""))
        return _twiml(fallback_answer(route).twiml)


async def _answer_voice(
    request: Request, runtime: Runtime, event: InboundEvent
) -> Response:
    call_sid = str(event.payload["CallSid"])
    answers = request.app.state.voice_answers
    timeout = runtime.settings.register_call_timeout_seconds

    known = answers.get(call_sid)
    if known is not None:
        return _twiml(known)
    processed = await runtime.processor.process(event, spool_on_failure=False)

    if processed.status == "duplicate":
        twiml = processed.stored_response or await _answer_of_repeat(
            runtime, answers, event, timeout
        )
        return _twiml(twiml)

    answers.begin(call_sid)
    try:
        if processed.status == "applied":
            assert processed.applied is not None
            followup: VoiceFollowup = processed.applied.followup
            answer = await _answer(runtime, followup, timeout)
            await _record_answer(runtime, event, answer)
        elif processed.status == "stored":
            # Kept unapplied: the caller is still routed, from the last known routes.
            answer = await _answer_from_cache(runtime, event, timeout)
        else:
            answer = await _answer_without_database(runtime, event, timeout)
    except BaseException:
        answers.finish(call_sid, unavailable_twiml())
        raise
    answers.finish(call_sid, answer.twiml)
    return _twiml(answer.twiml)


async def _answer(
    runtime: Runtime, followup: VoiceFollowup, timeout: float
) -> VoiceAnswer:
    if followup.ended:
        logger.warning("voice request for a call that has already ended")
        return VoiceAnswer(unavailable_twiml(), UNAVAILABLE)
    return await answer_call(
        runtime.elevenlabs,
        route=followup.route,
        from_number=followup.from_number,
        to_number=followup.to_number,
        direction=followup.direction,
        variables=followup.variables,
        timeout=timeout,
    )


async def _record_answer(
    runtime: Runtime, event: InboundEvent, answer: VoiceAnswer
) -> None:
    try:
        await runtime.processor.record_response(event, answer.twiml)
    except Exception as error:
        # The call and its event are stored; only the copy for repeats is missing,
        # and this process still answers repeats from memory.
        logger.warning("storing the voice answer failed", error=repr(error))


async def _answer_without_database(
    runtime: Runtime, event: InboundEvent, timeout: float
) -> VoiceAnswer:
    """Spool the call, then route it from the in-memory copy of the number table."""
    try:
        await runtime.processor.spool(event, reason="database_unavailable")
    except EventUnavailable as error:
        raise unavailable() from error
    return await _answer_from_cache(runtime, event, timeout)


async def _answer_from_cache(
    runtime: Runtime, event: InboundEvent, timeout: float
) -> VoiceAnswer:
    """Route the call from the in-memory copy of the number table, without history."""
    payload = event.payload
    from_number = str(payload.get("From") or "")
    to_number = str(payload.get("To") or "")
    route = runtime.routes.get(to_number)
    logger.warning(
        "routing call from the in-memory number table",
        cached_route=route is not None,
        cached_numbers=len(runtime.routes),
    )
    variables = empty_variables(
        team_name=route.team_name if route else "",
        caller_number=from_number,
        called_number=to_number,
    )
    return await answer_call(
        runtime.elevenlabs,
        route=route,
        from_number=from_number,
        to_number=to_number,
        direction=str(payload.get("Direction") or "inbound"),
        variables=variables,
        timeout=timeout,
    )


async def _answer_of_repeat(
    runtime: Runtime, answers: VoiceAnswers, event: InboundEvent, timeout: float
) -> str:
    """Return the first request's TwiML for a repeat, waiting while it is still being answered."""
    call_sid = str(event.payload["CallSid"])
    twiml = await answers.wait(call_sid, timeout)
    if twiml is not None:
        return twiml
    # The first request may be in flight in another replica: poll its stored answer.
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            stored = await runtime.processor.stored_response(event)
        except Exception as error:
            logger.warning("reading the stored voice answer failed", error=repr(error))
            break
        if stored is not None:
            return stored
        await asyncio.sleep(0.2)
    logger.warning(
        "repeated voice request without a stored answer; not registering again"
    )
    return unavailable_twiml()


def _twiml(twiml: str) -> Response:
    return Response(twiml, media_type=TWIML_MEDIA_TYPE)


routes = [
    Route("/api/webhooks/twilio/voice", voice, methods=["POST"]),
    Route("/api/webhooks/twilio/status", status_callback, methods=["POST"]),
    Route("/api/webhooks/twilio/recording", recording_callback, methods=["POST"]),
]
