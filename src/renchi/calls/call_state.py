"""A call's status columns, read and written without the ORM.

`CallState` is a plain snapshot of the columns a status callback changes,
read and written with prebuilt Core statements. Status callbacks are the most
frequent webhook, and skipping the ORM's unit of work there cuts their cost
markedly (bench/webhooks.py measures the endpoint). `CallState` provides the
`records.CallFields` that the shared update rules need, as the ORM `Call` does.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls.records import insert_call_unless_present
from renchi.db.models import Call
from renchi.db.models.base import utcnow
from renchi.webhooks.intake import FinalUpdate


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
        created = await insert_call_unless_present(
            session, {"call_sid": call_sid, **defaults}, key="call_sid"
        )
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
