"""Applying Twilio's voice, call status and recording callbacks to the call records."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.adapters.twilio import TwilioClient
from renchi.calls import statuses
from renchi.calls.call_state import call_state_update, lock_call_state
from renchi.calls.records import CallFields, attribute, fill_earliest, lock_call_by_sid
from renchi.calls.routing import Route, RouteCache, lookup_route
from renchi.calls.variables import compute_variables
from renchi.db.models import Recording
from renchi.db.models.base import clean_text
from renchi.observability import metrics
from renchi.tasks.queue import enqueue
from renchi.webhooks.intake import Applied, InboundEvent

logger = structlog.get_logger(__name__)

SOURCE = "twilio"
VOICE = "voice"
STATUS = "status"
RECORDING = "recording"
FETCH_RECORDING_TASK = "fetch_recording"

# Fields kept on the call for people reading it; the full payload stays on the event.
_DETAIL_FIELDS = (
    "CallerName",
    "ForwardedFrom",
    "ParentCallSid",
    "FromCity",
    "FromState",
    "FromZip",
    "FromCountry",
    "ToCity",
    "ToState",
    "ToZip",
    "ToCountry",
    "SipResponseCode",
)


# Twilio's ids are two letters and 32 hex digits; any id-like token is accepted.
_SID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEQUENCE = re.compile(r"^[0-9]{1,10}$")
_WORD = re.compile(r"^[a-z-]{1,32}$")
# Timestamps outside this range are not Twilio's clock; the arrival time is used.
_EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
_TIMESTAMP_LEEWAY = timedelta(days=1)


class InvalidEvent(ValueError):
    """A webhook body that parsed but lacks what the event needs."""


def build_event(
    event_type: str, payload: dict[str, Any], *, received_at: datetime
) -> InboundEvent:
    """Check the fields `event_type` needs and derive its deduplication key."""
    call_sid = _required(payload, "CallSid")
    if event_type == VOICE:
        key = call_sid
    elif event_type == STATUS:
        status = _word(_required(payload, "CallStatus"), "CallStatus")
        sequence = str(payload.get("SequenceNumber") or "").strip()
        if sequence and not _SEQUENCE.match(sequence):
            raise InvalidEvent("Invalid SequenceNumber: use up to 10 digits.")
        key = f"{call_sid}:{status}:{sequence}" if sequence else f"{call_sid}:{status}"
    elif event_type == RECORDING:
        recording_sid = _required(payload, "RecordingSid")
        status = str(payload.get("RecordingStatus") or "completed").strip()
        status = _word(status, "RecordingStatus")
        key = f"{recording_sid}:{status}"
    else:
        raise ValueError(f"Unknown Twilio event type {event_type!r}.")
    return InboundEvent(
        source=SOURCE,
        type=event_type,
        dedupe_key=f"{event_type}:{key}",
        payload=payload,
        received_at=received_at,
    )


def _required(payload: dict[str, Any], name: str) -> str:
    # Cleaned as InboundEvent cleans the payload, so the key matches the stored values.
    value = clean_text(str(payload.get(name) or "")).strip()
    if not value:
        raise InvalidEvent(f"Missing required field {name!r}.")
    if not _SID.match(value):
        raise InvalidEvent(
            f"Invalid {name}: use 1 to 64 letters, digits, hyphens or underscores."
        )
    return value


def _word(value: str, name: str) -> str:
    """Return a status word such as `in-progress` in lower case; reject anything else."""
    word = value.lower()
    if not _WORD.match(word):
        raise InvalidEvent(f"Invalid {name}: use up to 32 letters and hyphens.")
    return word


@dataclass(frozen=True)
class VoiceFollowup:
    """What the voice webhook needs after the commit to answer Twilio."""

    call_id: uuid.UUID
    route: Route | None
    variables: dict[str, str]
    from_number: str
    to_number: str
    direction: str
    # The call had already ended, so it must not be connected to an agent again.
    ended: bool = False


class TwilioEventHandlers:
    """The handlers of Twilio's three webhooks, for the event processor."""

    def __init__(
        self, *, routes: RouteCache, twilio: TwilioClient, task_max_attempts: int
    ) -> None:
        self._routes = routes
        self._twilio = twilio
        self._task_max_attempts = task_max_attempts

    def handlers(self) -> dict[tuple[str, str], Any]:
        return {
            (SOURCE, VOICE): self.apply_voice,
            (SOURCE, STATUS): self.apply_status,
            (SOURCE, RECORDING): self.apply_recording,
        }

    async def _route(self, session: AsyncSession, number: str) -> Route | None:
        if not number:
            return None
        route = await lookup_route(session, number)
        self._routes.remember(number, route)
        return route

    async def apply_voice(self, session: AsyncSession, event: InboundEvent) -> Applied:
        """Create the call of an incoming voice request and compute its variables."""
        payload = event.payload
        call_sid = str(payload["CallSid"])
        from_number = str(payload.get("From") or "")
        to_number = str(payload.get("To") or "")
        direction = str(payload.get("Direction") or "inbound")
        route = await self._route(session, to_number)

        call, _ = await lock_call_by_sid(
            session, call_sid, defaults=_call_defaults(payload, event.received_at)
        )
        ended = statuses.is_terminal(call.status)
        attribute(call, route)
        _apply_common_fields(call, payload)
        _advance_status(
            call, str(payload.get("CallStatus") or "ringing").lower(), event.received_at
        )

        variables: dict[str, str] = {}
        # A replayed event got its TwiML before it was spooled, so its variables were sent then.
        if event.response is None:
            variables = await compute_variables(
                session,
                team_id=route.team_id if route else None,
                team_name=route.team_name if route else "",
                caller_number=from_number,
                called_number=to_number,
                exclude_call_sid=call_sid,
            )
            call.dynamic_variables = variables
        followup = VoiceFollowup(
            call_id=call.id,
            route=route,
            variables=variables,
            from_number=from_number,
            to_number=to_number,
            direction=direction,
            ended=ended,
        )
        return Applied(call_id=call.id, outcome=_outcome(call), followup=followup)

    async def apply_status(self, session: AsyncSession, event: InboundEvent) -> Applied:
        """Move a call's status forward and fill in its times and duration."""
        payload = event.payload
        call, created = await lock_call_state(
            session,
            str(payload["CallSid"]),
            defaults=_call_defaults(payload, event.received_at),
        )
        if call.team_id is None:
            attribute(call, await self._route(session, _our_number(payload)))
        _apply_common_fields(call, payload)
        moment = _event_time(payload, event.received_at)
        _advance_status(call, str(payload["CallStatus"]).lower(), moment)

        duration = _to_int(payload.get("CallDuration"))
        if duration is not None and (
            call.duration_seconds is None or statuses.is_terminal(call.status)
        ):
            call.duration_seconds = duration
        if created:
            logger.info("call created from status callback", call_sid=call.call_sid)
        return Applied(
            call_id=call.id,
            outcome=_outcome(call),
            final_update=call_state_update(call),
        )

    async def apply_recording(
        self, session: AsyncSession, event: InboundEvent
    ) -> Applied:
        """Store a recording's details and queue the download of completed media."""
        payload = event.payload
        call, _ = await lock_call_by_sid(
            session,
            str(payload["CallSid"]),
            defaults=_call_defaults(payload, event.received_at),
        )
        if call.team_id is None:
            attribute(call, await self._route(session, _our_number(payload)))

        recording_sid = str(payload["RecordingSid"])
        recording = await session.scalar(
            select(Recording)
            .where(Recording.source == SOURCE, Recording.external_id == recording_sid)
            .with_for_update()
        )
        if recording is None:
            # Column defaults apply only at INSERT, but the status check and the
            # download task below need both values before the flush.
            recording = Recording(
                id=uuid.uuid4(),
                call_id=call.id,
                source=SOURCE,
                external_id=recording_sid,
                media_status="pending",
            )
            session.add(recording)

        status = str(payload.get("RecordingStatus") or "completed").lower()
        recording.status = status
        url = str(payload.get("RecordingUrl") or "") or recording.source_url
        recording.source_url = url
        duration = _to_int(payload.get("RecordingDuration"))
        recording.duration_seconds = (
            duration if duration is not None else recording.duration_seconds
        )
        channels = _to_int(payload.get("RecordingChannels"))
        recording.channels = channels if channels is not None else recording.channels
        recording.started_at = (
            _parse_time(payload.get("RecordingStartTime")) or recording.started_at
        )

        if status in {"absent", "failed"}:
            recording.media_status = "failed"
            recording.media_error = f"Twilio reported the recording as {status}."
        elif status == "completed" and recording.media_status in {"pending", "failed"}:
            self._queue_download(session, recording, url)
        await session.flush()
        return Applied(call_id=call.id, outcome=_outcome(call))

    def _queue_download(
        self, session: AsyncSession, recording: Recording, url: str | None
    ) -> None:
        if not url or not self._twilio.is_api_url(url):
            # A forged or misrouted callback must not make us send the account's
            # credentials to another host, so the media is never requested.
            recording.media_status = "rejected"
            recording.media_error = "The recording URL is not on the Twilio API host."
            metrics.recording_urls_rejected.inc()
            logger.warning(
                "recording URL rejected: not on the Twilio API host",
                recording_sid=recording.external_id,
            )
            return
        recording.media_status = "pending"
        recording.media_error = None
        enqueue(
            session,
            kind=FETCH_RECORDING_TASK,
            payload={"recording_id": str(recording.id)},
            max_attempts=self._task_max_attempts,
        )


