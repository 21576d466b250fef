"""Rows that tests need, created through the same code as the admin commands."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from renchi.calls.documents import call_document
from renchi.db.engine import Database
from renchi.db.models import Call, Team
from renchi.teams.provisioning import assign_phone_number, create_team


async def team_with_number(
    database: Database,
    *,
    name: str = "Acme Dental",
    number: str = "+14155550100",
    agent_id: str = "agent_acme",
    mode: str = "register_call",
) -> Team:
    async with database.transaction() as session:
        team = await create_team(session, name=name)
        await assign_phone_number(
            session, team=team, number=number, elevenlabs_agent_id=agent_id, mode=mode
        )
    return team


async def call_by_sid(database: Database, call_sid: str) -> Call | None:
    async with database.sessions() as session:
        return await session.scalar(select(Call).where(Call.call_sid == call_sid))


async def document_of(database: Database, call_id: uuid.UUID) -> dict[str, Any]:
    async with database.sessions() as session:
        document = await call_document(session, call_id)
    assert document is not None
    return document
