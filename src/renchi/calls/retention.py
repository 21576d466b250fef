"""The selection of stored recordings that are past retention and free to delete.

A recording expires `recording_retention_days` after Renchi first recorded it
(`recordings.created_at`), by the setting of its call's team, or by
RENCHI_RECORDING_RETENTION_DAYS for a call without a team. A recording of a
call under an active legal hold never expires. Only recordings whose media is
stored count, since the others have nothing to delete.

The teams are grouped by retention, so the query has one condition per
distinct value rather than one per team, and runs the same on PostgreSQL and
SQLite.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import Call, LegalHold, Recording
from renchi.teams.settings import TeamSettings, load_all_team_settings


def _past_retention(
    settings_by_team: Mapping[uuid.UUID, TeamSettings],
    *,
    default_retention_days: int,
    now: datetime,
) -> ColumnElement[bool]:
    teams_by_days: dict[int, list[uuid.UUID]] = defaultdict(list)
    for team_id, settings in settings_by_team.items():
        teams_by_days[settings.recording_retention_days].append(team_id)

    conditions = [
        and_(
            Call.team_id.in_(team_ids),
            Recording.created_at < now - timedelta(days=days),
        )
        for days, team_ids in sorted(teams_by_days.items())
    ]
    conditions.append(
        and_(
            Call.team_id.is_(None),
            Recording.created_at < now - timedelta(days=default_retention_days),
        )
    )
    return or_(false(), *conditions)


def expired_recordings_query(
    settings_by_team: Mapping[uuid.UUID, TeamSettings],
    *,
    default_retention_days: int,
    now: datetime,
) -> Select[Recording]:
    """Return the query of stored recordings past retention and under no legal hold.

    `settings_by_team` must hold every team, as `load_all_team_settings`
    returns them: a team missing from it has none of its recordings selected.
    """
    held = exists().where(
        LegalHold.call_id == Recording.call_id, LegalHold.released_at.is_(None)
    )
    return (
        select(Recording)
        .join(Call, Call.id == Recording.call_id)
        .where(
            Recording.media_status == "stored",
            ~held,
            _past_retention(
                settings_by_team,
                default_retention_days=default_retention_days,
                now=now,
            ),
        )
        .order_by(Recording.created_at, Recording.id)
    )


async def recordings_past_retention(
    session: AsyncSession,
    *,
    now: datetime,
    default_retention_days: int,
    limit: int = 500,
) -> list[Recording]:
    """Return up to `limit` stored recordings that cleanup may delete, oldest first."""
    settings_by_team = await load_all_team_settings(
        session, default_retention_days=default_retention_days
    )
    query = expired_recordings_query(
        settings_by_team, default_retention_days=default_retention_days, now=now
    ).limit(limit)
    return list((await session.scalars(query)).all())
