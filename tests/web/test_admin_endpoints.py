from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from renchi.config import Settings
from renchi.db.engine import Database
from renchi.db.models import User
from renchi.runtime import build_runtime
from renchi.web.app import create_app
from tests.conftest import AppFactory
from tests.support.accounts import PASSWORD, bearer, login, make_user
from tests.support.servers import serve_app

SETUP = "/api/setup-super-admin"
TOKEN = "test-setup-token-0123456789"
SETUP_HEADERS = {"authorization": f"Bearer {TOKEN}"}


async def super_admin_emails(database: Database) -> list[str]:
    async with database.sessions() as session:
        found = await session.scalars(
            select(User.email).where(User.super_admin).order_by(User.email)
        )
        return list(found)


async def test_setup_absent_without_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SETUP, json={"email": "root@example.com", "password": PASSWORD}
    )

    assert response.status_code == 404
    assert response.json() == {"error": "Not found.", "code": "NOT_FOUND"}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN]
)
async def test_setup_rejects_bad_token(
    make_client: AppFactory, database: Database, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with make_client(setup_token=SecretStr(TOKEN)) as (client, _):
        response = await client.post(
            SETUP,
            json={"email": "root@example.com", "password": PASSWORD},
            headers=headers,
        )

    assert response.status_code == 401
    assert await super_admin_emails(database) == []


async def test_setup_creates_accounts_once(
    make_client: AppFactory, database: Database
) -> None:
    accounts = [
        {"email": "root@example.com", "password": PASSWORD},
        {"email": "ops@example.com", "password": "another long passphrase"},
    ]
    async with make_client(setup_token=SecretStr(TOKEN)) as (client, _):
        first = await client.post(
            SETUP, json={"accounts": accounts}, headers=SETUP_HEADERS
        )
        again = await client.post(
            SETUP,
            json={"email": "late@example.com", "password": PASSWORD},
            headers=SETUP_HEADERS,
        )
        token = await login(client, "ops@example.com", "another long passphrase")
        me = await client.get("/api/auth/me", headers=bearer(token))

    assert first.status_code == 201
    assert [user["email"] for user in first.json()["users"]] == [
        "root@example.com",
        "ops@example.com",
    ]
    assert again.status_code == 409
    assert again.json()["code"] == "CONFLICT"
    assert await super_admin_emails(database) == [
        "ops@example.com",
        "root@example.com",
    ]
    assert me.json()["user"]["super_admin"] is True


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"email": "root@example.com", "password": "short"}, "password", "too short"),
        (
            {"email": "root@example.com", "password": "Password2024!!"},
            "password",
            "too common",
        ),
        (
            {
                "accounts": [
                    {"email": "root@example.com", "password": PASSWORD},
                    {"email": "two@example.com", "password": "LeaveMeAlone"},
                ]
            },
            "accounts[1].password",
            "too common",
        ),
        ({"email": "not-an-email", "password": PASSWORD}, "email", "Invalid email"),
        ({"accounts": []}, "accounts", "non-empty"),
    ],
)
async def test_setup_rejects_invalid_accounts(
    make_client: AppFactory,
    database: Database,
    body: dict[str, object],
    field: str,
    reason: str,
) -> None:
    async with make_client(setup_token=SecretStr(TOKEN)) as (client, _):
        response = await client.post(SETUP, json=body, headers=SETUP_HEADERS)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert reason in response.json()["error"]
    assert await super_admin_emails(database) == []


async def test_setup_once_under_concurrent_requests(
    settings: Settings, database: Database
) -> None:
    """Two setup requests in flight at once over TCP: exactly one creates accounts."""
    app_settings = settings.model_copy(update={"setup_token": SecretStr(TOKEN)})
    runtime = build_runtime(app_settings, database=database)
    app = create_app(app_settings, runtime=runtime, background=False)

    async with (
        app.router.lifespan_context(app),
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=SETUP_HEADERS) as client,
    ):
        responses = await asyncio.gather(
            *(
                client.post(
                    SETUP,
                    json={"email": f"root{index}@example.com", "password": PASSWORD},
                )
                for index in range(2)
            )
        )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409]
    assert len(await super_admin_emails(database)) == 1


async def test_debug_db_absent_by_default(
    client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "root@example.com", super_admin=True)
    token = await login(client, "root@example.com")

    response = await client.get("/api/debug/db", headers=bearer(token))

    assert response.status_code == 404


async def test_debug_db_reports_without_secrets(
    make_client: AppFactory, database: Database, postgres_url: str
) -> None:
    await make_user(database, "root@example.com", super_admin=True)
    async with make_client(debug_endpoints=True) as (client, _):
        token = await login(client, "root@example.com")
        response = await client.get("/api/debug/db", headers=bearer(token))

    body = response.json()
    assert response.status_code == 200
    assert body["reachable"] is True
    assert body["dialect"] == "postgresql"
    assert body["latency_ms"] >= 0
    assert body["server_version"].split(".")[0].isdigit()
    assert body["migration"]["status"] == "current"
    assert body["migration"]["revision"] == body["migration"]["expected_revision"]
    database_name = postgres_url.rsplit("/", 1)[1]
    assert database_name not in response.text
    assert "postgres@" not in response.text
    assert "127.0.0.1" not in response.text
