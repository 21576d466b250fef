"""Answering Twilio's voice request: the agent's TwiML, the fallback number, or a message.

`VoiceAnswers` remembers recent answers by CallSid, so a repeated request gets
the same TwiML even while the first is still waiting for ElevenLabs or the
database is away, and the call is never registered twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import structlog

from renchi.adapters.elevenlabs import (
    ElevenLabsClient,
    ElevenLabsNotConfigured,
    ElevenLabsRejected,
    ElevenLabsTimeout,
    ElevenLabsUnavailable,
)
from renchi.adapters.twilio import dial_twiml, unavailable_twiml
from renchi.calls.routing import Route
from renchi.observability import metrics

logger = structlog.get_logger(__name__)

AGENT = "agent"
FALLBACK = "fallback"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class VoiceAnswer:
    twiml: str
    kind: str


def fallback_answer(route: Route | None) -> VoiceAnswer:
    """Send the caller to the team's fallback number, or say the line is unavailable.

    A fallback number equal to the called number is skipped, since dialling it
    would bring the caller back to this webhook in a loop.
    """
    if (
        route is not None
        and route.fallback_number
        and route.fallback_number != route.number
    ):
        answer = VoiceAnswer(dial_twiml(route.fallback_number), FALLBACK)
    else:
        answer = VoiceAnswer(unavailable_twiml(), UNAVAILABLE)
    metrics.voice_answers.labels(answer.kind).inc()
    return answer


async def answer_call(
    elevenlabs: ElevenLabsClient,
    *,
    route: Route | None,
    from_number: str,
    to_number: str,
    direction: str,
    variables: dict[str, str],
    timeout: float,
) -> VoiceAnswer:
    """Register the call with the number's agent and return the TwiML to send Twilio."""
    log = logger.bind(to_number=to_number)
    if route is None:
        log.info("voice request for an unknown number")
        return fallback_answer(None)
    if route.mode != "register_call":
        log.warning(
            "voice request for a number in native mode; point its Twilio voice URL at ElevenLabs",
            team=route.team_slug,
        )
        return fallback_answer(route)

    started = time.perf_counter()
    try:
        twiml = await elevenlabs.register_call(
            agent_id=route.elevenlabs_agent_id,
            from_number=from_number,
            to_number=to_number,
            direction="outbound" if direction.startswith("outbound") else "inbound",
            dynamic_variables=variables,
            timeout=timeout,
        )
    except ElevenLabsNotConfigured:
        metrics.register_call_requests.labels("skipped").inc()
        log.info("call not registered: ElevenLabs API key not configured")
        return fallback_answer(route)
    except ElevenLabsUnavailable as error:
        result = "timeout" if isinstance(error, ElevenLabsTimeout) else "error"
        metrics.register_call_requests.labels(result).inc()
        log.warning("call registration failed", error=str(error), team=route.team_slug)
        return fallback_answer(route)
    except ElevenLabsRejected as error:
        metrics.register_call_requests.labels("rejected").inc()
        log.error(
            "ElevenLabs rejected the call registration",
            error=str(error),
            team=route.team_slug,
        )
        return fallback_answer(route)
    finally:
        metrics.register_call_duration.observe(time.perf_counter() - started)

    metrics.register_call_requests.labels("ok").inc()
    metrics.voice_answers.labels(AGENT).inc()
    return VoiceAnswer(twiml, AGENT)


class VoiceAnswers:
    """Recent TwiML answers by CallSid, and the requests still being answered."""

    def __init__(self, *, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._answers: OrderedDict[str, str] = OrderedDict()
        self._pending: dict[str, asyncio.Event] = {}

    def begin(self, call_sid: str) -> None:
        self._pending.setdefault(call_sid, asyncio.Event())

    def finish(self, call_sid: str, twiml: str) -> None:
        self._answers[call_sid] = twiml
        self._answers.move_to_end(call_sid)
        while len(self._answers) > self._capacity:
            self._answers.popitem(last=False)
        pending = self._pending.pop(call_sid, None)
        if pending is not None:
            pending.set()

    def get(self, call_sid: str) -> str | None:
        return self._answers.get(call_sid)

    async def wait(self, call_sid: str, timeout: float) -> str | None:
        """Wait for the answer of a request in flight in this process."""
        pending = self._pending.get(call_sid)
        if pending is not None:
            try:
                await asyncio.wait_for(pending.wait(), timeout)
            except TimeoutError:
                return None
        return self._answers.get(call_sid)
