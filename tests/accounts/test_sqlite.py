"""The accounts migration and queries on SQLite, the embedded development database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from renchi.accounts.roles import add_member, team_access
from renchi.accounts.sessions import SessionPolicy, resolve_session, start_session
from renchi.accounts.setup import NewAccount, create_first_super_admins
from renchi.accounts.users import authenticate_user, create_user
from renchi.calls.documents import CallFilters, CallPosition, list_call_summaries
from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import upgrade
from renchi.db.models import Call
from renchi.errors import Conflict
from renchi.teams.provisioning import create_team
from tests.support.accounts import PASSWORD

POLICY = SessionPolicy(lifetime=timedelta(hours=1), idle_timeout=timedelta(minutes=10))


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(
        Settings(var_dir=tmp_path), url=f"sqlite:///{tmp_path / 'renchi.db'}"
    )
    state = await upgrade(database)
    assert state.status == "current"
    try:
        yield database
    finally:
        await database.dispose()


async def test_migration_creates_tables(sqlite: Database) -> None:
    async with sqlite.engine.connect() as connection:
        tables = await connection.run_sync(
            lambda sync: set(inspect(sync).get_table_names())
        )

    assert {"users", "memberships", "sessions"} <= tables


async def test_login_session_and_role(sqlite: Database) -> None:
    async with sqlite.transaction() as session:
        team = await create_team(session, name="Acme Dental")
        user = await create_user(session, email="ana@example.com", password=PASSWORD)
        await add_member(session, team=team, user=user, role="admin")

    async with sqlite.transaction() as session:
        found = await authenticate_user(
            session, email="ana@example.com", password=PASSWORD
        )
        assert found is not None
        started = await start_session(session, user=found, policy=POLICY)
    async with sqlite.transaction() as session:
        active = await resolve_session(session, started.token, policy=POLICY)
        assert active is not None
        access = await team_access(
            session, user=active.user, slug=None, required="admin"
        )

    assert access.team.slug == "acme-dental"
    assert access.role == "admin"
    later = datetime.now(UTC) + timedelta(minutes=11)
    async with sqlite.transaction() as session:
        assert (
            await resolve_session(session, started.token, policy=POLICY, now=later)
            is None
        )


async def test_setup_once(sqlite: Database) -> None:
    account = NewAccount(email="root@example.com", password=PASSWORD)
    async with sqlite.transaction() as session:
        await create_first_super_admins(session, [account])

    with pytest.raises(Conflict):
        async with sqlite.transaction() as session:
            await create_first_super_admins(
                session, [NewAccount(email="two@example.com", password=PASSWORD)]
            )


async def test_call_pages(sqlite: Database) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    async with sqlite.transaction() as session:
        team = await create_team(session, name="Acme Dental")
        for index in range(5):
            session.add(
                Call(
                    team_id=team.id,
                    call_sid=f"CA{index}",
                    status="completed",
                    started_at=start + timedelta(minutes=index // 2),
                )
            )
        session.add(Call(team_id=team.id, call_sid="CA-none", status="completed"))

    listed: list[str] = []
    after = None
    async with sqlite.sessions() as session:
        while True:
            page = await list_call_summaries(
                session,
                team_id=team.id,
                limit=2,
                filters=CallFilters(status="completed"),
                after=after,
            )
            if not page:
                break
            listed += [call["call_sid"] for call in page]
            last = page[-1]
            started = last["started_at"]
            after = CallPosition(
                started_at=datetime.fromisoformat(started) if started else None,
                call_id=uuid.UUID(last["id"]),
            )

    assert listed[0] == "CA-none"
    assert sorted(listed) == sorted(["CA-none", "CA0", "CA1", "CA2", "CA3", "CA4"])
    assert listed[-1] in {"CA0", "CA1"}
