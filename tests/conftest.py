"""Fixtures: a PostgreSQL database of this test run, settings, and the application.

The suite creates its own database on the server at RENCHI_TEST_ADMIN_URL
(default: the local server, database `postgres`), migrates it once, empties
its tables after each test, and drops it at the end, so parallel runs never
collide.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import argon2
import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from renchi.accounts import passwords
from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import upgrade
from renchi.db.models import Base
from renchi.observability import metrics
from renchi.runtime import Runtime, build_runtime
from renchi.web.app import create_app
from tests.support.servers import TcpProxy
from tests.support.twilio import AUTH_TOKEN, PUBLIC_URL

ADMIN_URL = os.environ.get(
    "RENCHI_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    # Settings come from the fixtures alone, never from the developer's shell.
    for name in list(os.environ):
        if name.startswith("RENCHI_") and name != "RENCHI_TEST_ADMIN_URL":
            del os.environ[name]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Create, migrate and finally drop this run's database; yield its URL."""
    name = f"renchi_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.exit(
            f"PostgreSQL is not reachable at {ADMIN_URL}: {error}. Start it (see the README) "
            "or set RENCHI_TEST_ADMIN_URL.",
            returncode=3,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_migrate(url))
    try:
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(url: str) -> None:
    database = create_database(Settings(), url=url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with argon2's cheapest parameters; the default ones cost 64 MiB and tens of ms."""
    monkeypatch.setattr(
        passwords,
        "_hasher",
        argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST),
    )


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "development",
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "elevenlabs_webhook_secret": SecretStr("test-elevenlabs-webhook-secret"),
        "personalization_secret": SecretStr("test-personalization-secret"),
        "register_call_timeout_seconds": 1.0,
        "database_timeout_seconds": 2.0,
        "embedded_worker": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return make_settings(tmp_path, postgres_url)


@pytest.fixture
async def database(settings: Settings, postgres_url: str) -> AsyncIterator[Database]:
    database = create_database(settings, url=postgres_url)
    try:
        yield database
    finally:
        await _empty_tables(database)
        await database.dispose()


async def _empty_tables(database: Database) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


AppFactory = Callable[
    ..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, Runtime]]
]


@pytest.fixture
def make_client(settings: Settings, database: Database) -> AppFactory:
    """Return a factory of (client, runtime) pairs for the app, run through its lifespan.

    The client reaches the app in-process as `http://internal:8000`, the way a
    pod behind a TLS-terminating ingress sees requests Twilio signed for the
    public URL.
    """

    @asynccontextmanager
    async def factory(
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        runtime_database: Database | None = None,
        **overrides: Any,
    ) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
        app_settings = (
            Settings(**{**dict(settings), **overrides}) if overrides else settings
        )
        runtime = build_runtime(
            app_settings, database=runtime_database or database, transport=transport
        )
        app = create_app(app_settings, runtime=runtime, background=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://internal:8000"
            ) as client,
        ):
            yield client, runtime

    return factory


@pytest.fixture
async def client(make_client: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as (client, _):
        yield client


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of this run's PostgreSQL server, for cutting the database away."""
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def proxied_database(
    settings: Settings, postgres_url: str, proxy: TcpProxy
) -> AsyncIterator[Database]:
    """This run's database reached through `proxy`."""
    url = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    database = create_database(settings, url=url.render_as_string(hide_password=False))
    try:
        yield database
    finally:
        await database.dispose()


def metric(name: str, **labels: str) -> float:
    """Read a sample from Renchi's registry; 0 when it was never recorded."""
    return metrics.registry.get_sample_value(name, labels) or 0.0
