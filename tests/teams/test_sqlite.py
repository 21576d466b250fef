"""Team settings, routes and legal holds on SQLite, the embedded development database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from renchi.calls.legal_holds import place_legal_hold, release_legal_hold
from renchi.calls.retention import recordings_past_retention
from renchi.calls.routing import lookup_route
from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import alembic_config, migration_state, upgrade
from renchi.db.models import Call, Recording
from renchi.errors import Conflict
from renchi.teams.settings import get_team_settings, update_settings
from tests.support.factories import team_with_number

NOW = datetime(2026, 12, 10, tzinfo=UTC)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(
        Settings(var_dir=tmp_path), url=f"sqlite:///{tmp_path / 'renchi.db'}"
    )
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def table_names(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: set(inspect(sync).get_table_names())
        )


async def test_migration_down_and_up(sqlite: Database) -> None:
    created = await table_names(sqlite)

    def downgrade(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0003")

    async with sqlite.engine.begin() as connection:
        await connection.run_sync(downgrade)
    after_downgrade = await table_names(sqlite)
    state = await upgrade(sqlite)

    new_tables = {"team_settings", "team_settings_changes", "legal_holds"}
    assert new_tables <= created
    assert not new_tables & after_downgrade
    assert state.status == "current"
    assert (await migration_state(sqlite)).current == "0004"


async def test_settings_and_fallback_route(sqlite: Database) -> None:
    team = await team_with_number(sqlite, number="+14155550100")
    async with sqlite.transaction() as session:
        await update_settings(
            session,
            team,
            {"fallback_number": "+4930123456", "recording_retention_days": 14},
            None,
            default_retention_days=90,
        )
    async with sqlite.transaction() as session:
        await update_settings(
            session,
            team,
            {"summary_recipients": ["ops@example.com"]},
            None,
            default_retention_days=90,
        )

    async with sqlite.sessions() as session:
        settings = await get_team_settings(session, team.id, default_retention_days=90)
        route = await lookup_route(session, "+14155550100")

    assert settings.fallback_number == "+4930123456"
    assert settings.recording_retention_days == 14
    assert settings.summary_recipients == ("ops@example.com",)
    assert route is not None
    assert route.fallback_number == "+4930123456"


async def test_legal_hold_and_retention(sqlite: Database) -> None:
    team = await team_with_number(sqlite)
    call_id = uuid.uuid4()
    async with sqlite.transaction() as session:
        session.add(Call(id=call_id, team_id=team.id, call_sid="CA1"))
        await session.flush()
        session.add(
            Recording(
                call_id=call_id,
                source="twilio",
                external_id="RE1",
                media_status="stored",
                created_at=NOW - timedelta(days=100),
            )
        )
    async with sqlite.transaction() as session:
        await place_legal_hold(session, call_id=call_id, reason="Case", actor=None)

    with pytest.raises(Conflict):
        async with sqlite.transaction() as session:
            await place_legal_hold(session, call_id=call_id, reason="Again", actor=None)
    async with sqlite.sessions() as session:
        while_held = await recordings_past_retention(
            session, now=NOW, default_retention_days=90
        )
    async with sqlite.transaction() as session:
        await release_legal_hold(session, call_id=call_id, actor=None)
    async with sqlite.sessions() as session:
        released = await recordings_past_retention(
            session, now=NOW, default_retention_days=90
        )

    assert while_held == []
    assert [recording.external_id for recording in released] == ["RE1"]
