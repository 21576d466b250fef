"""The voice webhook sends callers to the team's fallback number when the agent cannot answer."""

from __future__ import annotations

import uuid

import httpx
import pytest

from renchi.adapters.twilio import dial_twiml
from renchi.calls.routing import Route
from renchi.calls.voice import fallback_answer
from renchi.db.engine import Database
from renchi.db.models import Team
from renchi.teams.settings import update_settings
from tests.conftest import AppFactory, metric
from tests.support.accounts import bearer, login, make_user
from tests.support.factories import call_by_sid, team_with_number
from tests.support.fakes import FakeElevenLabs
from tests.support.servers import TcpProxy, free_port, serve_app
from tests.support.twilio import post_signed, voice_params

NUMBER = "+14155550100"
FALLBACK = "+4930123456"
VOICE_PATH = "/api/webhooks/twilio/voice"
UNAVAILABLE = "this line is not available"


async def set_fallback(database: Database, team: Team, number: str | None) -> None:
    async with database.transaction() as session:
        await update_settings(
            session,
            team,
            {"fallback_number": number},
            None,
            default_retention_days=90,
        )


@pytest.mark.parametrize(
    ("behaviour", "result"),
    [("slow", "timeout"), ("error", "error"), ("reject", "rejected")],
)
async def test_elevenlabs_failure_dials_fallback(
    make_client: AppFactory, database: Database, behaviour: str, result: str
) -> None:
    team = await team_with_number(database, number=NUMBER)
    await set_fallback(database, team, FALLBACK)
    fake = FakeElevenLabs(behaviour=behaviour, delay=1.0)
    before = metric("renchi_voice_answers_total", answer="fallback")
    failures_before = metric("renchi_elevenlabs_register_call_total", result=result)
    async with (
        serve_app(fake.app()) as url,
        make_client(
            elevenlabs_api_url=url,
            elevenlabs_api_key="xi-test",
            register_call_timeout_seconds=0.3,
        ) as (client, _),
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA1", to=NUMBER))

    assert response.status_code == 200
    assert response.text == dial_twiml(FALLBACK)
    assert metric("renchi_voice_answers_total", answer="fallback") == before + 1
    assert (
        metric("renchi_elevenlabs_register_call_total", result=result)
        == failures_before + 1
    )
    assert len(fake.requests) == 1
    assert await call_by_sid(database, "CA1") is not None


async def test_unreachable_elevenlabs_dials_fallback(
    make_client: AppFactory, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)
    await set_fallback(database, team, FALLBACK)
    closed = f"http://127.0.0.1:{free_port()}"
    async with make_client(elevenlabs_api_url=closed, elevenlabs_api_key="xi-test") as (
        client,
        _,
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA2", to=NUMBER))

    assert response.text == dial_twiml(FALLBACK)


async def test_unconfigured_elevenlabs_dials_fallback(
    make_client: AppFactory, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)
    await set_fallback(database, team, FALLBACK)
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(500)
    )
    async with make_client(transport=transport) as (client, _):
        response = await post_signed(client, VOICE_PATH, voice_params("CA3", to=NUMBER))

    assert response.text == dial_twiml(FALLBACK)
    assert sent == []


async def test_native_number_dials_fallback(
    make_client: AppFactory, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER, mode="native")
    await set_fallback(database, team, FALLBACK)
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA4", to=NUMBER))

    assert response.text == dial_twiml(FALLBACK)
    assert fake.requests == []


async def test_cleared_fallback_answers_unavailable(
    make_client: AppFactory, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)
    await set_fallback(database, team, FALLBACK)
    await set_fallback(database, team, None)
    fake = FakeElevenLabs(behaviour="error")
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA5", to=NUMBER))

    assert UNAVAILABLE in response.text
    assert "<Dial>" not in response.text


async def test_fallback_set_by_api_routes_without_database(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    team = await team_with_number(database, number=NUMBER)
    await make_user(database, "owner@example.com", team=team, role="owner")
    fake = FakeElevenLabs(behaviour="error")
    async with (
        serve_app(fake.app()) as url,
        make_client(
            runtime_database=proxied_database,
            elevenlabs_api_url=url,
            elevenlabs_api_key="xi-test",
        ) as (client, runtime),
    ):
        token = await login(client, "owner@example.com")
        changed = await client.patch(
            "/api/teams/acme-dental/settings",
            json={"fallback_number": FALLBACK},
            headers=bearer(token),
        )
        cached = runtime.routes.get(NUMBER)
        proxy.cut()
        response = await post_signed(client, VOICE_PATH, voice_params("CA6", to=NUMBER))
        proxy.restore()

    assert changed.status_code == 200, changed.text
    assert cached is not None
    assert cached.fallback_number == FALLBACK
    assert response.status_code == 200
    assert response.text == dial_twiml(FALLBACK)


def test_fallback_to_called_number_is_skipped() -> None:
    route = Route(
        number=NUMBER,
        team_id=uuid.uuid4(),
        team_slug="acme-dental",
        team_name="Acme Dental",
        agent_id=uuid.uuid4(),
        elevenlabs_agent_id="agent_acme",
        mode="register_call",
        fallback_number=NUMBER,
    )

    answer = fallback_answer(route)

    assert answer.kind == "unavailable"
    assert "<Dial>" not in answer.twiml
