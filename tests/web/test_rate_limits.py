from __future__ import annotations

import uuid

import httpx
import pytest
import redis.asyncio
from pydantic import SecretStr

from renchi.db.engine import Database
from tests.conftest import AppFactory, metric
from tests.support.accounts import PASSWORD, bearer, login, make_user
from tests.support.servers import free_port
from tests.support.twilio import post_signed, status_params

REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_available() -> bool:
    client = redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except redis.RedisError:
        return False
    finally:
        await client.aclose()


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.json()["code"] == "RATE_LIMITED"
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60


async def test_per_address_limit_in_memory(make_client: AppFactory) -> None:
    before = metric("renchi_rate_limited_total", scope="address")
    async with make_client(rate_limit_per_address="3/minute") as (client, _):
        responses = [await client.get("/api/auth/me") for _ in range(4)]

    assert [response.status_code for response in responses[:3]] == [401, 401, 401]
    assert_rate_limited(responses[3])
    assert metric("renchi_rate_limited_total", scope="address") == before + 1


async def test_per_user_limit(make_client: AppFactory, database: Database) -> None:
    await make_user(database, "ana@example.com")
    async with make_client(rate_limit_per_user="2/minute") as (client, _):
        token = await login(client, "ana@example.com")
        responses = [
            await client.get("/api/auth/me", headers=bearer(token)) for _ in range(3)
        ]

    assert [response.status_code for response in responses[:2]] == [200, 200]
    assert_rate_limited(responses[2])


async def test_login_limited_per_email(
    make_client: AppFactory, database: Database
) -> None:
    await make_user(database, "ana@example.com")
    async with make_client(rate_limit_login_per_email="2/minute") as (client, _):
        failures = [
            await client.post(
                "/api/auth/login",
                json={"email": "ana@example.com", "password": f"wrong guess {index}"},
            )
            for index in range(2)
        ]
        blocked = await client.post(
            "/api/auth/login", json={"email": "ANA@example.com", "password": PASSWORD}
        )
        other = await client.post(
            "/api/auth/login", json={"email": "bo@example.com", "password": PASSWORD}
        )

    assert [response.status_code for response in failures] == [401, 401]
    assert_rate_limited(blocked)
    assert other.status_code == 401


async def test_webhooks_not_rate_limited(make_client: AppFactory) -> None:
    async with make_client(rate_limit_per_address="1/minute") as (client, _):
        responses = [
            await post_signed(
                client,
                "/api/webhooks/twilio/status",
                status_params(f"CA{index}", "ringing", sequence=1, to="+14155550100"),
            )
            for index in range(3)
        ]
        health = [await client.get("/healthz") for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert [response.status_code for response in health] == [200, 200, 200]


async def test_limits_shared_through_redis(make_client: AppFactory) -> None:
    if not await redis_available():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"renchi-test-{uuid.uuid4().hex}"
    options = {
        "redis_url": SecretStr(REDIS_URL),
        "rate_limit_key_prefix": prefix,
        "rate_limit_per_address": "3/minute",
    }
    async with (
        make_client(**options) as (first, _),
        make_client(**options) as (second, _),
    ):
        # Two application instances, as two replicas, draw on one budget.
        responses = [await first.get("/api/auth/me") for _ in range(2)]
        responses += [await second.get("/api/auth/me") for _ in range(2)]

    assert [response.status_code for response in responses[:3]] == [401, 401, 401]
    assert_rate_limited(responses[3])
    keys = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        stored = await keys.keys(f"{prefix}*")
        assert stored
        await keys.delete(*stored)
    finally:
        await keys.aclose()


async def test_redis_outage_lets_requests_pass(make_client: AppFactory) -> None:
    before = metric("renchi_rate_limit_errors_total", backend="redis")
    unused = f"redis://127.0.0.1:{free_port()}/0"
    async with make_client(
        redis_url=SecretStr(unused), rate_limit_per_address="1/minute"
    ) as (client, _):
        responses = [await client.get("/api/auth/me") for _ in range(3)]

    assert [response.status_code for response in responses] == [401, 401, 401]
    assert metric("renchi_rate_limit_errors_total", backend="redis") >= before + 3