def _call_defaults(payload: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    return {
        "from_number": str(payload.get("From") or "") or None,
        "to_number": str(payload.get("To") or "") or None,
        "direction": str(payload.get("Direction") or "") or None,
        "started_at": _event_time(payload, received_at),
    }


def _apply_common_fields(call: CallFields, payload: dict[str, Any]) -> None:
    call.from_number = call.from_number or str(payload.get("From") or "") or None
    call.to_number = call.to_number or str(payload.get("To") or "") or None
    call.direction = call.direction or str(payload.get("Direction") or "") or None
    details = {name: str(payload[name]) for name in _DETAIL_FIELDS if payload.get(name)}
    if details:
        call.details = {**call.details, **details}


def _advance_status(call: CallFields, status: str, moment: datetime) -> None:
    """Apply `status` if it moves the call forward; fill in the time it stands for either way."""
    if statuses.advances(call.status, status):
        call.status = status
    if status in {"queued", "initiated", "ringing"}:
        fill_earliest(call, "started_at", moment)
    elif status == "in-progress":
        fill_earliest(call, "answered_at", moment)
    elif statuses.is_terminal(status) and call.ended_at is None:
        call.ended_at = moment


def _our_number(payload: dict[str, Any]) -> str:
    """Return the team's side of the call: the caller of an outbound call, else the called number."""
    direction = str(payload.get("Direction") or "inbound")
    name = "From" if direction.startswith("outbound") else "To"
    return str(payload.get(name) or "")


def _outcome(call: CallFields) -> str:
    return "accepted" if call.team_id is not None else "unattributed"


def _event_time(payload: dict[str, Any], received_at: datetime) -> datetime:
    return _parse_time(payload.get("Timestamp")) or received_at


def _parse_time(value: Any) -> datetime | None:
    """Parse Twilio's RFC 2822 timestamps; return None for anything else."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # parsedate reads a short year such as "0001" as 2001; only a written
    # four-digit year counts.
    if f" {moment.year:04d} " not in f" {value} ":
        return None
    moment = moment.astimezone(UTC)
    if not _EARLIEST_TIMESTAMP <= moment <= datetime.now(UTC) + _TIMESTAMP_LEEWAY:
        return None
    return moment


def _to_int(value: Any) -> int | None:
    """Read a number Twilio may send as `"12"`, `12` or `"12.0"`; None when it is not one."""
    if value is None or value == "":
        return None
    try:
        number = int(float(str(value).strip()))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number < 2**31 else None
