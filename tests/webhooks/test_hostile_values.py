"""Values PostgreSQL refuses must not turn an accepted event into a lost one."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from renchi.db.engine import Database
from renchi.db.models import Call, WebhookEvent
from tests.conftest import AppFactory, metric
from tests.support.elevenlabs import post_event, transcription
from tests.support.factories import call_by_sid, document_of, team_with_number
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"
SIP_CALLER = "sip:" + "a" * 50 + "@acme-dental-clinic-main-office.sip.us1.twilio.com"


async def events(database: Database) -> list[WebhookEvent]:
    async with database.sessions() as session:
        return list((await session.scalars(select(WebhookEvent))).all())


async def test_long_sip_caller_is_kept(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)

    voice = await post_signed(
        client,
        "/api/webhooks/twilio/voice",
        voice_params("CA1", to=NUMBER, caller=SIP_CALLER),
    )
    status = await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params("CA1", "completed", sequence=3, to=NUMBER, From=SIP_CALLER),
    )

    assert voice.status_code == 200
    assert status.json() == {"status": "accepted"}
    call = await call_by_sid(database, "CA1")
    assert call is not None
    assert call.from_number == SIP_CALLER[:64]
    assert call.status == "completed"
    stored = await events(database)
    assert {event.payload["From"] for event in stored} == {SIP_CALLER}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("From", "+1555\x000001111"),
        ("Direction", "inbound-" + "x" * 60),
        ("CallerName", "Ana \x00 Lima"),
    ],
)
async def test_odd_twilio_fields_apply(
    client: httpx.AsyncClient, database: Database, field: str, value: str
) -> None:
    params = status_params("CA2", "ringing", sequence=1, to=NUMBER)
    params[field] = value

    response = await post_signed(client, "/api/webhooks/twilio/status", params)

    assert response.json() == {"status": "accepted"}
    call = await call_by_sid(database, "CA2")
    assert call is not None
    assert call.status == "ringing"


async def test_hostile_transcription_applies(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    body = transcription(
        "conv_hostile",
        call_sid="CA3",
        transcript=[
            {"role": "user", "message": "null \x00 byte", "time_in_call_secs": 1},
            {
                "role": "agent",
                "message": "half an emoji \ud83e",
                "time_in_call_secs": 2,
            },
        ],
        summary="Summary with \x00 inside.",
    )
    body["data"]["analysis"]["evaluation_criteria_results"]["booked"]["score"] = float(
        "nan"
    )
    body["data"]["analysis"]["data_collection_results"]["appointment_day"]["value"] = (
        float("inf")
    )
    body["data"]["metadata"]["cost"] = "99999999.9999999"
    body["data"]["metadata"]["phone_call"]["external_number"] = "x" * 200

    response = await post_event(client, body)

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    call = await call_by_sid(database, "CA3")
    assert call is not None
    assert call.summary == "Summary with  inside."
    assert call.cost is None
    document = await document_of(database, call.id)
    assert (
        document["analysis"]["evaluation_criteria_results"]["booked"]["score"] is None
    )
    assert [turn["message"] for turn in document["transcript"]] == [
        "null  byte",
        "half an emoji ?",
    ]


async def test_call_document_is_valid_json(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    body = transcription("conv_nan", call_sid="CA4")
    body["data"]["analysis"]["score"] = float("nan")
    await post_event(client, body)
    call = await call_by_sid(database, "CA4")
    assert call is not None

    document = await document_of(database, call.id)

    assert document["analysis"]["score"] is None


async def test_handler_error_keeps_event_unapplied(
    make_client: AppFactory, database: Database
) -> None:
    before = metric(
        "renchi_webhook_events_total", source="twilio", type="status", outcome="failed"
    )
    async with make_client() as (client, runtime):

        async def broken(session, event):  # type: ignore[no-untyped-def]
            raise RuntimeError("a bug in the handler")

        runtime.processor._handlers = {  # type: ignore[attr-defined]
            **runtime.processor._handlers,  # type: ignore[attr-defined]
            ("twilio", "status"): broken,
        }
        first = await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status_params("CA5", "ringing", sequence=1, to=NUMBER),
        )
        repeat = await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status_params("CA5", "ringing", sequence=1, to=NUMBER),
        )
        spooled = runtime.spool.pending()

    assert first.json() == {"status": "stored"}
    assert repeat.json() == {"status": "duplicate"}
    assert spooled == []
    [event] = await events(database)
    assert event.outcome == "failed"
    assert event.payload["CallSid"] == "CA5"
    assert await call_by_sid(database, "CA5") is None
    after = metric(
        "renchi_webhook_events_total", source="twilio", type="status", outcome="failed"
    )
    assert after == before + 1


async def test_unapplied_voice_still_routes(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    async with make_client() as (client, runtime):
        await runtime.refresh_routes()

        async def broken(session, event):  # type: ignore[no-untyped-def]
            raise RuntimeError("a bug in the handler")

        runtime.processor._handlers = {  # type: ignore[attr-defined]
            **runtime.processor._handlers,  # type: ignore[attr-defined]
            ("twilio", "voice"): broken,
        }
        response = await post_signed(
            client, "/api/webhooks/twilio/voice", voice_params("CA6", to=NUMBER)
        )

    assert response.status_code == 200
    assert "<Response>" in response.text
    [event] = await events(database)
    assert event.outcome == "failed"


async def test_huge_numbers_do_not_fail(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params("CA7", "completed", sequence=2, to=NUMBER, CallDuration="9" * 30),
    )

    assert response.json() == {"status": "accepted"}
    async with database.sessions() as session:
        call = await session.scalar(select(Call).where(Call.call_sid == "CA7"))
    assert call is not None
    assert call.duration_seconds is None


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (
            "/api/webhooks/twilio/status",
            status_params(
                "CA8", "ringing", sequence=None, to=NUMBER, SequenceNumber="9" * 400
            ),
        ),
        (
            "/api/webhooks/twilio/recording",
            {"CallSid": "CA8", "RecordingSid": "RE8", "RecordingStatus": "x" * 400},
        ),
    ],
)
async def test_oversized_key_fields_are_400(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await post_signed(client, path, params)

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("conversation_id", "event_type"),
    [
        ("conv\u0000nul", "post_call_transcription"),
        ("conv\ud800sur", "post_call_transcription"),
        ("conv_other", "post_call_\u0000"),
    ],
)
async def test_unstorable_keys_still_land(
    client: httpx.AsyncClient, database: Database, conversation_id: str, event_type: str
) -> None:
    body = transcription(conversation_id)
    body["type"] = event_type

    response = await post_event(client, body)
    repeat = await post_event(client, body)

    assert response.status_code == 200
    assert response.json()["status"] in {"accepted", "unattributed", "ignored"}
    assert repeat.json()["status"] == "duplicate"
    assert len(await events(database)) == 1
