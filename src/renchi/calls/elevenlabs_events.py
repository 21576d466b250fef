"""Applying ElevenLabs' post-call webhooks to the call records.

Three event types are handled: `post_call_transcription` (transcript,
analysis, duration, cost), `post_call_audio` (the conversation's MP3, stored
by the web layer before the event gets here, so the payload holds only a
reference) and `call_initiation_failure` (an outbound call that never
connected). Any other type is stored as ignored by the event processor.

Parsing is lenient because ElevenLabs adds fields without notice and sends
numbers as strings and the reverse: a field of the wrong shape is treated as
missing, and the whole payload is kept on the event.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls import statuses
from renchi.calls.records import (
    attribute,
    attribute_to_agent,
    fill_earliest,
    lock_call_by_conversation,
)
from renchi.calls.routing import RouteCache, lookup_route
from renchi.db.models import Call, Recording, Transcript
from renchi.db.models.base import clean_text
from renchi.webhooks.intake import Applied, InboundEvent

logger = structlog.get_logger(__name__)

SOURCE = "elevenlabs"
TRANSCRIPTION = "post_call_transcription"
AUDIO = "post_call_audio"
INITIATION_FAILURE = "call_initiation_failure"
HANDLED_TYPES = frozenset({TRANSCRIPTION, AUDIO, INITIATION_FAILURE})

MAX_TYPE_LENGTH = 64
MAX_CONVERSATION_ID_LENGTH = 128
OUTCOMES = frozenset({"success", "failure", "unknown"})
# `failure_reason` values that are Twilio call statuses of their own.
_FAILURE_STATUSES = {"busy": "busy", "no-answer": "no-answer"}
_TWILIO_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_SAFE_KEY_PART = re.compile(r"[^A-Za-z0-9_.-]")
# Numeric(14, 6) stores values below 10^8.
_MAX_COST = Decimal(10) ** 8


class InvalidEvent(ValueError):
    """A webhook body that cannot be read as an ElevenLabs event."""


def parse_body(body: bytes) -> dict[str, Any]:
    """Parse a webhook body as a JSON object; raise InvalidEvent otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidEvent("Request body is not valid JSON.") from error
    if not isinstance(payload, dict):
        raise InvalidEvent("Request body is not a JSON object.")
    return payload


def event_type_of(payload: dict[str, Any]) -> str:
    """Return the event's `type`; raise InvalidEvent when it is missing or too long."""
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEvent("Missing required field 'type'.")
    # Cleaned as InboundEvent cleans the payload, so the key matches the stored values.
    event_type = clean_text(event_type).strip()
    if len(event_type) > MAX_TYPE_LENGTH:
        raise InvalidEvent(f"Field 'type' is longer than {MAX_TYPE_LENGTH} characters.")
    return event_type


def conversation_id_of(payload: dict[str, Any]) -> str | None:
    """Return `data.conversation_id` as text; raise InvalidEvent when it is too long."""
    conversation_id = _text(_object(payload.get("data")).get("conversation_id"))
    if conversation_id and len(conversation_id) > MAX_CONVERSATION_ID_LENGTH:
        raise InvalidEvent(
            "Field 'data.conversation_id' is longer than "
            f"{MAX_CONVERSATION_ID_LENGTH} characters."
        )
    return conversation_id


def build_event(
    payload: dict[str, Any], *, body: bytes, received_at: datetime
) -> InboundEvent:
    """Check what the event needs and derive its deduplication key.

    A known type needs `data.conversation_id`, and its key is the type and
    the conversation id. An unknown type without one is keyed by a digest of
    its body, so an event type that ElevenLabs adds later never gets an error
    response.
    """
    event_type = event_type_of(payload)
    conversation_id = conversation_id_of(payload)
    if conversation_id:
        key = conversation_id
    elif event_type in HANDLED_TYPES:
        raise InvalidEvent("Missing required field 'data.conversation_id'.")
    else:
        key = "sha256-" + hashlib.sha256(body).hexdigest()
    return InboundEvent(
        source=SOURCE,
        type=event_type,
        dedupe_key=f"{event_type}:{key}",
        payload=payload,
        received_at=received_at,
    )


def audio_storage_key(conversation_id: str, recording_id: uuid.UUID) -> str:
    """Return where a conversation's audio is stored: `<conversation id>/<recording id>.mp3`."""
    folder = _SAFE_KEY_PART.sub("_", conversation_id).strip(".") or "conversation"
    return f"{folder}/{recording_id}.mp3"


