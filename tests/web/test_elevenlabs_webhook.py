from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from renchi.adapters.storage import AtomicWriter
from renchi.db.engine import Database
from renchi.db.models import Call, Recording, Transcript, WebhookEvent
from renchi.web.webhooks import elevenlabs as elevenlabs_route
from tests.conftest import AppFactory, metric
from tests.support.elevenlabs import (
    START_TIME,
    audio_event,
    initiation_failure,
    post_event,
    signature,
    transcription,
    turns,
)
from tests.support.factories import call_by_sid, document_of, team_with_number
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"
CALL_SID = "CA" + "1" * 32
AUDIO = os.urandom(6000)
AUDIO_BASE64 = base64.b64encode(AUDIO).decode()


async def count(database: Database, model: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def call_by_conversation(database: Database, conversation_id: str) -> Call:
    async with database.sessions() as session:
        call = await session.scalar(
            select(Call).where(Call.conversation_id == conversation_id)
        )
    assert call is not None
    return call


def stored_files(root: Path) -> list[Path]:
    """Return every file under the recordings root, temporary ones included."""
    if not root.exists():
        return []
    return sorted(path for path in root.rglob("*") if path.is_file())


# Signature


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=abc,v0=" + "0" * 64,
        "t=1796400000",
        "v0=" + "0" * 64,
        "t=1796400000, v0=" + "0" * 64,
        "t=1796400000,t=1796400000,v0=" + "0" * 64,
        "t=1796400000,v0=" + "0" * 64 + ",v0=" + "0" * 64,
        "t=1796400000,v0=xyz",
    ],
)
async def test_malformed_signature_is_401(
    client: httpx.AsyncClient, database: Database, header: str | None
) -> None:
    before = metric("renchi_webhook_signature_failures_total", source="elevenlabs")
    headers = {} if header is None else {"elevenlabs-signature": header}

    response = await post_event(client, transcription("conv_sig"), headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    after = metric("renchi_webhook_signature_failures_total", source="elevenlabs")
    assert after == before + 1
    assert await count(database, Call) == 0
    assert await count(database, WebhookEvent) == 0


async def test_wrong_secret_is_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await post_event(client, transcription("conv_sig"), secret="other")

    assert response.status_code == 401
    assert await count(database, WebhookEvent) == 0


async def test_stale_signature_is_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    stale = int(time.time()) - 1801

    response = await post_event(client, transcription("conv_sig"), timestamp=stale)

    assert response.status_code == 401
    assert "old" in response.json()["error"]
    assert await count(database, WebhookEvent) == 0


async def test_future_signature_is_accepted(client: httpx.AsyncClient) -> None:
    future = int(time.time()) + 3600

    response = await post_event(client, transcription("conv_sig"), timestamp=future)

    assert response.status_code == 200


async def test_tolerance_comes_from_settings(make_client: Any) -> None:
    async with make_client(signature_tolerance_seconds=60) as (client, _):
        response = await post_event(
            client, transcription("conv_sig"), timestamp=int(time.time()) - 120
        )

    assert response.status_code == 401


async def test_body_changed_after_signing_is_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    body = json.dumps(transcription("conv_sig")).encode()
    header = signature(body)

    response = await post_event(
        client,
        body.replace(b"conv_sig", b"conv_sih"),
        headers={"elevenlabs-signature": header},
    )

    assert response.status_code == 401
    assert await count(database, Call) == 0


# Transcription


async def test_transcription_stored_on_call(
    client: httpx.AsyncClient, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)

    response = await post_event(
        client, transcription("conv_1", call_sid=CALL_SID, duration="42")
    )

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    document = await document_of(database, call.id)
    assert document["team_id"] == str(team.id)
    assert document["conversation_id"] == "conv_1"
    assert document["outcome"] == "success"
    assert document["summary"].startswith("The caller booked")
    assert document["duration_seconds"] == 42
    assert document["cost"] == 512
    assert document["termination_reason"] == "Call ended by remote party"
    assert document["started_at"] == "2026-12-04T16:00:00+00:00"
    assert document["ended_at"] == "2026-12-04T16:00:42+00:00"
    assert document["from_number"] == "+15550001111"
    assert document["to_number"] == NUMBER
    assert document["mode"] == "register_call"
    assert document["status"] == "completed"
    analysis = document["analysis"]
    assert analysis["evaluation_criteria_results"]["booked"]["result"] == "success"
    assert analysis["data_collection_results"]["appointment_day"]["value"] == "Tuesday"
    assert document["dynamic_variables"]["system__call_sid"] == CALL_SID
    assert [turn["role"] for turn in document["transcript"]] == [
        "agent",
        "user",
        "agent",
        "user",
    ]
    assert document["transcript"][1]["time_in_call_secs"] == 1.0
    assert document["transcript_status"] == "done"


async def test_same_transcription_twice_changes_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    before = metric(
        "renchi_webhook_duplicates_total",
        source="elevenlabs",
        type="post_call_transcription",
    )
    first = await post_event(client, transcription("conv_2", call_sid=CALL_SID))
    second = await post_event(
        client,
        transcription(
            "conv_2", call_sid=CALL_SID, summary="Changed.", outcome="failure"
        ),
    )

    assert first.json() == {"status": "accepted"}
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    call = await call_by_conversation(database, "conv_2")
    assert call.summary is not None
    assert call.summary.startswith("The caller booked")
    assert call.outcome == "success"
    assert await count(database, WebhookEvent) == 1
    after = metric(
        "renchi_webhook_duplicates_total",
        source="elevenlabs",
        type="post_call_transcription",
    )
    assert after == before + 1


async def test_transcription_before_twilio_joins_one_call(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)

    await post_event(client, transcription("conv_3", call_sid=CALL_SID, duration=40))
    await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params(CALL_SID, "completed", sequence=3, to=NUMBER, CallDuration="43"),
    )

    assert await count(database, Call) == 1
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.conversation_id == "conv_3"
    assert call.status == "completed"
    # The telephone leg's duration wins over the conversation's.
    assert call.duration_seconds == 43
    document = await document_of(database, call.id)
    assert [event["type"] for event in document["events"]] == [
        "post_call_transcription",
        "status",
    ]


