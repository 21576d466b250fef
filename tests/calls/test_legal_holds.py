"""Legal holds on calls and the query that selects recordings past retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from renchi.calls.legal_holds import (
    MAX_REASON_LENGTH,
    active_legal_hold,
    legal_hold_history,
    place_legal_hold,
    release_legal_hold,
)
from renchi.calls.retention import recordings_past_retention
from renchi.db.engine import Database
from renchi.db.models import Call, Recording, Team, User
from renchi.errors import Conflict, InvalidInput, NotFound
from renchi.teams.settings import update_settings
from tests.support.accounts import make_user
from tests.support.factories import team_with_number

NOW = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)
DEFAULT_DAYS = 90


async def add_call(database: Database, team: Team | None) -> uuid.UUID:
    call_id = uuid.uuid4()
    async with database.transaction() as session:
        session.add(
            Call(
                id=call_id,
                team_id=team.id if team else None,
                call_sid=f"CA{call_id.hex}",
            )
        )
    return call_id


async def add_recording(
    database: Database,
    call_id: uuid.UUID,
    *,
    age_days: float,
    media_status: str = "stored",
) -> uuid.UUID:
    recording_id = uuid.uuid4()
    async with database.transaction() as session:
        session.add(
            Recording(
                id=recording_id,
                call_id=call_id,
                source="twilio",
                external_id=f"RE{recording_id.hex}",
                media_status=media_status,
                created_at=NOW - timedelta(days=age_days),
            )
        )
    return recording_id


async def place(
    database: Database, call_id: uuid.UUID, reason: object, actor: User | None
) -> dict[str, object]:
    async with database.transaction() as session:
        return await place_legal_hold(
            session, call_id=call_id, reason=reason, actor=actor
        )


async def release(
    database: Database, call_id: uuid.UUID, actor: User | None
) -> dict[str, object]:
    async with database.transaction() as session:
        return await release_legal_hold(session, call_id=call_id, actor=actor)


async def expired(database: Database, *, limit: int = 500) -> list[uuid.UUID]:
    async with database.sessions() as session:
        recordings = await recordings_past_retention(
            session, now=NOW, default_retention_days=DEFAULT_DAYS, limit=limit
        )
    return [recording.id for recording in recordings]


@pytest.fixture
async def acme(database: Database) -> Team:
    return await team_with_number(database)


async def test_hold_set_and_released(database: Database, acme: Team) -> None:
    ana = await make_user(database, "ana@example.com", team=acme, role="owner")
    bo = await make_user(database, "bo@example.com", team=acme, role="admin")
    call_id = await add_call(database, acme)

    placed = await place(database, call_id, "  Case 2026-114  ", ana)
    async with database.sessions() as session:
        active = await active_legal_hold(session, call_id)
    released = await release(database, call_id, bo)
    async with database.sessions() as session:
        after = await active_legal_hold(session, call_id)

    assert placed["reason"] == "Case 2026-114"
    assert placed["active"] is True
    assert placed["set_by"] == {"id": str(ana.id), "email": "ana@example.com"}
    assert placed["released_by"] is None
    assert placed["released_at"] is None
    assert active == placed
    assert released["active"] is False
    assert released["released_by"] == {"id": str(bo.id), "email": "bo@example.com"}
    assert released["released_at"] is not None
    assert released["set_at"] == placed["set_at"]
    assert after is None


async def test_history_keeps_released_holds(database: Database, acme: Team) -> None:
    call_id = await add_call(database, acme)
    await place(database, call_id, "First request", None)
    await release(database, call_id, None)
    await place(database, call_id, "Second request", None)

    async with database.sessions() as session:
        history = await legal_hold_history(session, call_id)

    assert [hold["reason"] for hold in history] == ["First request", "Second request"]
    assert [hold["active"] for hold in history] == [False, True]
    assert history[0]["set_by"] is None
    assert history[0]["released_by"] is None


async def test_second_hold_conflicts(database: Database, acme: Team) -> None:
    call_id = await add_call(database, acme)
    await place(database, call_id, "First request", None)

    with pytest.raises(Conflict):
        await place(database, call_id, "Another reason", None)

    async with database.sessions() as session:
        history = await legal_hold_history(session, call_id)
    assert [hold["reason"] for hold in history] == ["First request"]


async def test_release_without_hold(database: Database, acme: Team) -> None:
    call_id = await add_call(database, acme)

    with pytest.raises(NotFound):
        await release(database, call_id, None)


async def test_hold_on_unknown_call(database: Database) -> None:
    with pytest.raises(NotFound):
        await place(database, uuid.uuid4(), "Case", None)


@pytest.mark.parametrize(
    "reason", ["", "   ", None, 42, ["case"], "x" * (MAX_REASON_LENGTH + 1)]
)
async def test_invalid_reason(database: Database, acme: Team, reason: object) -> None:
    call_id = await add_call(database, acme)

    with pytest.raises(InvalidInput) as raised:
        await place(database, call_id, reason, None)

    assert raised.value.field == "reason"


async def test_retention_per_team(database: Database, acme: Team) -> None:
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    async with database.transaction() as session:
        await update_settings(
            session,
            acme,
            {"recording_retention_days": 30},
            None,
            default_retention_days=DEFAULT_DAYS,
        )
    acme_call = await add_call(database, acme)
    beta_call = await add_call(database, beta)
    loose_call = await add_call(database, None)
    acme_old = await add_recording(database, acme_call, age_days=31)
    await add_recording(database, acme_call, age_days=29)
    beta_old = await add_recording(database, beta_call, age_days=91)
    await add_recording(database, beta_call, age_days=31)
    loose_old = await add_recording(database, loose_call, age_days=120)
    await add_recording(database, loose_call, age_days=60)
    await add_recording(database, acme_call, age_days=400, media_status="deleted")
    await add_recording(database, acme_call, age_days=400, media_status="pending")

    assert await expired(database) == [loose_old, beta_old, acme_old]
    assert await expired(database, limit=1) == [loose_old]


async def test_hold_keeps_recordings(database: Database, acme: Team) -> None:
    held_call = await add_call(database, acme)
    other_call = await add_call(database, acme)
    held = await add_recording(database, held_call, age_days=200)
    other = await add_recording(database, other_call, age_days=200)

    await place(database, held_call, "Regulator request", None)
    while_held = await expired(database)
    await release(database, held_call, None)
    after_release = await expired(database)

    assert while_held == [other]
    assert set(after_release) == {held, other}


async def test_released_history_does_not_protect(
    database: Database, acme: Team
) -> None:
    call_id = await add_call(database, acme)
    recording = await add_recording(database, call_id, age_days=200)
    await place(database, call_id, "First", None)
    await release(database, call_id, None)
    await place(database, call_id, "Second", None)

    assert await expired(database) == []

    await release(database, call_id, None)

    assert await expired(database) == [recording]
