from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from renchi.db.engine import Database
from renchi.db.models import UserSession
from renchi.db.models.base import utcnow
from tests.conftest import AppFactory
from tests.support.accounts import PASSWORD, bearer, login, make_user
from tests.support.factories import team_with_number
from tests.support.twilio import PUBLIC_URL

ME = "/api/auth/me"


async def test_login_sets_secure_cookie(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")

    response = await client.post(
        "/api/auth/login", json={"email": "Ana@Example.com ", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert "token" not in response.json()
    assert response.json()["user"]["email"] == "ana@example.com"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("renchi_session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    me = await client.get(ME, headers={"cookie": f"renchi_session={token}"})
    assert me.status_code == 200
    assert me.json()["session"]["authenticated_with"] == "cookie"


async def test_session_token_stored_only_as_hash(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    token = await login(client, "ana@example.com")

    async with database.sessions() as session:
        stored = (await session.scalars(select(UserSession.token_hash))).all()

    assert len(stored) == 1
    assert token not in stored[0]
    assert len(stored[0]) == 64


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ana@example.com", "wrong password here"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ],
)
async def test_login_failure_is_generic(
    client: httpx.AsyncClient, database: Database, email: str, password: str
) -> None:
    await make_user(database, "ana@example.com")

    response = await client.post(
        "/api/auth/login", json={"email": email, "password": password}
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": "Invalid email or password.",
        "code": "UNAUTHORIZED",
    }
    assert "set-cookie" not in response.headers


async def test_login_body_validated(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/auth/login", json={"email": "a@example.com"})
    not_json = await client.post("/api/auth/login", content=b"{")

    assert missing.status_code == 400
    assert missing.json()["field"] == "password"
    assert not_json.status_code == 400
    assert not_json.json()["code"] == "VALIDATION_ERROR"


async def test_me_lists_teams_and_roles(
    client: httpx.AsyncClient, database: Database
) -> None:
    acme = await team_with_number(database, name="Acme Dental")
    other = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await make_user(database, "ana@example.com", team=acme, role="admin")
    await make_user(database, "bo@example.com", team=other, role="member")
    token = await login(client, "ana@example.com")

    response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "ana@example.com"
    assert body["user"]["super_admin"] is False
    assert body["teams"] == [
        {"slug": "acme-dental", "name": "Acme Dental", "role": "admin"}
    ]
    assert body["session"]["authenticated_with"] == "bearer"


async def test_logout_ends_session(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    token = await login(client, "ana@example.com")

    logout = await client.post("/api/auth/logout", headers=bearer(token))
    after = await client.get(ME, headers=bearer(token))

    assert logout.status_code == 204
    assert "Max-Age=0" in logout.headers["set-cookie"]
    assert after.status_code == 401
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(UserSession.id))) == 0


async def test_session_idle_timeout(
    make_client: AppFactory, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    async with make_client(session_idle_seconds=600) as (client, _):
        token = await login(client, "ana@example.com")
        assert (await client.get(ME, headers=bearer(token))).status_code == 200

        async with database.transaction() as session:
            await session.execute(
                update(UserSession).values(
                    last_seen_at=utcnow() - timedelta(seconds=601)
                )
            )
        response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    async with database.sessions() as session:
        assert await session.scalar(select(func.count(UserSession.id))) == 0


async def test_session_absolute_expiry(
    make_client: AppFactory, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    async with make_client() as (client, _):
        token = await login(client, "ana@example.com")
        # Recently used, but past its absolute end.
        async with database.transaction() as session:
            await session.execute(
                update(UserSession).values(
                    expires_at=utcnow() - timedelta(seconds=1), last_seen_at=utcnow()
                )
            )
        response = await client.get(ME, headers=bearer(token))

    assert response.status_code == 401


async def test_activity_refreshes_at_most_once_a_minute(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    token = await login(client, "ana@example.com")
    async with database.sessions() as session:
        first = await session.scalar(select(UserSession.last_seen_at))

    await client.get(ME, headers=bearer(token))
    async with database.sessions() as session:
        unchanged = await session.scalar(select(UserSession.last_seen_at))
    async with database.transaction() as session:
        await session.execute(
            update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=2))
        )
    await client.get(ME, headers=bearer(token))
    async with database.sessions() as session:
        refreshed = await session.scalar(select(UserSession.last_seen_at))

    assert unchanged == first
    assert refreshed is not None
    assert refreshed > utcnow() - timedelta(seconds=30)


async def test_expired_cookie_is_cleared(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"cookie": "renchi_session=stale"})

    assert response.status_code == 401
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_malformed_authorization_rejected(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"authorization": "Basic abc"})

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 403),
        ({"origin": "https://evil.example"}, 403),
        ({"referer": "https://evil.example/page"}, 403),
        ({"origin": PUBLIC_URL}, 204),
        ({"referer": f"{PUBLIC_URL}/settings"}, 204),
        ({"origin": "https://app.example"}, 204),
    ],
)
async def test_cookie_post_needs_known_origin(
    make_client: AppFactory,
    database: Database,
    headers: dict[str, str],
    expected: int,
) -> None:
    await make_user(database, "ana@example.com")
    async with make_client(cors_origins=["https://app.example"]) as (client, _):
        token = await login(client, "ana@example.com")
        response = await client.post(
            "/api/auth/logout",
            headers={"cookie": f"renchi_session={token}", **headers},
        )

    assert response.status_code == expected
    if expected == 403:
        assert response.json()["code"] == "FORBIDDEN"


async def test_origin_defaults_to_request_host(
    make_client: AppFactory, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    async with make_client(public_url=None) as (client, _):
        token = await login(client, "ana@example.com")
        response = await client.post(
            "/api/auth/logout",
            headers={
                "cookie": f"renchi_session={token}",
                "origin": "http://internal:8000",
            },
        )

    assert response.status_code == 204


async def test_bearer_post_needs_no_origin(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    token = await login(client, "ana@example.com")

    response = await client.post(
        "/api/auth/logout",
        headers={**bearer(token), "origin": "https://evil.example"},
    )

    assert response.status_code == 204


async def test_login_from_foreign_origin_rejected(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")

    response = await client.post(
        "/api/auth/login",
        json={"email": "ana@example.com", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )

    assert response.status_code == 403