async def test_transcription_after_twilio_joins_one_call(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params(CALL_SID, "in-progress", sequence=2, to=NUMBER),
    )

    await post_event(client, transcription("conv_4", call_sid=CALL_SID, duration=40))

    assert await count(database, Call) == 1
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.conversation_id == "conv_4"
    assert call.status == "completed"
    assert call.duration_seconds == 40


async def test_audio_first_then_twilio_then_transcription_merge(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    await post_event(client, audio_event("conv_5", AUDIO_BASE64))
    await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params(CALL_SID, "completed", sequence=3, to=NUMBER, CallDuration="44"),
    )
    assert await count(database, Call) == 2

    response = await post_event(client, transcription("conv_5", call_sid=CALL_SID))

    assert response.status_code == 200
    assert await count(database, Call) == 1
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.conversation_id == "conv_5"
    document = await document_of(database, call.id)
    assert [recording["source"] for recording in document["recordings"]] == [
        "elevenlabs"
    ]
    assert sorted(event["type"] for event in document["events"]) == [
        "post_call_audio",
        "post_call_transcription",
        "status",
    ]
    assert document["duration_seconds"] == 44
    assert len(document["transcript"]) == 4


async def test_audio_then_transcription_make_one_call(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    await post_event(client, audio_event("conv_5b", AUDIO_BASE64))

    await post_event(client, transcription("conv_5b", call_sid=CALL_SID))

    assert await count(database, Call) == 1
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.conversation_id == "conv_5b"
    assert call.mode == "register_call"
    assert call.team_id is not None
    document = await document_of(database, call.id)
    assert len(document["recordings"]) == 1


async def test_web_call_without_twilio_is_a_call(
    client: httpx.AsyncClient, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER)

    await post_event(client, transcription("conv_web"))
    await post_event(client, audio_event("conv_web", AUDIO_BASE64))

    assert await count(database, Call) == 1
    call = await call_by_conversation(database, "conv_web")
    assert call.call_sid is None
    assert call.team_id == team.id
    document = await document_of(database, call.id)
    assert document["status"] == "completed"
    assert document["duration_seconds"] == 42
    assert len(document["recordings"]) == 1


async def test_empty_transcript_with_error_object(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    error = {"code": 1011, "reason": "LLM provider timed out"}

    response = await post_event(
        client,
        transcription(
            "conv_6", transcript=[], outcome="failure", duration=None, error=error
        ),
    )

    assert response.status_code == 200
    document = await document_of(
        database, (await call_by_conversation(database, "conv_6")).id
    )
    assert document["transcript"] == []
    assert document["error"] == error
    assert document["outcome"] == "failure"
    assert document["duration_seconds"] is None


async def test_error_as_string_is_kept(
    client: httpx.AsyncClient, database: Database
) -> None:
    await post_event(client, transcription("conv_7", error="Agent crashed"))

    call = await call_by_conversation(database, "conv_7")
    assert call.error == {"message": "Agent crashed"}


async def test_transcript_of_2000_turns(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)

    response = await post_event(
        client, transcription("conv_8", call_sid=CALL_SID, transcript=turns(2000))
    )

    assert response.status_code == 200
    async with database.sessions() as session:
        transcript = await session.scalar(select(Transcript))
    assert transcript is not None
    assert transcript.turn_count == 2000
    assert len(transcript.turns) == 2000
    assert transcript.turns[9]["message"] is None
    assert transcript.turns[9]["tool_calls"][0]["tool_name"] == "lookup_booking"
    assert transcript.turns[1999]["role"] == "agent"
    assert transcript.turns[1998]["message"].startswith("Turn 1998")


async def test_unknown_agent_stored_unattributed(
    client: httpx.AsyncClient, database: Database
) -> None:
    labels = {
        "source": "elevenlabs",
        "type": "post_call_transcription",
        "outcome": "unattributed",
    }
    before = metric("renchi_webhook_events_total", **labels)

    response = await post_event(
        client, transcription("conv_9", agent_id="agent_nobody")
    )

    assert response.status_code == 200
    call = await call_by_conversation(database, "conv_9")
    assert call.team_id is None
    assert call.agent_id is None
    assert metric("renchi_webhook_events_total", **labels) == before + 1
    async with database.sessions() as session:
        outcome = await session.scalar(select(WebhookEvent.outcome))
    assert outcome == "unattributed"


async def test_lenient_fields_are_parsed(
    client: httpx.AsyncClient, database: Database
) -> None:
    payload = transcription("conv_10", duration="61.0")
    payload["data"]["metadata"]["cost"] = "12.5"
    payload["data"]["metadata"]["start_time_unix_secs"] = str(START_TIME)
    payload["data"]["analysis"]["call_successful"] = "maybe"
    payload["data"]["transcript"].append("not a turn")
    payload["data"]["brand_new_field"] = {"kept": True}

    response = await post_event(client, payload)

    assert response.status_code == 200
    call = await call_by_conversation(database, "conv_10")
    assert call.duration_seconds == 61
    assert call.cost is not None
    assert float(call.cost) == 12.5
    assert call.outcome == "unknown"
    assert call.started_at is not None
    assert call.started_at.isoformat() == "2026-12-04T16:00:00+00:00"
    async with database.sessions() as session:
        stored = await session.scalar(select(WebhookEvent.payload))
    assert stored is not None
    assert stored["data"]["brand_new_field"] == {"kept": True}


# Initiation failure


async def test_twilio_initiation_failure_marks_call_busy(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    metadata = {
        "type": "twilio",
        "body": {
            "CallSid": CALL_SID,
            "From": NUMBER,
            "To": "+15559998888",
            "CallStatus": "busy",
            "Direction": "outbound-api",
            "SipResponseCode": 486,
        },
    }

    response = await post_event(
        client, initiation_failure("conv_11", reason="busy", metadata=metadata)
    )

    assert response.status_code == 200
    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.conversation_id == "conv_11"
    assert call.status == "busy"
    assert call.failure_reason == "busy"
    assert call.direction == "outbound-api"
    assert call.from_number == NUMBER
    assert call.to_number == "+15559998888"
    assert call.team_id is not None
    assert call.details["carrier"] == "twilio"
    assert call.details["sip_status_code"] == "486"
    assert call.ended_at is not None


@pytest.mark.parametrize(
    ("reason", "status"),
    [("no-answer", "no-answer"), ("unknown", "failed"), ("new-reason", "failed")],
)
async def test_sip_initiation_failure_statuses(
    client: httpx.AsyncClient, database: Database, reason: str, status: str
) -> None:
    metadata = {
        "type": "sip",
        "body": {
            "from_number": 14155550100,
            "to_number": "+15559998888",
            "sip_status_code": 480,
            "error_reason": "Temporarily Unavailable",
            "call_sid": "sip-call-7f3a",
        },
    }

    response = await post_event(
        client, initiation_failure("conv_12", reason=reason, metadata=metadata)
    )

    assert response.status_code == 200
    call = await call_by_conversation(database, "conv_12")
    assert call.status == status
    assert call.failure_reason == reason
    assert call.call_sid is None
    assert call.from_number == "14155550100"
    assert call.direction == "outbound"
    assert call.details == {
        "carrier": "sip",
        "sip_status_code": "480",
        "error_reason": "Temporarily Unavailable",
        "sip_call_id": "sip-call-7f3a",
    }


async def test_initiation_failure_keeps_first_terminal_status(
    client: httpx.AsyncClient, database: Database
) -> None:
    await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params(CALL_SID, "no-answer", sequence=2, to=NUMBER),
    )
    metadata = {"type": "twilio", "body": {"CallSid": CALL_SID}}

    await post_event(
        client, initiation_failure("conv_13", reason="busy", metadata=metadata)
    )

    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    assert call.status == "no-answer"
    assert call.failure_reason == "busy"


# Other events and bodies


async def test_unknown_event_type_is_ignored(
    client: httpx.AsyncClient, database: Database
) -> None:
    labels = {"source": "elevenlabs", "type": "other", "outcome": "ignored"}
    before = metric("renchi_webhook_events_total", **labels)
    payload = {
        "type": "post_call_sentiment",
        "event_timestamp": START_TIME,
        "data": {"conversation_id": "conv_14", "score": 0.8},
    }

    response = await post_event(client, payload)
    repeat = await post_event(client, payload)

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert repeat.json() == {"status": "duplicate"}
    assert metric("renchi_webhook_events_total", **labels) == before + 1
    async with database.sessions() as session:
        event = await session.scalar(select(WebhookEvent))
    assert event is not None
    assert event.event_type == "post_call_sentiment"
    assert event.outcome == "ignored"
    assert event.payload["data"]["score"] == 0.8
    assert await count(database, Call) == 0


async def test_unknown_event_without_conversation_is_accepted(
    client: httpx.AsyncClient, database: Database
) -> None:
    response = await post_event(client, {"type": "workspace_notice", "data": {}})

    assert response.status_code == 200
    assert await count(database, WebhookEvent) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {"conversation_id": "c"}}', "'type'"),
        (b'{"type": "post_call_transcription", "data": {}}', "conversation_id"),
        (b'{"type": "post_call_audio", "data": "x"}', "conversation_id"),
        (b'{"type": "post_call_transcription", "data": {', "not valid JSON"),
    ],
)
async def test_invalid_body_is_400_after_signature(
    client: httpx.AsyncClient, database: Database, body: bytes, message: str
) -> None:
    response = await post_event(client, body)

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert message in response.json()["error"]
    assert await count(database, WebhookEvent) == 0


