"""A team's calls: the list, one call, a recording's audio, and legal holds.

The list pages with an opaque cursor (URL-safe base64 of the last call's
start time and id) on the index of (team_id, started_at, id), so a page costs
the same however deep it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.accounts.roles import team_access_by_id
from renchi.calls import statuses
from renchi.calls.documents import (
    CallFilters,
    CallPosition,
    call_document,
    list_call_summaries,
)
from renchi.calls.legal_holds import place_legal_hold, release_legal_hold
from renchi.db.models import Call, Recording
from renchi.errors import InvalidInput, NotFound, shorten
from renchi.teams.provisioning import AGENT_ID, validate_e164
from renchi.web.auth import Principal, authenticate, require_team_role, team_parameter
from renchi.web.recordings import stream_recording
from renchi.web.routes.bodies import json_object
from renchi.web.webhooks.pipeline import runtime_of

logger = structlog.get_logger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
OUTCOMES = ("success", "failure", "unknown")
# ASCII digits only: str.isdigit() also accepts characters int() rejects.
_DIGITS = re.compile(r"^[0-9]{1,9}$")
_LIST_PARAMETERS = frozenset(
    {
        "team",
        "limit",
        "cursor",
        "status",
        "outcome",
        "agent_id",
        "phone_number",
        "from",
        "to",
    }
)


def encode_cursor(position: CallPosition) -> str:
    started = position.started_at.isoformat() if position.started_at else None
    raw = json.dumps([started, str(position.call_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> CallPosition:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        started, call_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        started_at = None
        if started is not None:
            parsed = datetime.fromisoformat(started)
            if parsed.tzinfo is None:
                raise ValueError("The cursor's time has no time zone.")
            started_at = parsed.astimezone(UTC)
        return CallPosition(started_at=started_at, call_id=uuid.UUID(call_id))
    except (
        binascii.Error,
        ValueError,
        TypeError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as error:
        raise InvalidInput(
            "Invalid cursor: pass the next_cursor of the previous page unchanged.",
            field="cursor",
        ) from error


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _DIGITS.match(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidInput(
            f"Invalid limit {shorten(value)!r}: use a whole number from 1 to {MAX_LIMIT}.",
            field="limit",
        )
    return int(value)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(
            f"Invalid {name!r} time {shorten(value)!r}: use ISO 8601 with a time zone, "
            "such as 2026-12-04T16:00:00Z.",
            field=name,
        ) from error
    if moment.tzinfo is None:
        raise InvalidInput(
            f"Invalid {name!r} time {shorten(value)!r}: add a time zone, such as Z or +02:00.",
            field=name,
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise InvalidInput(
            f"Invalid {name!r} time {shorten(value)!r}: the year is out of range.",
            field=name,
        ) from error


def _filters(request: Request) -> CallFilters:
    query = request.query_params
    unknown = sorted(set(query.keys()) - _LIST_PARAMETERS)
    if unknown:
        raise InvalidInput(
            f"Unknown query parameter {shorten(unknown[0])!r}; use "
            f"{', '.join(sorted(_LIST_PARAMETERS))}.",
            field=shorten(unknown[0]),
        )
    status = query.get("status")
    if status is not None and status not in statuses.KNOWN:
        raise InvalidInput(
            f"Invalid status {shorten(status)!r}; use one of {', '.join(sorted(statuses.KNOWN))}.",
            field="status",
        )
    outcome = query.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(
            f"Invalid outcome {shorten(outcome)!r}; use one of {', '.join(OUTCOMES)}.",
            field="outcome",
        )
    agent_id = query.get("agent_id")
    if agent_id is not None and not AGENT_ID.match(agent_id):
        raise InvalidInput(f"Invalid agent_id {shorten(agent_id)!r}.", field="agent_id")
    phone_number = query.get("phone_number")
    if phone_number is not None:
        phone_number = validate_e164(phone_number, field="phone_number")
    started_from = _time(query.get("from"), "from")
    started_before = _time(query.get("to"), "to")
    if started_from and started_before and started_from >= started_before:
        raise InvalidInput("'from' must be earlier than 'to'.", field="from")
    return CallFilters(
        status=status,
        outcome=outcome,
        agent_id=agent_id,
        phone_number=phone_number,
        started_from=started_from,
        started_before=started_before,
    )


async def list_calls(request: Request) -> Response:
    access = await require_team_role(request, team_parameter(request), "member")
    filters = _filters(request)
    limit = _limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor) if cursor else None

    async with runtime_of(request).database.sessions() as session:
        calls = await list_call_summaries(
            session,
            team_id=access.team.id,
            limit=limit + 1,
            filters=filters,
            after=after,
        )
    next_cursor = None
    if len(calls) > limit:
        calls = calls[:limit]
        last = calls[-1]
        started = last["started_at"]
        next_cursor = encode_cursor(
            CallPosition(
                started_at=datetime.fromisoformat(started) if started else None,
                call_id=uuid.UUID(last["id"]),
            )
        )
    return JSONResponse({"calls": calls, "next_cursor": next_cursor})


def _path_id(request: Request, name: str, what: str) -> uuid.UUID:
    value = request.path_params[name]
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise NotFound(f"{what} {shorten(value)!r} not found.") from error


async def _require_call_access(
    request: Request,
    principal: Principal,
    call_id: uuid.UUID,
    *,
    required: str = "member",
) -> None:
    """Raise NotFound unless the user may see the call, and Forbidden below `required`.

    A call without a team is visible to super admins only.
    """
    async with runtime_of(request).database.sessions() as session:
        found = (
            await session.execute(select(Call.team_id).where(Call.id == call_id))
        ).first()
        if found is None:
            raise NotFound(f"Call {call_id} not found.")
        if found.team_id is None and principal.user.super_admin:
            return
        try:
            await team_access_by_id(
                session, user=principal.user, team_id=found.team_id, required=required
            )
        except NotFound as error:
            raise NotFound(f"Call {call_id} not found.") from error


async def show_call(request: Request) -> Response:
    principal = await authenticate(request)
    call_id = _path_id(request, "call_id", "Call")
    await _require_call_access(request, principal, call_id)
    async with runtime_of(request).database.sessions() as session:
        document: dict[str, Any] | None = await call_document(session, call_id)
    if document is None:
        raise NotFound(f"Call {call_id} not found.")
    return JSONResponse(document)


async def recording_audio(request: Request) -> Response:
    principal = await authenticate(request)
    call_id = _path_id(request, "call_id", "Call")
    recording_id = _path_id(request, "recording_id", "Recording")
    await _require_call_access(request, principal, call_id)
    async with runtime_of(request).database.sessions() as session:
        recording = await session.scalar(
            select(Recording).where(
                Recording.id == recording_id, Recording.call_id == call_id
            )
        )
    if recording is None:
        raise NotFound(f"Recording {recording_id} not found.")
    return await stream_recording(request, recording)


async def place_hold(request: Request) -> Response:
    principal = await authenticate(request)
    call_id = _path_id(request, "call_id", "Call")
    await _require_call_access(request, principal, call_id, required="admin")
    body = await json_object(request)
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise InvalidInput(
            f"Unknown field {unknown[0]!r}; send only 'reason'.", field=unknown[0]
        )
    async with runtime_of(request).database.transaction() as session:
        hold = await place_legal_hold(
            session, call_id=call_id, reason=body.get("reason"), actor=principal.user
        )
    logger.info(
        "legal hold placed", call_id=str(call_id), user_id=str(principal.user.id)
    )
    return JSONResponse(hold, status_code=201)


async def release_hold(request: Request) -> Response:
    principal = await authenticate(request)
    call_id = _path_id(request, "call_id", "Call")
    await _require_call_access(request, principal, call_id, required="admin")
    async with runtime_of(request).database.transaction() as session:
        hold = await release_legal_hold(session, call_id=call_id, actor=principal.user)
    logger.info(
        "legal hold released", call_id=str(call_id), user_id=str(principal.user.id)
    )
    return JSONResponse(hold)


routes = [
    Route("/api/calls", list_calls, methods=["GET"]),
    Route("/api/calls/{call_id}", show_call, methods=["GET"]),
    Route("/api/calls/{call_id}/legal-hold", place_hold, methods=["POST"]),
    Route("/api/calls/{call_id}/legal-hold", release_hold, methods=["DELETE"]),
    Route(
        "/api/calls/{call_id}/recordings/{recording_id}",
        recording_audio,
        methods=["GET"],
    ),
]
