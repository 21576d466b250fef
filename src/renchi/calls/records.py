"""Finding or creating a call row under a lock, whichever provider's event comes first.

A call has two external keys: Twilio's CallSid and ElevenLabs' conversation
id. An ElevenLabs event without a CallSid, such as every audio event, can
create a conversation-only row before the Twilio side is known. The first
event that names both keys merges the two rows into one. Rows are locked
CallSid first, then conversation, so two transactions never wait on each
other in opposite order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls import statuses
from renchi.calls.routing import Route
from renchi.db.models import Agent, Call, Recording, Transcript, WebhookEvent
from renchi.db.upsert import insert_for

logger = structlog.get_logger(__name__)

# Fields a merge copies from the absorbed row when the surviving row has none.
_FILLED_FIELDS = (
    "direction",
    "from_number",
    "to_number",
    "mode",
    "outcome",
    "failure_reason",
    "termination_reason",
    "summary",
    "ended_at",
    "duration_seconds",
    "cost",
    "error",
)


class CallFields(Protocol):
    """The call columns that the shared update rules read and write."""

    team_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    mode: str | None
    status: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    details: dict[str, Any]


_calls: Table = Call.__table__  # type: ignore[assignment]


async def lock_call_by_sid(
    session: AsyncSession, call_sid: str, *, defaults: dict[str, Any]
) -> tuple[Call, bool]:
    """Return the call with `call_sid`, locked for update, creating it from `defaults`.

    The second value tells whether this transaction created it. Two concurrent
    first events for one call both end up with the same row: the loser's insert
    does nothing, and its select waits for the winner's lock.
    """
    query = select(Call).where(Call.call_sid == call_sid).with_for_update()
    call = await session.scalar(query)
    if call is not None:
        return call, False
    created = await insert_call_unless_present(
        session, {"call_sid": call_sid, **defaults}, key="call_sid"
    )
    call = await session.scalar(query.execution_options(populate_existing=True))
    assert call is not None, "A call row exists after its insert."
    return call, created


async def insert_call_unless_present(
    session: AsyncSession, values: dict[str, Any], *, key: str
) -> bool:
    """Insert a call unless one with the same unique `key` exists; return whether it did.

    RETURNING yields a row only when the insert happened. The row count cannot
    be used, because it reads -1 with psycopg 3.3 under SQLAlchemy 2.1.
    """
    connection = await session.connection()
    result = await connection.execute(
        insert_for(session, _calls)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(_calls.c.id)
    )
    return result.first() is not None


def attribute(call: CallFields, route: Route | None) -> None:
    """Attach `call` to the team and agent of `route` unless it already has a team."""
    if route is None or call.team_id is not None:
        return
    call.team_id = route.team_id
    call.agent_id = route.agent_id
    call.mode = call.mode or route.mode


def fill_earliest(call: CallFields, field: str, moment: datetime | None) -> None:
    """Set a timestamp field of `call` to `moment` when it is empty or later."""
    if moment is None:
        return
    current = getattr(call, field)
    if current is None or moment < current:
        setattr(call, field, moment)


async def lock_call_by_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    call_sid: str | None,
    defaults: dict[str, Any],
) -> tuple[Call, bool]:
    """Return the one call of a conversation, locked for update, creating it when new.

    With `call_sid`, the call is the row of that Twilio call: it takes the
    conversation id, and a conversation-only row created earlier is merged
    into it. The second value is True when this transaction created the row.
    """
    if call_sid:
        call, created = await lock_call_by_sid(session, call_sid, defaults=defaults)
        if call.conversation_id == conversation_id:
            return call, created
        if call.conversation_id is None:
            joined = await _join_conversation(session, call, conversation_id)
            if joined:
                return call, created
        logger.warning(
            "conversation and Twilio call belong to different calls; kept apart",
            conversation_id=conversation_id,
            call_sid=call_sid,
        )
    return await _lock_call_by_conversation_only(session, conversation_id, defaults)


async def _join_conversation(
    session: AsyncSession, call: Call, conversation_id: str
) -> bool:
    """Give `call` the conversation id, merging the conversation's own row into it.

    Return False when the conversation's row already has another CallSid.
    """
    query = (
        select(Call).where(Call.conversation_id == conversation_id).with_for_update()
    )
    other = await session.scalar(query)
    if other is None:
        try:
            async with session.begin_nested():
                call.conversation_id = conversation_id
                await session.flush()
            return True
        except IntegrityError:
            # A concurrent transaction created the conversation's row first;
            # the new statement below finds it once that transaction commits.
            other = await session.scalar(
                query.execution_options(populate_existing=True)
            )
            if other is None:
                raise
            # The savepoint's rollback expired the attributes set inside it.
            await session.refresh(call)
    if other.call_sid is not None:
        return False
    await merge_calls(session, survivor=call, absorbed=other)
    return True


async def _lock_call_by_conversation_only(
    session: AsyncSession, conversation_id: str, defaults: dict[str, Any]
) -> tuple[Call, bool]:
    query = (
        select(Call).where(Call.conversation_id == conversation_id).with_for_update()
    )
    call = await session.scalar(query)
    if call is not None:
        return call, False
    created = await insert_call_unless_present(
        session, {"conversation_id": conversation_id, **defaults}, key="conversation_id"
    )
    call = await session.scalar(query.execution_options(populate_existing=True))
    assert call is not None, "A call row exists after its insert."
    return call, created


async def merge_calls(session: AsyncSession, *, survivor: Call, absorbed: Call) -> None:
    """Move everything of `absorbed` into `survivor` and delete `absorbed`.

    Both rows must be locked by the caller. The survivor keeps its own values
    and takes the absorbed row's where it has none. The status moves forward
    only, and the earliest `started_at` and `answered_at` win.
    """
    absorbed_id = absorbed.id
    await session.execute(
        update(Recording)
        .where(Recording.call_id == absorbed_id)
        .values(call_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.call_id == absorbed_id)
        .values(call_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    survivor_has_transcript = await session.scalar(
        select(Transcript.id).where(Transcript.call_id == survivor.id)
    )
    if survivor_has_transcript is None:
        await session.execute(
            update(Transcript)
            .where(Transcript.call_id == absorbed_id)
            .values(call_id=survivor.id)
            .execution_options(synchronize_session=False)
        )

    values = _absorbed_values(survivor, absorbed)
    # The conversation id is unique, so the absorbed row goes before the survivor takes it.
    await session.execute(
        delete(Call)
        .where(Call.id == absorbed_id)
        .execution_options(synchronize_session=False)
    )
    session.expunge(absorbed)
    for name, value in values.items():
        setattr(survivor, name, value)
    await session.flush()
    logger.info(
        "calls merged",
        call_id=str(survivor.id),
        merged_call_id=str(absorbed_id),
        call_sid=survivor.call_sid,
        conversation_id=survivor.conversation_id,
    )


def _absorbed_values(survivor: Call, absorbed: Call) -> dict[str, Any]:
    values: dict[str, Any] = {"conversation_id": absorbed.conversation_id}
    if survivor.team_id is None and absorbed.team_id is not None:
        values["team_id"] = absorbed.team_id
        values["agent_id"] = absorbed.agent_id
    for name in _FILLED_FIELDS:
        if getattr(survivor, name) is None and getattr(absorbed, name) is not None:
            values[name] = getattr(absorbed, name)
    if absorbed.status and statuses.advances(survivor.status, absorbed.status):
        values["status"] = absorbed.status
    for name in ("started_at", "answered_at"):
        theirs = getattr(absorbed, name)
        ours = getattr(survivor, name)
        if theirs is not None and (ours is None or theirs < ours):
            values[name] = theirs
    if not survivor.analysis and absorbed.analysis:
        values["analysis"] = absorbed.analysis
    values["dynamic_variables"] = {
        **survivor.dynamic_variables,
        **absorbed.dynamic_variables,
    }
    values["details"] = {**absorbed.details, **survivor.details}
    return values


async def attribute_to_agent(
    session: AsyncSession, call: Call, elevenlabs_agent_id: str | None
) -> None:
    """Attach `call` to the team of its ElevenLabs agent unless it already has a team."""
    if call.team_id is not None or not elevenlabs_agent_id:
        return
    row = (
        await session.execute(
            select(Agent.id, Agent.team_id).where(
                Agent.elevenlabs_agent_id == elevenlabs_agent_id
            )
        )
    ).first()
    if row is not None:
        call.agent_id, call.team_id = row
