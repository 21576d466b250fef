"""The dynamic variables an agent's prompt sees, the same in both modes.

`register_call` sends them with the call registration; `native` returns them
from the personalization webhook. All values are strings, and every variable
is present, empty where unknown.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import Call

VARIABLE_NAMES = (
    "team_name",
    "caller_number",
    "called_number",
    "caller_known",
    "caller_call_count",
    "last_call_at",
    "last_call_summary",
)


def empty_variables(
    *, team_name: str = "", caller_number: str = "", called_number: str = ""
) -> dict[str, str]:
    """Return the variables of a caller with no known history."""
    return {
        "team_name": team_name,
        "caller_number": caller_number,
        "called_number": called_number,
        "caller_known": "false",
        "caller_call_count": "0",
        "last_call_at": "",
        "last_call_summary": "",
    }


async def compute_variables(
    session: AsyncSession,
    *,
    team_id: uuid.UUID | None,
    team_name: str,
    caller_number: str,
    called_number: str,
    exclude_call_sid: str | None = None,
) -> dict[str, str]:
    """Compute the variables from the caller's earlier calls to the same team.

    Both queries use the index on (team_id, from_number, started_at), because
    this runs while the phone rings.
    """
    variables = empty_variables(
        team_name=team_name, caller_number=caller_number, called_number=called_number
    )
    if team_id is None or not caller_number:
        return variables

    earlier = (Call.team_id == team_id) & (Call.from_number == caller_number)
    if exclude_call_sid:
        earlier &= (Call.call_sid != exclude_call_sid) | Call.call_sid.is_(None)

    count = (
        await session.scalar(select(func.count()).select_from(Call).where(earlier)) or 0
    )
    if count == 0:
        return variables

    last = (
        await session.execute(
            select(Call.started_at, Call.summary)
            .where(earlier, Call.started_at.is_not(None))
            .order_by(Call.started_at.desc())
            .limit(1)
        )
    ).first()
    variables["caller_known"] = "true"
    variables["caller_call_count"] = str(count)
    if last is not None:
        variables["last_call_at"] = last.started_at.isoformat()
        variables["last_call_summary"] = last.summary or ""
    return variables