async def test_invalid_body_with_bad_signature_is_401(
    client: httpx.AsyncClient,
) -> None:
    response = await post_event(
        client, b"not json", headers={"elevenlabs-signature": "t=1,v0=" + "0" * 64}
    )

    assert response.status_code == 401


# Audio


async def test_audio_stored_as_recording(make_client: Any, database: Database) -> None:
    await team_with_number(database, number=NUMBER)
    before = metric("renchi_recording_media_bytes_total", source="elevenlabs")
    async with make_client() as (client, runtime):
        response = await post_event(client, audio_event("conv_20", AUDIO_BASE64))
        root = runtime.storage.root

    assert response.status_code == 200
    call = await call_by_conversation(database, "conv_20")
    assert call.team_id is not None
    async with database.sessions() as session:
        recording = await session.scalar(select(Recording))
        event = await session.scalar(select(WebhookEvent))
    assert recording is not None
    assert recording.source == "elevenlabs"
    assert recording.media_status == "stored"
    assert recording.size_bytes == len(AUDIO)
    assert recording.storage_key == f"conv_20/{recording.id}.mp3"
    assert (root / recording.storage_key).read_bytes() == AUDIO
    assert event is not None
    assert event.payload["data"]["full_audio"] == {
        "recording_id": str(recording.id),
        "storage_key": recording.storage_key,
        "size_bytes": len(AUDIO),
        "content_type": "audio/mpeg",
    }
    assert stored_files(root) == [root / recording.storage_key]
    after = metric("renchi_recording_media_bytes_total", source="elevenlabs")
    assert after == before + len(AUDIO)
    document = await document_of(database, call.id)
    assert document["recordings"][0]["url"] == (
        f"/api/calls/{call.id}/recordings/{recording.id}"
    )


