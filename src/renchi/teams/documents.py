"""The JSON document of a team, shared by `renchi admin show-team` and the teams API."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import Team
from renchi.teams.provisioning import list_phone_numbers
from renchi.teams.settings import get_team_settings


async def team_document(
    session: AsyncSession, team: Team, *, default_retention_days: int
) -> dict[str, Any]:
    """Return the team, its settings and its phone numbers."""
    settings = await get_team_settings(
        session, team.id, default_retention_days=default_retention_days
    )
    return {
        "id": str(team.id),
        "slug": team.slug,
        "name": team.name,
        "created_at": team.created_at.isoformat(),
        "settings": settings.document(),
        "phone_numbers": await list_phone_numbers(session, team.id),
    }
