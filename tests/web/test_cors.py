from __future__ import annotations

import httpx
import pytest

from renchi.db.engine import Database
from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, make_user

ALLOWED = "https://app.example"
FOREIGN = "https://evil.example"


def preflight(origin: str, headers: str = "authorization") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "GET",
        "access-control-request-headers": headers,
    }


@pytest.fixture
async def cors_client(make_client: AppFactory) -> httpx.AsyncClient:
    async with make_client(cors_origins=[ALLOWED]) as (client, _):
        yield client  # type: ignore[misc]


async def test_preflight_from_allowed_origin(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options("/api/auth/me", headers=preflight(ALLOWED))

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert response.headers["vary"] == "Origin"


async def test_preflight_from_foreign_origin(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options("/api/auth/me", headers=preflight(FOREIGN))

    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_with_unlisted_header(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/api/auth/me", headers=preflight(ALLOWED, "authorization, x-secret")
    )

    assert response.status_code == 403
    assert "x-secret" in response.json()["error"]


async def test_no_cross_origin_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/auth/me", headers=preflight(ALLOWED))

    assert response.status_code == 403


async def test_request_headers_follow_origin(
    cors_client: httpx.AsyncClient, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    token = await login(cors_client, "ana@example.com")

    allowed = await cors_client.get(
        "/api/auth/me", headers={**bearer(token), "origin": ALLOWED}
    )
    foreign = await cors_client.get(
        "/api/auth/me", headers={**bearer(token), "origin": FOREIGN}
    )
    same_origin = await cors_client.get("/api/auth/me", headers=bearer(token))

    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "retry-after" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in same_origin.headers
    assert same_origin.status_code == 200