async def test_older_audio_field_is_stored(
    make_client: Any, database: Database
) -> None:
    async with make_client() as (client, runtime):
        response = await post_event(
            client, audio_event("conv_21", AUDIO_BASE64, field="audio_base_64")
        )
        root = runtime.storage.root

    assert response.status_code == 200
    async with database.sessions() as session:
        recording = await session.scalar(select(Recording))
    assert recording is not None
    assert (root / str(recording.storage_key)).read_bytes() == AUDIO


async def test_repeated_audio_keeps_one_file(
    make_client: Any, database: Database
) -> None:
    async with make_client() as (client, runtime):
        first = await post_event(client, audio_event("conv_22", AUDIO_BASE64))
        second = await post_event(client, audio_event("conv_22", AUDIO_BASE64))
        root = runtime.storage.root

    assert first.json() == {"status": "accepted"}
    assert second.json() == {"status": "duplicate"}
    assert await count(database, Recording) == 1
    assert len(stored_files(root)) == 1


async def test_audio_with_bad_signature_leaves_no_file(
    make_client: Any, database: Database
) -> None:
    body = json.dumps(audio_event("conv_23", AUDIO_BASE64)).encode()
    async with make_client() as (client, runtime):
        response = await post_event(
            client,
            body,
            headers={"elevenlabs-signature": signature(body, secret="other")},
        )
        root = runtime.storage.root

    assert response.status_code == 401
    assert stored_files(root) == []
    assert await count(database, WebhookEvent) == 0


