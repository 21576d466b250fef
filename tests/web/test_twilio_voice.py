from __future__ import annotations

import asyncio

import httpx
import pytest

from renchi.db.engine import Database
from tests.conftest import AppFactory, metric
from tests.support.factories import call_by_sid, team_with_number
from tests.support.fakes import AGENT_TWIML, FakeElevenLabs
from tests.support.servers import free_port, serve_app
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"
VOICE_PATH = "/api/webhooks/twilio/voice"
UNAVAILABLE = "this line is not available"


async def test_voice_returns_agent_twiml(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA1", to=NUMBER))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == AGENT_TWIML
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent["headers"]["xi-api-key"] == "xi-test"
    assert sent["body"]["agent_id"] == "agent_acme"
    assert sent["body"]["from_number"] == "+15550001111"
    assert sent["body"]["to_number"] == NUMBER
    variables = sent["body"]["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables == {
        "team_name": "Acme Dental",
        "caller_number": "+15550001111",
        "called_number": NUMBER,
        "caller_known": "false",
        "caller_call_count": "0",
        "last_call_at": "",
        "last_call_summary": "",
    }
    call = await call_by_sid(database, "CA1")
    assert call is not None
    assert call.status == "ringing"
    assert call.mode == "register_call"
    assert call.dynamic_variables == variables


async def test_repeat_gets_same_twiml_once_registered(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        first = await post_signed(client, VOICE_PATH, voice_params("CA2", to=NUMBER))
        second = await post_signed(client, VOICE_PATH, voice_params("CA2", to=NUMBER))

    assert first.text == AGENT_TWIML
    assert second.text == AGENT_TWIML
    assert len(fake.requests) == 1


async def test_concurrent_repeats_register_once(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs(behaviour="slow", delay=0.3)
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        responses = await asyncio.gather(
            *(
                post_signed(client, VOICE_PATH, voice_params("CA3", to=NUMBER))
                for _ in range(3)
            )
        )

    assert [response.text for response in responses] == [AGENT_TWIML] * 3
    assert len(fake.requests) == 1


async def test_stored_answer_serves_other_replica(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs()
    async with serve_app(fake.app()) as url:
        async with make_client(
            elevenlabs_api_url=url, elevenlabs_api_key="xi-test"
        ) as (first_replica, _):
            first = await post_signed(
                first_replica, VOICE_PATH, voice_params("CA4", to=NUMBER)
            )
        async with make_client(
            elevenlabs_api_url=url, elevenlabs_api_key="xi-test"
        ) as (second_replica, _):
            second = await post_signed(
                second_replica, VOICE_PATH, voice_params("CA4", to=NUMBER)
            )

    assert first.text == AGENT_TWIML
    assert second.text == AGENT_TWIML
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("behaviour", "result"),
    [
        ("slow", "timeout"),
        ("drip", "timeout"),
        ("error", "error"),
        ("reject", "rejected"),
        ("huge", "rejected"),
    ],
)
async def test_elevenlabs_failure_answers_unavailable(
    make_client: AppFactory, database: Database, behaviour: str, result: str
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs(behaviour=behaviour, delay=1.0)
    before = metric("renchi_elevenlabs_register_call_total", result=result)
    async with (
        serve_app(fake.app()) as url,
        make_client(
            elevenlabs_api_url=url,
            elevenlabs_api_key="xi-test",
            register_call_timeout_seconds=0.3,
        ) as (client, _),
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA5", to=NUMBER))

    assert response.status_code == 200
    assert UNAVAILABLE in response.text
    assert metric("renchi_elevenlabs_register_call_total", result=result) == before + 1
    assert await call_by_sid(database, "CA5") is not None


async def test_elevenlabs_down_answers_unavailable(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    closed = f"http://127.0.0.1:{free_port()}"
    async with make_client(elevenlabs_api_url=closed, elevenlabs_api_key="xi-test") as (
        client,
        _,
    ):
        response = await post_signed(client, VOICE_PATH, voice_params("CA6", to=NUMBER))

    assert response.status_code == 200
    assert UNAVAILABLE in response.text


async def test_without_api_key_nothing_is_sent(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(500)
    )
    async with make_client(transport=transport) as (client, _):
        response = await post_signed(client, VOICE_PATH, voice_params("CA7", to=NUMBER))

    assert UNAVAILABLE in response.text
    assert sent == []


async def test_unknown_number_answers_unavailable(
    make_client: AppFactory, database: Database
) -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(500)
    )
    async with make_client(transport=transport, elevenlabs_api_key="xi-test") as (
        client,
        _,
    ):
        response = await post_signed(
            client, VOICE_PATH, voice_params("CA8", to="+15559990000")
        )

    assert response.status_code == 200
    assert UNAVAILABLE in response.text
    assert sent == []
    call = await call_by_sid(database, "CA8")
    assert call is not None
    assert call.team_id is None


async def test_returning_caller_variables(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        await post_signed(client, VOICE_PATH, voice_params("CA9", to=NUMBER))
        first_call = await call_by_sid(database, "CA9")
        assert first_call is not None
        async with database.transaction() as session:
            stored = await session.get(type(first_call), first_call.id)
            assert stored is not None
            stored.summary = "Booked a cleaning for Tuesday."
        await post_signed(client, VOICE_PATH, voice_params("CA10", to=NUMBER))

    variables = fake.requests[1]["body"]["conversation_initiation_client_data"][
        "dynamic_variables"
    ]
    assert variables["caller_known"] == "true"
    assert variables["caller_call_count"] == "1"
    assert variables["last_call_summary"] == "Booked a cleaning for Tuesday."
    assert variables["last_call_at"] == first_call.started_at.isoformat()  # type: ignore[union-attr]


async def test_missing_call_sid_still_answers_twiml(client: httpx.AsyncClient) -> None:
    response = await post_signed(
        client, VOICE_PATH, {"From": "+15550001111", "To": NUMBER}
    )

    assert response.status_code == 200
    assert UNAVAILABLE in response.text


async def test_voice_bad_signature_is_401_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        VOICE_PATH,
        content="CallSid=CA11&To=%2B14155550100",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": "AAAA",
        },
    )

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


async def test_voice_for_ended_call_not_registered(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status_params("CA20", "completed", sequence=3, to=NUMBER),
        )
        response = await post_signed(
            client, VOICE_PATH, voice_params("CA20", to=NUMBER)
        )

    assert response.status_code == 200
    assert UNAVAILABLE in response.text
    assert fake.requests == []


@pytest.mark.parametrize("call_sid", ["' OR 1=1; --", "CA 1", "CA\u2603", "C" * 65])
async def test_odd_call_sid_is_rejected(
    client: httpx.AsyncClient, call_sid: str
) -> None:
    status = await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params(call_sid, "ringing", sequence=0, to=NUMBER),
    )
    voice = await post_signed(client, VOICE_PATH, voice_params(call_sid, to=NUMBER))

    assert status.status_code == 400
    assert status.json()["code"] == "VALIDATION_ERROR"
    assert voice.status_code == 200
    assert UNAVAILABLE in voice.text
