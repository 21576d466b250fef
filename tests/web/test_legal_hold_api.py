"""Placing and releasing legal holds through `/api/calls/{id}/legal-hold`."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from renchi.db.engine import Database
from renchi.db.models import Call, Team
from tests.support.accounts import bearer, login, make_user
from tests.support.factories import team_with_number


@pytest.fixture
async def acme(database: Database) -> Team:
    team = await team_with_number(database)
    await make_user(database, "owner@example.com", team=team, role="owner")
    await make_user(database, "admin@example.com", team=team, role="admin")
    return team


async def add_call(database: Database, team: Team | None) -> uuid.UUID:
    call_id = uuid.uuid4()
    async with database.transaction() as session:
        session.add(Call(id=call_id, team_id=team.id if team else None, call_sid="CA1"))
    return call_id


def hold_path(call_id: uuid.UUID) -> str:
    return f"/api/calls/{call_id}/legal-hold"


async def test_hold_shown_in_call_document(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    call_id = await add_call(database, acme)
    owner = bearer(await login(client, "owner@example.com"))
    admin = bearer(await login(client, "admin@example.com"))

    placed = await client.post(
        hold_path(call_id), json={"reason": "Case 2026-114"}, headers=owner
    )
    while_held = await client.get(f"/api/calls/{call_id}", headers=admin)
    released = await client.delete(hold_path(call_id), headers=admin)
    after = await client.get(f"/api/calls/{call_id}", headers=admin)

    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["call_id"] == str(call_id)
    assert hold["reason"] == "Case 2026-114"
    assert hold["active"] is True
    assert hold["set_by"]["email"] == "owner@example.com"
    assert while_held.json()["legal_hold"] == hold
    assert released.status_code == 200, released.text
    assert released.json()["active"] is False
    assert released.json()["released_by"]["email"] == "admin@example.com"
    assert released.json()["released_at"] is not None
    assert after.json()["legal_hold"] is None


async def test_second_hold_is_conflict(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    call_id = await add_call(database, acme)
    owner = bearer(await login(client, "owner@example.com"))
    await client.post(hold_path(call_id), json={"reason": "First"}, headers=owner)

    response = await client.post(
        hold_path(call_id), json={"reason": "Second"}, headers=owner
    )

    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"


async def test_release_without_hold_is_404(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    call_id = await add_call(database, acme)
    owner = bearer(await login(client, "owner@example.com"))

    response = await client.delete(hold_path(call_id), headers=owner)

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "  "}, "reason"),
        ({"reason": 7}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ({"reason": "Case", "until": "2027-01-01"}, "until"),
    ],
)
async def test_invalid_hold_request(
    client: httpx.AsyncClient,
    database: Database,
    acme: Team,
    body: dict[str, object],
    field: str,
) -> None:
    call_id = await add_call(database, acme)
    owner = bearer(await login(client, "owner@example.com"))

    response = await client.post(hold_path(call_id), json=body, headers=owner)

    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_unknown_call_is_404(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    owner = bearer(await login(client, "owner@example.com"))

    unknown = await client.post(
        hold_path(uuid.uuid4()), json={"reason": "Case"}, headers=owner
    )
    malformed = await client.post(
        "/api/calls/not-a-uuid/legal-hold", json={"reason": "Case"}, headers=owner
    )

    assert unknown.status_code == 404
    assert malformed.status_code == 404


async def test_call_without_team_needs_super_admin(
    client: httpx.AsyncClient, database: Database, acme: Team
) -> None:
    call_id = await add_call(database, None)
    await make_user(database, "root@example.com", super_admin=True)
    owner = bearer(await login(client, "owner@example.com"))
    root = bearer(await login(client, "root@example.com"))

    by_owner = await client.post(
        hold_path(call_id), json={"reason": "Case"}, headers=owner
    )
    by_root = await client.post(
        hold_path(call_id), json={"reason": "Case"}, headers=root
    )

    assert by_owner.status_code == 404
    assert by_root.status_code == 201
    assert by_root.json()["set_by"]["email"] == "root@example.com"


@pytest.mark.parametrize(
    ("reason", "stored"),
    [("case\u0000 7", "case 7"), ("case \ud800 7", "case ? 7")],
)
async def test_odd_characters_in_reason_are_cleaned(
    client: httpx.AsyncClient, database: Database, acme: Team, reason: str, stored: str
) -> None:
    call_id = await add_call(database, acme)
    owner = bearer(await login(client, "owner@example.com"))
    body = json.dumps({"reason": reason}).encode()

    response = await client.post(
        hold_path(call_id),
        content=body,
        headers={**owner, "content-type": "application/json"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["reason"] == stored
