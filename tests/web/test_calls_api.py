from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from renchi.adapters.storage import Storage
from renchi.db.engine import Database
from renchi.db.models import Agent, Call, Recording, Team
from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, make_user
from tests.support.factories import document_of, team_with_number

NUMBER = "+14155550100"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AUDIO = bytes(range(256)) * 40  # 10,240 bytes


async def add_calls(
    database: Database, team: Team, count: int, **fields: Any
) -> list[uuid.UUID]:
    """Insert `count` calls one minute apart from START; return their ids, oldest first."""
    async with database.transaction() as session:
        agent = await session.scalar(select(Agent).where(Agent.team_id == team.id))
        assert agent is not None
        values = {
            "from_number": "+15550001111",
            "to_number": NUMBER,
            "status": "completed",
            "outcome": "success",
            **fields,
        }
        calls = [
            Call(
                team_id=team.id,
                agent_id=agent.id,
                call_sid=f"CA{uuid.uuid4().hex}",
                started_at=START + timedelta(minutes=index),
                **values,
            )
            for index in range(count)
        ]
        session.add_all(calls)
    return [call.id for call in calls]


async def all_pages(
    client: httpx.AsyncClient, token: str, params: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    pages = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/calls", params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["calls"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


@pytest.fixture
async def acme(database: Database) -> Team:
    return await team_with_number(database, number=NUMBER)


@pytest.fixture
async def member_token(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> str:
    await make_user(database, "ana@example.com", team=acme, role="member")
    return await login(client, "ana@example.com")


async def test_pages_cover_every_call_once(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    ids = await add_calls(database, acme, 7)

    pages = await all_pages(client, member_token, {"team": "acme-dental", "limit": 3})

    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [call["id"] for page in pages for call in page]
    assert listed == [str(call_id) for call_id in reversed(ids)]


async def test_pages_with_same_start_time(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    async with database.transaction() as session:
        for _ in range(5):
            session.add(
                Call(team_id=acme.id, call_sid=uuid.uuid4().hex, started_at=START)
            )
        session.add(Call(team_id=acme.id, call_sid="CA-no-start"))

    pages = await all_pages(client, member_token, {"team": "acme-dental", "limit": 2})

    listed = [call["id"] for page in pages for call in page]
    assert len(listed) == 6
    assert len(set(listed)) == 6
    assert pages[0][0]["call_sid"] == "CA-no-start"


async def test_filters_apply_across_pages(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    await add_calls(database, acme, 6)
    failed = await add_calls(database, acme, 5, outcome="failure")
    await add_calls(database, acme, 2, outcome="failure", status="busy")

    pages = await all_pages(
        client,
        member_token,
        {
            "team": "acme-dental",
            "limit": 2,
            "outcome": "failure",
            "status": "completed",
            "agent_id": "agent_acme",
            "phone_number": NUMBER,
        },
    )

    listed = [call["id"] for page in pages for call in page]
    assert sorted(listed) == sorted(str(call_id) for call_id in failed)
    assert all(call["outcome"] == "failure" for page in pages for call in page)


async def test_time_window_filter(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    ids = await add_calls(database, acme, 10)

    response = await client.get(
        "/api/calls",
        params={
            "team": "acme-dental",
            "from": (START + timedelta(minutes=3)).isoformat(),
            "to": "2026-12-01T11:08:00+02:00",
        },
        headers=bearer(member_token),
    )

    listed = [call["id"] for call in response.json()["calls"]]
    assert listed == [str(call_id) for call_id in reversed(ids[3:8])]


async def test_other_agent_filter_matches_nothing(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    await add_calls(database, acme, 2)

    response = await client.get(
        "/api/calls",
        params={"team": "acme-dental", "agent_id": "agent_other"},
        headers=bearer(member_token),
    )

    assert response.json() == {"calls": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"status": "done"}, "status"),
        ({"outcome": "great"}, "outcome"),
        ({"agent_id": "bad id"}, "agent_id"),
        ({"phone_number": "4155550100"}, "phone_number"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-12-01T10:00:00"}, "to"),
        ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"sort": "asc"}, "sort"),
        ({"team": ""}, "team"),
    ],
)
async def test_invalid_parameter_named(
    client: httpx.AsyncClient,
    member_token: str,
    params: dict[str, str],
    field: str,
) -> None:
    response = await client.get(
        "/api/calls",
        params={"team": "acme-dental", **params},
        headers=bearer(member_token),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    "params",
    [
        {"status": "x" * 5000},
        {"limit": "9" * 5000},
        {"from": "y" * 5000},
        {"agent_id": "bad id " * 1000},
        {"p" * 5000: "1"},
    ],
)
async def test_long_value_shortened_in_error(
    client: httpx.AsyncClient, member_token: str, params: dict[str, str]
) -> None:
    response = await client.get(
        "/api/calls",
        params={"team": "acme-dental", **params},
        headers=bearer(member_token),
    )

    assert response.status_code == 400
    assert len(response.json()["error"]) < 400
    assert len(response.json()["field"]) <= 80


async def test_long_call_id_shortened(
    client: httpx.AsyncClient, member_token: str
) -> None:
    response = await client.get(
        "/api/calls/" + "c" * 5000, headers=bearer(member_token)
    )

    assert response.status_code == 404
    assert len(response.json()["error"]) < 200


async def test_team_may_be_omitted_with_one_team(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    await add_calls(database, acme, 2)

    response = await client.get("/api/calls", headers=bearer(member_token))

    assert response.status_code == 200
    assert len(response.json()["calls"]) == 2


async def test_team_required_with_two_teams(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await make_user(database, "ana@example.com", team=acme, role="member")
    async with database.transaction() as session:
        from renchi.accounts.roles import add_member
        from renchi.accounts.users import get_user_by_email

        user = await get_user_by_email(session, "ana@example.com")
        assert user is not None
        await add_member(session, team=beta, user=user, role="owner")
    token = await login(client, "ana@example.com")

    response = await client.get("/api/calls", headers=bearer(token))

    assert response.status_code == 400
    assert response.json()["field"] == "team"
    assert "team" in response.json()["error"]


async def test_super_admin_must_name_team(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    await add_calls(database, acme, 1)
    await make_user(database, "root@example.com", super_admin=True)
    token = await login(client, "root@example.com")

    without = await client.get("/api/calls", headers=bearer(token))
    named = await client.get("/api/calls?team=acme-dental", headers=bearer(token))

    assert without.status_code == 400
    assert named.status_code == 200
    assert len(named.json()["calls"]) == 1


async def test_call_document_matches_cli(
    client: httpx.AsyncClient, database: Database, acme: Team, member_token: str
) -> None:
    [call_id] = await add_calls(database, acme, 1)

    response = await client.get(f"/api/calls/{call_id}", headers=bearer(member_token))

    assert response.status_code == 200
    assert response.json() == await document_of(database, call_id)


async def test_unknown_call_not_found(
    client: httpx.AsyncClient, member_token: str
) -> None:
    missing = await client.get(
        f"/api/calls/{uuid.uuid4()}", headers=bearer(member_token)
    )
    malformed = await client.get("/api/calls/not-a-uuid", headers=bearer(member_token))

    assert missing.status_code == 404
    assert malformed.status_code == 404


async def stored_recording(
    database: Database, storage: Storage, call_id: uuid.UUID, *, stored: bool = True
) -> uuid.UUID:
    recording_id = uuid.uuid4()
    key = f"recordings/{call_id}/{recording_id}.mp3"
    if stored:
        with storage.writer(key) as writer:
            writer.write(AUDIO)
            writer.commit()
    async with database.transaction() as session:
        session.add(
            Recording(
                id=recording_id,
                call_id=call_id,
                source="twilio",
                external_id=f"RE{recording_id.hex}",
                media_status="stored" if stored else "pending",
                storage_key=key if stored else None,
                content_type="audio/mpeg",
                size_bytes=len(AUDIO),
            )
        )
    return recording_id


@pytest.mark.parametrize(
    ("range_header", "expected"),
    [
        (None, (200, None, AUDIO)),
        ("bytes=0-99", (206, "bytes 0-99/10240", AUDIO[:100])),
        ("bytes=-500", (206, "bytes 9740-10239/10240", AUDIO[-500:])),
        ("bytes=10000-", (206, "bytes 10000-10239/10240", AUDIO[10000:])),
        ("bytes=10200-99999", (206, "bytes 10200-10239/10240", AUDIO[10200:])),
        ("bytes=0-1,5-9", (200, None, AUDIO)),
        ("items=0-1", (200, None, AUDIO)),
        ("bytes=" + "9" * 5000 + "-", (200, None, AUDIO)),
        ("bytes=-" + "9" * 5000, (200, None, AUDIO)),
    ],
)
async def test_recording_range(
    make_client: AppFactory,
    database: Database,
    acme: Team,
    range_header: str | None,
    expected: tuple[int, str | None, bytes],
) -> None:
    status, content_range, body = expected
    [call_id] = await add_calls(database, acme, 1)
    await make_user(database, "ana@example.com", team=acme, role="member")
    async with make_client() as (client, runtime):
        recording_id = await stored_recording(database, runtime.storage, call_id)
        token = await login(client, "ana@example.com")
        headers = bearer(token)
        if range_header:
            headers["range"] = range_header
        response = await client.get(
            f"/api/calls/{call_id}/recordings/{recording_id}", headers=headers
        )

    assert response.status_code == status
    assert response.content == body
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(body))
    assert response.headers.get("content-range") == content_range


async def test_recording_range_unsatisfiable(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    [call_id] = await add_calls(database, acme, 1)
    await make_user(database, "ana@example.com", team=acme, role="member")
    async with make_client() as (client, runtime):
        recording_id = await stored_recording(database, runtime.storage, call_id)
        token = await login(client, "ana@example.com")
        response = await client.get(
            f"/api/calls/{call_id}/recordings/{recording_id}",
            headers={**bearer(token), "range": "bytes=20000-"},
        )

    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10240"
    assert response.json()["code"] == "RANGE_NOT_SATISFIABLE"


async def test_recording_without_media_not_found(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    [call_id] = await add_calls(database, acme, 1)
    await make_user(database, "ana@example.com", team=acme, role="member")
    async with make_client() as (client, runtime):
        pending = await stored_recording(
            database, runtime.storage, call_id, stored=False
        )
        token = await login(client, "ana@example.com")
        response = await client.get(
            f"/api/calls/{call_id}/recordings/{pending}", headers=bearer(token)
        )
        wrong_call = await client.get(
            f"/api/calls/{uuid.uuid4()}/recordings/{pending}", headers=bearer(token)
        )

    assert response.status_code == 404
    assert "no stored audio" in response.json()["error"]
    assert wrong_call.status_code == 404
