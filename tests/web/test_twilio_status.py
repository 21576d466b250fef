from __future__ import annotations

import httpx
import pytest

from renchi.db.engine import Database
from tests.conftest import metric
from tests.support.factories import call_by_sid, document_of, team_with_number
from tests.support.twilio import post_signed, status_params

NUMBER = "+14155550100"
STATUS_PATH = "/api/webhooks/twilio/status"


async def send_status(
    client: httpx.AsyncClient,
    call_sid: str,
    status: str,
    sequence: int | None,
    **extra: str,
) -> httpx.Response:
    return await post_signed(
        client,
        STATUS_PATH,
        status_params(call_sid, status, sequence=sequence, to=NUMBER, **extra),
    )


async def test_status_moves_forward(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)

    for sequence, status in enumerate(["initiated", "ringing", "in-progress"]):
        response = await send_status(client, "CA100", status, sequence)
        assert response.status_code == 200
    response = await send_status(client, "CA100", "completed", 3, CallDuration="42")

    assert response.json() == {"status": "accepted"}
    call = await call_by_sid(database, "CA100")
    assert call is not None
    assert call.status == "completed"
    assert call.duration_seconds == 42
    assert call.answered_at is not None
    assert call.ended_at is not None
    assert call.team_id is not None


async def test_out_of_order_status_never_goes_back(
    client: httpx.AsyncClient, database: Database
) -> None:
    await send_status(
        client,
        "CA200",
        "completed",
        3,
        CallDuration="17",
        Timestamp="Fri, 04 Dec 2026 16:00:40 +0000",
    )
    await send_status(
        client, "CA200", "in-progress", 2, Timestamp="Fri, 04 Dec 2026 16:00:20 +0000"
    )
    await send_status(
        client, "CA200", "ringing", 1, Timestamp="Fri, 04 Dec 2026 16:00:10 +0000"
    )

    call = await call_by_sid(database, "CA200")
    assert call is not None
    assert call.status == "completed"
    assert call.duration_seconds == 17
    assert call.started_at is not None
    assert call.started_at.isoformat() == "2026-12-04T16:00:10+00:00"
    assert call.answered_at is not None
    assert call.answered_at.isoformat() == "2026-12-04T16:00:20+00:00"
    assert call.ended_at is not None
    assert call.ended_at.isoformat() == "2026-12-04T16:00:40+00:00"


async def test_first_terminal_status_stays(
    client: httpx.AsyncClient, database: Database
) -> None:
    await send_status(client, "CA300", "busy", 1)
    await send_status(client, "CA300", "completed", 2, CallDuration="5")

    call = await call_by_sid(database, "CA300")
    assert call is not None
    assert call.status == "busy"


async def test_repeated_status_changes_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    before = metric("renchi_webhook_duplicates_total", source="twilio", type="status")
    first = await send_status(client, "CA400", "completed", 4, CallDuration="30")
    second = await send_status(client, "CA400", "completed", 4, CallDuration="99")

    assert first.json() == {"status": "accepted"}
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    call = await call_by_sid(database, "CA400")
    assert call is not None
    assert call.duration_seconds == 30
    assert (
        metric("renchi_webhook_duplicates_total", source="twilio", type="status")
        == before + 1
    )
    document = await document_of(database, call.id)
    assert [event["type"] for event in document["events"]] == ["status"]


async def test_status_without_sequence_dedupes_by_status(
    client: httpx.AsyncClient, database: Database
) -> None:
    assert (await send_status(client, "CA450", "completed", None)).json() == {
        "status": "accepted"
    }
    assert (await send_status(client, "CA450", "completed", None)).json() == {
        "status": "duplicate"
    }


async def test_outbound_call_created_and_attributed(
    client: httpx.AsyncClient, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)
    params = status_params(
        "CA500", "completed", sequence=2, to="+15559998888", CallDuration="12"
    )
    params.update({"From": NUMBER, "Direction": "outbound-api"})

    response = await post_signed(client, STATUS_PATH, params)

    assert response.status_code == 200
    call = await call_by_sid(database, "CA500")
    assert call is not None
    assert call.team_id == team.id
    assert call.direction == "outbound-api"
    assert call.status == "completed"


async def test_unknown_number_stored_unattributed(
    client: httpx.AsyncClient, database: Database
) -> None:
    before = metric(
        "renchi_webhook_events_total",
        source="twilio",
        type="status",
        outcome="unattributed",
    )

    response = await send_status(client, "CA600", "ringing", 0)

    assert response.status_code == 200
    call = await call_by_sid(database, "CA600")
    assert call is not None
    assert call.team_id is None
    after = metric(
        "renchi_webhook_events_total",
        source="twilio",
        type="status",
        outcome="unattributed",
    )
    assert after == before + 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"x-twilio-signature": "bm90IGEgc2lnbmF0dXJl"}, "wrong"),
        ({"x-twilio-signature": ""}, "empty"),
    ],
)
async def test_bad_signature_is_401(
    client: httpx.AsyncClient, database: Database, headers: dict[str, str], reason: str
) -> None:
    before = metric("renchi_webhook_signature_failures_total", source="twilio")

    response = await client.post(
        STATUS_PATH,
        content="CallSid=CA700&CallStatus=completed",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert (
        metric("renchi_webhook_signature_failures_total", source="twilio") == before + 1
    )
    assert await call_by_sid(database, "CA700") is None


async def test_signature_for_internal_url_is_rejected(
    client: httpx.AsyncClient, database: Database
) -> None:
    # Signed for the address the pod sees rather than the public one Twilio uses.
    response = await post_signed(
        client,
        STATUS_PATH,
        status_params("CA800", "ringing", sequence=0, to=NUMBER),
        public_url="http://internal:8000",
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("configured", "signed_for"),
    [
        ("https://public.example", "https://public.example"),
        ("https://public.example", "https://public.example:443"),
        ("https://public.example:443", "https://public.example"),
        ("https://public.example:8443", "https://public.example:8443"),
    ],
)
async def test_public_url_variants_verify(
    make_client, database: Database, configured: str, signed_for: str
) -> None:
    async with make_client(public_url=configured) as (client, _):
        response = await post_signed(
            client,
            STATUS_PATH,
            status_params("CA900", "ringing", sequence=0, to=NUMBER),
            public_url=signed_for,
        )

    assert response.status_code == 200


async def test_missing_call_sid_is_400(client: httpx.AsyncClient) -> None:
    response = await post_signed(client, STATUS_PATH, {"CallStatus": "completed"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "Missing required field 'CallSid'.",
        "code": "VALIDATION_ERROR",
    }


async def test_absurd_timestamp_uses_arrival_time(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await send_status(
        client, "CA950", "ringing", 1, Timestamp="Mon, 01 Jan 0001 00:00:00 +0000"
    )

    assert response.status_code == 200
    call = await call_by_sid(database, "CA950")
    assert call is not None
    assert call.started_at is not None
    assert call.started_at.year >= 2026
