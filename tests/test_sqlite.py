"""The embedded default: the same flows on SQLite, as `make run` uses them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import migration_state, upgrade
from renchi.runtime import build_runtime
from renchi.web.app import create_app
from tests.conftest import make_settings
from tests.support.factories import call_by_sid, document_of, team_with_number
from tests.support.fakes import AGENT_TWIML, FakeElevenLabs
from tests.support.servers import serve_app
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'renchi.db'}")


@pytest.fixture
async def sqlite_database(sqlite_settings: Settings) -> AsyncIterator[Database]:
    database = create_database(sqlite_settings)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def test_migrations_are_current(sqlite_database: Database) -> None:
    state = await migration_state(sqlite_database)

    assert state.status == "current"
    assert sqlite_database.dialect == "sqlite"


async def test_call_flow_on_sqlite(
    sqlite_settings: Settings, sqlite_database: Database
) -> None:
    await team_with_number(sqlite_database, number=NUMBER)
    fake = FakeElevenLabs()
    async with serve_app(fake.app()) as url:
        settings = Settings(
            **{
                **dict(sqlite_settings),
                "elevenlabs_api_url": url,
                "elevenlabs_api_key": "xi",
            }
        )
        runtime = build_runtime(settings, database=sqlite_database)
        app = create_app(settings, runtime=runtime, background=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://internal:8000"
            ) as client,
        ):
            voice = await post_signed(
                client, "/api/webhooks/twilio/voice", voice_params("CA1", to=NUMBER)
            )
            repeat = await post_signed(
                client, "/api/webhooks/twilio/voice", voice_params("CA1", to=NUMBER)
            )
            for sequence, status in enumerate(["in-progress", "completed"], start=1):
                await post_signed(
                    client,
                    "/api/webhooks/twilio/status",
                    status_params(
                        "CA1", status, sequence=sequence, to=NUMBER, CallDuration="20"
                    ),
                )
            duplicate = await post_signed(
                client,
                "/api/webhooks/twilio/status",
                status_params(
                    "CA1", "completed", sequence=2, to=NUMBER, CallDuration="20"
                ),
            )

    assert voice.text == AGENT_TWIML
    assert repeat.text == AGENT_TWIML
    assert len(fake.requests) == 1
    assert duplicate.json() == {"status": "duplicate"}
    call = await call_by_sid(sqlite_database, "CA1")
    assert call is not None
    assert call.status == "completed"
    assert call.duration_seconds == 20
    assert call.started_at is not None
    assert call.started_at.tzinfo is not None
    document = await document_of(sqlite_database, call.id)
    assert [event["type"] for event in document["events"]] == [
        "voice",
        "status",
        "status",
    ]
    assert document["team"] == "acme-dental"
