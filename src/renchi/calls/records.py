"""Finding or creating a call row under a lock, whichever provider's event comes first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls.routing import Route
from renchi.db.models import Call
from renchi.db.upsert import insert_for


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


def attribute(call: Call, route: Route | None) -> None:
    """Attach `call` to the team and agent of `route` unless it already has a team."""
    if route is None or call.team_id is not None:
        return
    call.team_id = route.team_id
    call.agent_id = route.agent_id
    call.mode = call.mode or route.mode


def fill_earliest(call: Call, field: str, moment: datetime | None) -> None:
    """Set a timestamp field of `call` to `moment` when it is empty or later."""
    if moment is None:
        return
    current = getattr(call, field)
    if current is None or moment < current:
        setattr(call, field, moment)