@dataclass(frozen=True)
class AudioReference:
    """The storage location of a conversation's audio, kept in the event in place of the audio."""

    recording_id: uuid.UUID
    storage_key: str
    size_bytes: int
    content_type: str = "audio/mpeg"

    def to_payload(self) -> dict[str, Any]:
        return {
            "recording_id": str(self.recording_id),
            "storage_key": self.storage_key,
            "size_bytes": self.size_bytes,
            "content_type": self.content_type,
        }

    @classmethod
    def from_payload(cls, value: Any) -> AudioReference | None:
        if not isinstance(value, dict) or not value.get("storage_key"):
            return None
        try:
            return cls(
                recording_id=uuid.UUID(str(value["recording_id"])),
                storage_key=str(value["storage_key"]),
                size_bytes=int(value["size_bytes"]),
                content_type=str(value.get("content_type") or "audio/mpeg"),
            )
        except (KeyError, TypeError, ValueError):
            return None


class ElevenLabsEventHandlers:
    """The handlers of ElevenLabs' post-call events, for the event processor."""

    def __init__(self, *, routes: RouteCache) -> None:
        self._routes = routes

    def handlers(self) -> dict[tuple[str, str], Any]:
        return {
            (SOURCE, TRANSCRIPTION): self.apply_transcription,
            (SOURCE, AUDIO): self.apply_audio,
            (SOURCE, INITIATION_FAILURE): self.apply_initiation_failure,
        }

    async def apply_transcription(
        self, session: AsyncSession, event: InboundEvent
    ) -> Applied:
        """Store the conversation's transcript, analysis, duration and cost on its call."""
        data = _object(event.payload.get("data"))
        metadata = _object(data.get("metadata"))
        phone_call = _object(metadata.get("phone_call"))
        conversation_id = _required_conversation_id(data)
        started_at = _unix_time(metadata.get("start_time_unix_secs"))
        numbers = _phone_call_numbers(phone_call)

        call, _ = await lock_call_by_conversation(
            session,
            conversation_id,
            call_sid=_text(phone_call.get("call_sid")),
            defaults={**numbers, "started_at": started_at or event.received_at},
        )
        await self._attribute(
            session, call, data, our_number=_text(phone_call.get("agent_number"))
        )
        _fill_numbers(call, numbers)

        analysis = _object(data.get("analysis"))
        outcome = _text(analysis.get("call_successful"))
        call.outcome = outcome if outcome in OUTCOMES else "unknown"
        call.summary = _text(analysis.get("transcript_summary")) or call.summary
        if analysis:
            call.analysis = analysis
        call.termination_reason = (
            _text(metadata.get("termination_reason")) or call.termination_reason
        )
        call.cost = _cost(metadata.get("cost"), fallback=call.cost)
        call.error = _error(metadata.get("error")) or call.error

        variables = _object(
            _object(data.get("conversation_initiation_client_data")).get(
                "dynamic_variables"
            )
        )
        if variables:
            call.dynamic_variables = {**call.dynamic_variables, **variables}

        duration = _whole_number(metadata.get("call_duration_secs"))
        # Twilio's duration of the telephone leg wins when it exists.
        if duration is not None and call.duration_seconds is None:
            call.duration_seconds = duration
        fill_earliest(call, "started_at", started_at)
        if started_at is not None and duration is not None and call.ended_at is None:
            call.ended_at = datetime.fromtimestamp(
                started_at.timestamp() + duration, UTC
            )
        # A transcription is sent once the conversation is over.
        if statuses.advances(call.status, "completed"):
            call.status = "completed"

        turns = _turns(data.get("transcript"))
        await _store_transcript(
            session,
            call,
            conversation_id=conversation_id,
            status=_text(data.get("status")),
            turns=turns,
        )
        logger.info(
            "transcription stored",
            conversation_id=conversation_id,
            call_id=str(call.id),
            turns=len(turns),
            outcome=call.outcome,
        )
        return Applied(call_id=call.id, outcome=_outcome(call))

    async def apply_audio(self, session: AsyncSession, event: InboundEvent) -> Applied:
        """Record the conversation's stored audio as a recording of its call."""
        data = _object(event.payload.get("data"))
        conversation_id = _required_conversation_id(data)
        call, _ = await lock_call_by_conversation(
            session,
            conversation_id,
            call_sid=None,
            defaults={"started_at": event.received_at},
        )
        await self._attribute(session, call, data, our_number=None)

        reference = AudioReference.from_payload(
            data.get("full_audio")
        ) or AudioReference.from_payload(data.get("audio_base_64"))
        if reference is None:
            logger.warning(
                "audio event without stored audio", conversation_id=conversation_id
            )
            return Applied(call_id=call.id, outcome=_outcome(call))

        recording = await session.scalar(
            select(Recording)
            .where(Recording.source == SOURCE, Recording.external_id == conversation_id)
            .with_for_update()
        )
        if recording is None:
            recording = Recording(
                id=reference.recording_id,
                call_id=call.id,
                source=SOURCE,
                external_id=conversation_id,
            )
            session.add(recording)
        recording.status = "completed"
        recording.media_status = "stored"
        recording.media_error = None
        recording.storage_key = reference.storage_key
        recording.size_bytes = reference.size_bytes
        recording.content_type = reference.content_type
        recording.stored_at = event.received_at
        await session.flush()
        logger.info(
            "conversation audio recorded",
            conversation_id=conversation_id,
            call_id=str(call.id),
            size_bytes=reference.size_bytes,
        )
        return Applied(call_id=call.id, outcome=_outcome(call))

    async def apply_initiation_failure(
        self, session: AsyncSession, event: InboundEvent
    ) -> Applied:
        """Mark the call as never connected, with the reason and the carrier's details."""
        data = _object(event.payload.get("data"))
        conversation_id = _required_conversation_id(data)
        reason = _text(data.get("failure_reason")) or "unknown"
        carrier = _carrier_details(_object(data.get("metadata")))
        moment = _unix_time(event.payload.get("event_timestamp")) or event.received_at

        call, _ = await lock_call_by_conversation(
            session,
            conversation_id,
            call_sid=carrier.call_sid,
            defaults={
                "from_number": carrier.from_number,
                "to_number": carrier.to_number,
                "direction": carrier.direction,
                "started_at": moment,
            },
        )
        await self._attribute(session, call, data, our_number=carrier.from_number)
        call.from_number = call.from_number or carrier.from_number
        call.to_number = call.to_number or carrier.to_number
        call.direction = call.direction or carrier.direction

        status = _FAILURE_STATUSES.get(reason, "failed")
        if statuses.advances(call.status, status):
            call.status = status
        if call.status != "completed":
            call.failure_reason = reason[:200]
            if call.ended_at is None:
                call.ended_at = moment
        if carrier.details:
            call.details = {**call.details, **carrier.details}
        logger.info(
            "call initiation failure stored",
            conversation_id=conversation_id,
            call_id=str(call.id),
            reason=reason,
        )
        return Applied(call_id=call.id, outcome=_outcome(call))

    async def _attribute(
        self,
        session: AsyncSession,
        call: Call,
        data: dict[str, Any],
        *,
        our_number: str | None,
    ) -> None:
        """Attach a call without a team to its number's route, else to its agent's team.

        A call attributed by its agent alone, such as one created by an audio
        event, takes its mode from the number once an event names the number.
        """
        if our_number and (call.team_id is None or call.mode is None):
            route = await lookup_route(session, our_number)
            self._routes.remember(our_number, route)
            attribute(call, route)
            if (
                route is not None
                and call.mode is None
                and call.team_id == route.team_id
            ):
                call.mode = route.mode
        await attribute_to_agent(session, call, _text(data.get("agent_id")))