async def test_invalid_audio_is_400_and_leaves_no_file(
    make_client: Any, database: Database
) -> None:
    broken = AUDIO_BASE64[:100] + "!!" + AUDIO_BASE64[100:]
    async with make_client() as (client, runtime):
        response = await post_event(client, audio_event("conv_24", broken))
        root = runtime.storage.root

    assert response.status_code == 400
    assert "base64" in response.json()["error"]
    assert stored_files(root) == []
    assert await count(database, WebhookEvent) == 0


async def test_signed_truncated_audio_is_400_without_file(
    make_client: Any, database: Database
) -> None:
    body = json.dumps(audio_event("conv_28", AUDIO_BASE64)).encode()
    async with make_client() as (client, runtime):
        response = await post_event(client, body[: len(body) // 2])
        root = runtime.storage.root

    assert response.status_code == 400
    assert stored_files(root) == []
    assert await count(database, WebhookEvent) == 0
    assert await count(database, Call) == 0


async def test_audio_in_other_event_is_not_kept(
    make_client: Any, database: Database
) -> None:
    payload = transcription("conv_25")
    payload["data"]["full_audio"] = AUDIO_BASE64
    async with make_client() as (client, runtime):
        response = await post_event(client, payload)
        root = runtime.storage.root

    assert response.status_code == 200
    assert stored_files(root) == []
    async with database.sessions() as session:
        event = await session.scalar(select(WebhookEvent))
    assert event is not None
    assert event.payload["data"]["full_audio"] == {
        "discarded": True,
        "size_bytes": len(AUDIO),
    }


async def test_empty_audio_is_accepted_without_recording(
    make_client: Any, database: Database
) -> None:
    async with make_client() as (client, runtime):
        response = await post_event(client, audio_event("conv_29", ""))
        root = runtime.storage.root

    assert response.json() == {"status": "accepted"}
    assert stored_files(root) == []
    assert await count(database, Recording) == 0
    async with database.sessions() as session:
        event = await session.scalar(select(WebhookEvent))
    assert event is not None
    assert event.payload["data"]["full_audio"] == {"discarded": True, "size_bytes": 0}


async def test_audio_outside_parsed_data_is_discarded(
    make_client: Any, database: Database
) -> None:
    body = (
        '{"type":"workspace_notice","data":{"full_audio":"'
        + AUDIO_BASE64
        + '"},"data":5}'
    ).encode()
    async with make_client() as (client, runtime):
        response = await post_event(client, body)
        root = runtime.storage.root

    assert response.status_code == 200
    assert stored_files(root) == []


async def test_storage_failure_is_503(
    make_client: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: AtomicWriter, target: Path | None = None) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AtomicWriter, "commit", fail)
    async with make_client() as (client, runtime):
        response = await post_event(client, audio_event("conv_30", AUDIO_BASE64))
        root = runtime.storage.root

    assert response.status_code == 503
    assert response.json()["code"] == "UNAVAILABLE"
    assert stored_files(root) == []
    assert await count(database, WebhookEvent) == 0


async def test_audio_limit_applies_to_post_call_path_only(
    make_client: Any, database: Database
) -> None:
    body = json.dumps(audio_event("conv_26", AUDIO_BASE64)).encode()
    async with make_client(max_body_bytes=4096, max_audio_body_bytes=len(body)) as (
        client,
        _,
    ):
        accepted = await post_event(client, body)
        too_large = await post_event(
            client, audio_event("conv_27", AUDIO_BASE64 + "QUFB")
        )
        other_path = await post_signed(
            client,
            "/api/webhooks/twilio/voice",
            voice_params(CALL_SID, to=NUMBER, Padding="x" * 5000),
        )

    assert accepted.status_code == 200
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert other_path.status_code == 413


async def test_busy_body_slots_answer_503(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(elevenlabs_route, "SLOT_WAIT_SECONDS", 0.2)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"type": "post_call_audio", "data": {"full_audio": "AAAA'
        await release.wait()
        yield b'"}}'

    async with make_client(max_concurrent_audio_bodies=1) as (client, _):
        first = asyncio.create_task(
            client.post(
                "/api/webhooks/elevenlabs",
                content=slow_body(),
                headers={"elevenlabs-signature": f"t={int(time.time())},v0={'0' * 64}"},
            )
        )
        await asyncio.sleep(0.1)
        second = await post_event(client, transcription("conv_busy"))
        release.set()
        first_response = await first

    assert second.status_code == 503
    assert second.json()["code"] == "UNAVAILABLE"
    assert first_response.status_code == 401
