"""Who may call each protected endpoint: a table over roles and endpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from renchi.accounts.roles import team_access
from renchi.calls.legal_holds import place_legal_hold
from renchi.db.engine import Database
from renchi.db.models import Call, Recording, User
from renchi.errors import Forbidden, NotFound
from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, make_user
from tests.support.factories import team_with_number

PRINCIPALS = ("anonymous", "member", "admin", "owner", "other_owner", "super_admin")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    # Expected status per principal, in the order of PRINCIPALS.
    statuses: tuple[int, int, int, int, int, int]
    body: dict[str, Any] | None = None


ENDPOINTS = {
    "me": Endpoint("GET", "/api/auth/me", (401, 200, 200, 200, 200, 200)),
    "logout": Endpoint("POST", "/api/auth/logout", (401, 204, 204, 204, 204, 204)),
    "calls": Endpoint(
        "GET", "/api/calls?team=acme-dental", (401, 200, 200, 200, 404, 200)
    ),
    "call": Endpoint("GET", "/api/calls/{call}", (401, 200, 200, 200, 404, 200)),
    "recording": Endpoint(
        "GET",
        "/api/calls/{call}/recordings/{recording}",
        (401, 200, 200, 200, 404, 200),
    ),
    "debug_db": Endpoint("GET", "/api/debug/db", (401, 403, 403, 403, 403, 200)),
    "team": Endpoint("GET", "/api/teams/acme-dental", (401, 200, 200, 200, 404, 200)),
    "settings": Endpoint(
        "PATCH",
        "/api/teams/acme-dental/settings",
        (401, 403, 200, 200, 404, 200),
        body={"timezone": "Europe/Berlin"},
    ),
    "numbers": Endpoint(
        "GET", "/api/teams/acme-dental/phone-numbers", (401, 200, 200, 200, 404, 200)
    ),
    "add_number": Endpoint(
        "POST",
        "/api/teams/acme-dental/phone-numbers",
        (401, 403, 201, 201, 404, 201),
        body={"number": "+14155550111", "agent_id": "agent_acme"},
    ),
    "release_number": Endpoint(
        "DELETE",
        "/api/teams/acme-dental/phone-numbers/%2B14155550100",
        (401, 403, 204, 204, 404, 204),
    ),
    "place_hold": Endpoint(
        "POST",
        "/api/calls/{call}/legal-hold",
        (401, 403, 201, 201, 404, 201),
        body={"reason": "Litigation hold, case 2026-114"},
    ),
    "release_hold": Endpoint(
        "DELETE", "/api/calls/{call}/legal-hold", (401, 403, 200, 200, 404, 200)
    ),
}

CASES = [
    pytest.param(name, principal, endpoint.statuses[index], id=f"{name}-{principal}")
    for name, endpoint in ENDPOINTS.items()
    for index, principal in enumerate(PRINCIPALS)
]


@pytest.mark.parametrize(("endpoint_name", "principal", "expected"), CASES)
async def test_role_matrix(
    make_client: AppFactory,
    database: Database,
    endpoint_name: str,
    principal: str,
    expected: int,
) -> None:
    acme = await team_with_number(database)
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await make_user(database, "member@example.com", team=acme, role="member")
    await make_user(database, "admin@example.com", team=acme, role="admin")
    await make_user(database, "owner@example.com", team=acme, role="owner")
    await make_user(database, "other_owner@example.com", team=beta, role="owner")
    await make_user(database, "super_admin@example.com", super_admin=True)
    call_id = uuid.uuid4()
    recording_id = uuid.uuid4()

    async with make_client(debug_endpoints=True) as (client, runtime):
        key = f"recordings/{call_id}/{recording_id}.mp3"
        with runtime.storage.writer(key) as writer:
            writer.write(b"ID3audio")
            writer.commit()
        async with database.transaction() as session:
            session.add(Call(id=call_id, team_id=acme.id, call_sid="CA1"))
            await session.flush()
            session.add(
                Recording(
                    id=recording_id,
                    call_id=call_id,
                    source="twilio",
                    external_id="RE1",
                    media_status="stored",
                    storage_key=key,
                )
            )
        if endpoint_name == "release_hold":
            async with database.transaction() as session:
                await place_legal_hold(
                    session, call_id=call_id, reason="Audit", actor=None
                )
        headers = {}
        if principal != "anonymous":
            headers = bearer(await login(client, f"{principal}@example.com"))
        endpoint = ENDPOINTS[endpoint_name]
        path = endpoint.path.format(call=call_id, recording=recording_id)
        response = await client.request(
            endpoint.method, path, headers=headers, json=endpoint.body
        )

    assert response.status_code == expected, response.text
    if expected >= 400:
        assert (
            response.json()["code"]
            == {
                401: "UNAUTHORIZED",
                403: "FORBIDDEN",
                404: "NOT_FOUND",
            }[expected]
        )


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        ("member", "member", True),
        ("member", "admin", False),
        ("member", "owner", False),
        ("admin", "member", True),
        ("admin", "admin", True),
        ("admin", "owner", False),
        ("owner", "member", True),
        ("owner", "admin", True),
        ("owner", "owner", True),
    ],
)
async def test_role_order(
    database: Database, role: str, required: str, allowed: bool
) -> None:
    acme = await team_with_number(database)
    await make_user(database, "ana@example.com", team=acme, role=role)

    async with database.sessions() as session:
        user = await session.scalar(select(User))
        assert user is not None
        if allowed:
            access = await team_access(
                session, user=user, slug="acme-dental", required=required
            )
            assert access.role == role
        else:
            with pytest.raises(Forbidden):
                await team_access(
                    session, user=user, slug="acme-dental", required=required
                )


async def test_super_admin_passes_owner_check(database: Database) -> None:
    await team_with_number(database)
    await make_user(database, "root@example.com", super_admin=True)

    async with database.sessions() as session:
        user = await session.scalar(select(User))
        assert user is not None
        access = await team_access(
            session, user=user, slug="acme-dental", required="owner"
        )

    assert access.via_super_admin


async def test_other_team_is_not_found(database: Database) -> None:
    await team_with_number(database)
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await make_user(database, "bo@example.com", team=beta, role="owner")

    async with database.sessions() as session:
        user = await session.scalar(select(User))
        assert user is not None
        with pytest.raises(NotFound):
            await team_access(session, user=user, slug="acme-dental", required="member")
        with pytest.raises(NotFound):
            await team_access(
                session, user=user, slug="no-such-team", required="member"
            )