@dataclass(frozen=True)
class _CarrierDetails:
    call_sid: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    details: dict[str, str]


def _carrier_details(metadata: dict[str, Any]) -> _CarrierDetails:
    """Read the Twilio or SIP details of a failed call initiation.

    The details sit in `metadata.body`, or in `metadata` itself for senders
    that do not nest them.
    """
    carrier = (_text(metadata.get("type")) or "").lower()
    body = _object(metadata.get("body")) or metadata
    details: dict[str, str] = {}
    if carrier:
        details["carrier"] = carrier
    if carrier == "twilio":
        call_sid = _text(body.get("CallSid"))
        from_number = _text(body.get("From"))
        to_number = _text(body.get("To"))
        direction = _text(body.get("Direction"))
        fields = {
            "carrier_status": body.get("CallStatus"),
            "sip_status_code": body.get("SipResponseCode"),
            "error_code": body.get("ErrorCode"),
        }
    else:
        # A SIP trunk's call id is only a Twilio CallSid when the trunk is Twilio's.
        sip_call_id = _text(body.get("call_sid"))
        is_twilio = bool(sip_call_id and _TWILIO_CALL_SID.fullmatch(sip_call_id))
        call_sid = sip_call_id if is_twilio else None
        from_number = _text(body.get("from_number"))
        to_number = _text(body.get("to_number"))
        direction = None
        fields = {
            "sip_status_code": body.get("sip_status_code"),
            "error_reason": body.get("error_reason"),
            "sip_call_id": None if is_twilio else sip_call_id,
        }
    for name, value in fields.items():
        text = _text(value)
        if text:
            details[name] = text[:500]
    # ElevenLabs only initiates outbound calls.
    return _CarrierDetails(
        call_sid=call_sid,
        from_number=from_number,
        to_number=to_number,
        direction=direction or "outbound",
        details=details,
    )


