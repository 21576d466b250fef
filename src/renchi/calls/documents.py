"""The JSON documents of a call, shared by `renchi calls` and the calls API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls.legal_holds import active_legal_hold
from renchi.db.models import Agent, Call, Recording, Team, Transcript, WebhookEvent


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def call_summary(
    call: Call, *, team_slug: str | None, agent_id: str | None
) -> dict[str, Any]:
    """Return the short form of a call, as listed."""
    return {
        "id": str(call.id),
        "team": team_slug,
        "agent_id": agent_id,
        "call_sid": call.call_sid,
        "conversation_id": call.conversation_id,
        "direction": call.direction,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "mode": call.mode,
        "status": call.status,
        "outcome": call.outcome,
        "failure_reason": call.failure_reason,
        "summary": call.summary,
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "cost": _number(call.cost),
    }


def recording_document(recording: Recording) -> dict[str, Any]:
    return {
        "id": str(recording.id),
        "source": recording.source,
        "external_id": recording.external_id,
        "status": recording.status,
        "media_status": recording.media_status,
        "media_error": recording.media_error,
        "duration_seconds": recording.duration_seconds,
        "channels": recording.channels,
        "content_type": recording.content_type,
        "size_bytes": recording.size_bytes,
        "started_at": _iso(recording.started_at),
        "stored_at": _iso(recording.stored_at),
        "deleted_at": _iso(recording.deleted_at),
        "url": (
            f"/api/calls/{recording.call_id}/recordings/{recording.id}"
            if recording.media_status == "stored"
            else None
        ),
    }


async def call_document(
    session: AsyncSession, call_id: uuid.UUID
) -> dict[str, Any] | None:
    """Return everything known about a call, or None when it does not exist."""
    row = (
        await session.execute(
            select(Call, Team.slug, Agent.elevenlabs_agent_id)
            .outerjoin(Team, Team.id == Call.team_id)
            .outerjoin(Agent, Agent.id == Call.agent_id)
            .where(Call.id == call_id)
        )
    ).first()
    if row is None:
        return None
    call, team_slug, agent_id = row
    recordings = (
        await session.scalars(
            select(Recording)
            .where(Recording.call_id == call_id)
            .order_by(Recording.created_at)
        )
    ).all()
    transcript = await session.scalar(
        select(Transcript).where(Transcript.call_id == call_id)
    )
    events = (
        await session.execute(
            select(
                WebhookEvent.source,
                WebhookEvent.event_type,
                WebhookEvent.outcome,
                WebhookEvent.received_at,
            )
            .where(WebhookEvent.call_id == call_id)
            .order_by(WebhookEvent.received_at, WebhookEvent.id)
        )
    ).all()
    document = call_summary(call, team_slug=team_slug, agent_id=agent_id)
    document.update(
        {
            "team_id": str(call.team_id) if call.team_id else None,
            "termination_reason": call.termination_reason,
            "analysis": call.analysis,
            "dynamic_variables": call.dynamic_variables,
            "error": call.error,
            "details": call.details,
            "transcript": transcript.turns if transcript else [],
            "transcript_status": transcript.status if transcript else None,
            "recordings": [recording_document(recording) for recording in recordings],
            "legal_hold": await active_legal_hold(session, call_id),
            "events": [
                {
                    "source": event.source,
                    "type": event.event_type,
                    "outcome": event.outcome,
                    "received_at": _iso(event.received_at),
                }
                for event in events
            ],
            "created_at": _iso(call.created_at),
            "updated_at": _iso(call.updated_at),
        }
    )
    return document


@dataclass(frozen=True)
class CallFilters:
    """Conditions on listed calls; None means any value."""

    status: str | None = None
    outcome: str | None = None
    # The ElevenLabs agent id, as in the documents.
    agent_id: str | None = None
    # A call from or to this number.
    phone_number: str | None = None
    # Start times: `started_from` inclusive, `started_before` exclusive.
    started_from: datetime | None = None
    started_before: datetime | None = None


@dataclass(frozen=True)
class CallPosition:
    """The end of a page of calls: its last call's start time and id."""

    started_at: datetime | None
    call_id: uuid.UUID


def _conditions(filters: CallFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Call.status == filters.status)
    if filters.outcome is not None:
        conditions.append(Call.outcome == filters.outcome)
    if filters.agent_id is not None:
        conditions.append(Agent.elevenlabs_agent_id == filters.agent_id)
    if filters.phone_number is not None:
        conditions.append(
            or_(
                Call.from_number == filters.phone_number,
                Call.to_number == filters.phone_number,
            )
        )
    if filters.started_from is not None:
        conditions.append(Call.started_at >= filters.started_from)
    if filters.started_before is not None:
        conditions.append(Call.started_at < filters.started_before)
    return conditions


def _after(position: CallPosition) -> ColumnElement[bool]:
    """Return the condition for calls listed after `position`, newest first.

    Calls without a start time come first, as PostgreSQL sorts NULL first in
    descending order, and among them the order is by id.
    """
    if position.started_at is None:
        return or_(
            Call.started_at.is_not(None),
            (Call.started_at.is_(None)) & (Call.id < position.call_id),
        )
    return tuple_(Call.started_at, Call.id) < tuple_(
        position.started_at, position.call_id
    )


async def list_call_summaries(
    session: AsyncSession,
    *,
    team_id: uuid.UUID | None = None,
    limit: int = 50,
    filters: CallFilters | None = None,
    after: CallPosition | None = None,
) -> list[dict[str, Any]]:
    """Return the newest calls, of one team or of all, matching `filters`.

    Keyset pagination: with `after`, the list continues behind that call, on
    the index of (team_id, started_at, id).
    """
    query = (
        select(Call, Team.slug, Agent.elevenlabs_agent_id)
        .outerjoin(Team, Team.id == Call.team_id)
        .outerjoin(Agent, Agent.id == Call.agent_id)
        .order_by(Call.started_at.desc().nulls_first(), Call.id.desc())
        .limit(limit)
    )
    if team_id is not None:
        query = query.where(Call.team_id == team_id)
    if filters is not None:
        query = query.where(*_conditions(filters))
    if after is not None:
        query = query.where(_after(after))
    rows = (await session.execute(query)).all()
    return [
        call_summary(call, team_slug=slug, agent_id=agent) for call, slug, agent in rows
    ]
