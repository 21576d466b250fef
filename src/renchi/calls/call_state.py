"""A call's status columns, read and written without the ORM.

`CallState` is a plain snapshot of the columns a status callback changes,
read and written with prebuilt Core statements. Status callbacks are the most
frequent webhook, and skipping the ORM's unit of work there cuts their cost
markedly (bench/webhooks.py measures the endpoint). `CallFields` is what the
shared update rules need, which both `CallState` and the ORM `Call` provide.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import Call
from renchi.db.models.base import utcnow
from renchi.db.upsert import insert_for
from renchi.webhooks.intake import FinalUpdate


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
    result = await session.execute(
        insert_for(session, Call)
        .values(id=uuid.uuid4(), call_sid=call_sid, **defaults)
        .on_conflict_do_nothing(index_elements=["call_sid"])
    )
    created = result.rowcount == 1  # type: ignore[attr-defined]
    call = await session.scalar(query.execution_options(populate_existing=True))
    assert call is not None, "A call row exists after its insert."
    return call, created


@dataclass
class CallState:
    """A snapshot of a call's status columns, saved back with only what changed."""

    id: uuid.UUID
    call_sid: str
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
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._loaded = self._values()

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _STATE_COLUMNS}

    def changes(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in self._values().items()
            if value != self._loaded[name]
        }


_STATE_COLUMNS = tuple(
    item.name for item in fields(CallState) if not item.name.startswith("_")
)
_calls: Table = Call.__table__  # type: ignore[assignment]
_SELECT_STATE = (
    select(*(_calls.c[name] for name in _STATE_COLUMNS))
    .where(_calls.c.call_sid == bindparam("call_sid"))
    .with_for_update()
)


async def lock_call_state(
    session: AsyncSession, call_sid: str, *, defaults: dict[str, Any]
) -> tuple[CallState, bool]:
    """Return the status columns of the call with `call_sid`, locked, creating it from `defaults`."""
    connection = await session.connection()
    row = (await connection.execute(_SELECT_STATE, {"call_sid": call_sid})).first()
    created = False
    if row is None:
        result = await connection.execute(
            insert_for(session, Call)
            .values(id=uuid.uuid4(), call_sid=call_sid, **defaults)
            .on_conflict_do_nothing(index_elements=["call_sid"])
            .returning(_calls.c.id)
        )
        created = result.first() is not None
        row = (await connection.execute(_SELECT_STATE, {"call_sid": call_sid})).one()
    return CallState(**row._mapping), created


def call_state_update(state: CallState) -> FinalUpdate | None:
    """Return the UPDATE that writes what changed in `state`, or None when nothing did."""
    changes = state.changes()
    if not changes:
        return None
    changes["updated_at"] = utcnow()
    parameters = {f"calls_{name}": value for name, value in changes.items()}
    parameters["calls_row_id"] = state.id
    return FinalUpdate(_update_of(frozenset(changes)), parameters)


@functools.cache
def _update_of(columns: frozenset[str]) -> Update:
    # One statement object per set of columns lets SQLAlchemy reuse its
    # compiled form without rebuilding the statement on every callback.
    return (
        update(_calls)
        .where(_calls.c.id == bindparam("calls_row_id", type_=_calls.c.id.type))
        .values(
            {
                name: bindparam(f"calls_{name}", type_=_calls.c[name].type)
                for name in sorted(columns)
            }
        )
    )