async def _store_transcript(
    session: AsyncSession,
    call: Call,
    *,
    conversation_id: str,
    status: str | None,
    turns: list[dict[str, Any]],
) -> None:
    transcript = await session.scalar(
        select(Transcript).where(Transcript.call_id == call.id).with_for_update()
    )
    if transcript is None:
        transcript = Transcript(call_id=call.id)
        session.add(transcript)
    transcript.conversation_id = conversation_id
    transcript.status = status[:32] if status else None
    transcript.turns = turns
    transcript.turn_count = len(turns)
    await session.flush()


def _turns(value: Any) -> list[dict[str, Any]]:
    """Return the transcript's turns in one shape; a turn that is not an object is dropped."""
    if not isinstance(value, list):
        return []
    turns = []
    for item in value:
        if not isinstance(item, dict):
            continue
        message = item.get("message")
        turns.append(
            {
                "role": _text(item.get("role")),
                "message": message if message is None else _text(message) or "",
                "time_in_call_secs": _number(item.get("time_in_call_secs")),
                "tool_calls": _list(item.get("tool_calls")),
                "tool_results": _list(item.get("tool_results")),
            }
        )
    return turns


def _phone_call_numbers(phone_call: dict[str, Any]) -> dict[str, str | None]:
    """Return caller, called number and direction of a phone call's metadata."""
    direction = _text(phone_call.get("direction"))
    agent_number = _text(phone_call.get("agent_number"))
    external_number = _text(phone_call.get("external_number"))
    outbound = bool(direction and direction.startswith("outbound"))
    return {
        "from_number": agent_number if outbound else external_number,
        "to_number": external_number if outbound else agent_number,
        "direction": direction,
    }


def _fill_numbers(call: Call, numbers: dict[str, str | None]) -> None:
    call.from_number = call.from_number or numbers["from_number"]
    call.to_number = call.to_number or numbers["to_number"]
    call.direction = call.direction or numbers["direction"]


def _required_conversation_id(data: dict[str, Any]) -> str:
    conversation_id = _text(data.get("conversation_id"))
    if not conversation_id:
        raise InvalidEvent("Missing required field 'data.conversation_id'.")
    return conversation_id


def _outcome(call: Call) -> str:
    return "accepted" if call.team_id is not None else "unattributed"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """Read a string that may come as a number; None when empty or of another shape."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, str):
        return clean_text(value).strip() or None
    return None


def _number(value: Any) -> float | None:
    """Read a number that may come as a string; None when it is not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _whole_number(value: Any) -> int | None:
    number = _number(value)
    if number is None or not 0 <= number < 2**31:
        return None
    return int(number)


def _unix_time(value: Any) -> datetime | None:
    """Read unix seconds as an aware UTC datetime; None outside years 2000 to 2100."""
    number = _number(value)
    if number is None or not 946_684_800 <= number < 4_102_444_800:
        return None
    return datetime.fromtimestamp(number, UTC)


def _cost(value: Any, *, fallback: Decimal | None) -> Decimal | None:
    number = _text(value)
    if number is None:
        return fallback
    try:
        cost = Decimal(number)
    except InvalidOperation:
        return fallback
    if not cost.is_finite() or abs(cost) >= _MAX_COST:
        return fallback
    return cost


def _error(value: Any) -> dict[str, Any] | None:
    """Read `metadata.error`, which comes as a string or as an object."""
    if isinstance(value, dict):
        return value or None
    text = _text(value)
    return {"message": text} if text else None
