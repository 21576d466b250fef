"""A realistic call replayed through HTTP in both modes, then read with `renchi calls show`."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from renchi.db.engine import Database
from tests.support.cli import show_call
from tests.support.elevenlabs import (
    PERSONALIZATION_SECRET,
    PERSONALIZE_PATH,
    audio_event,
    post_event,
    transcription,
    turns,
)
from tests.support.factories import call_by_sid, team_with_number
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"
CALLER = "+15550001111"
ACCOUNT_SID = "AC" + "0" * 32
CALL_SID = "CA" + "7" * 32
RECORDING_SID = "RE" + "7" * 32
TWILIO_API_URL = "http://twilio.test"
ELEVENLABS_API_URL = "http://elevenlabs.test"
REGISTER_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    '<Stream url="wss://elevenlabs.test/v1/convai/conversation"/></Connect></Response>'
)
TWILIO_MP3 = b"ID3" + os.urandom(4000)
ELEVENLABS_MP3 = b"ID3" + os.urandom(9000)


class FakeProviders:
    """ElevenLabs' register-call endpoint and Twilio's recording media, at the transport."""

    def __init__(self) -> None:
        self.registered: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (
            url.host == "elevenlabs.test"
            and url.path == "/v1/convai/twilio/register-call"
        ):
            assert request.headers["xi-api-key"] == "xi-test-key"
            self.registered.append(json.loads(request.content))
            return httpx.Response(200, text=REGISTER_TWIML)
        recording_path = (
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3"
        )
        if url.host == "twilio.test" and url.path == recording_path:
            return httpx.Response(
                200, content=TWILIO_MP3, headers={"content-type": "audio/mpeg"}
            )
        return httpx.Response(404)


def status(call_sid: str, value: str, sequence: int, **extra: str) -> dict[str, Any]:
    return status_params(call_sid, value, sequence=sequence, to=NUMBER, **extra)


async def test_register_call_mode_end_to_end(
    make_client: Any, database: Database, postgres_url: str, tmp_path: Path
) -> None:
    await team_with_number(database, number=NUMBER, mode="register_call")
    fake = FakeProviders()
    options = {
        "transport": httpx.MockTransport(fake.handle),
        "elevenlabs_api_key": SecretStr("xi-test-key"),
        "elevenlabs_api_url": ELEVENLABS_API_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_api_url": TWILIO_API_URL,
    }
    async with make_client(**options) as (client, runtime):
        voice = await post_signed(
            client, "/api/webhooks/twilio/voice", voice_params(CALL_SID, to=NUMBER)
        )
        assert voice.status_code == 200
        assert "<Connect>" in voice.text

        for sequence, value in enumerate(["ringing", "in-progress"], start=1):
            response = await post_signed(
                client, "/api/webhooks/twilio/status", status(CALL_SID, value, sequence)
            )
            assert response.status_code == 200
        completed = await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status(CALL_SID, "completed", 3, CallDuration="47"),
        )
        assert completed.status_code == 200

        recording = await post_signed(
            client,
            "/api/webhooks/twilio/recording",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": CALL_SID,
                "RecordingSid": RECORDING_SID,
                "RecordingUrl": f"{TWILIO_API_URL}/2010-04-01/Accounts/{ACCOUNT_SID}"
                f"/Recordings/{RECORDING_SID}",
                "RecordingStatus": "completed",
                "RecordingDuration": "45",
                "RecordingChannels": "2",
                "RecordingSource": "DialVerb",
            },
        )
        assert recording.status_code == 200

        transcribed = await post_event(
            client,
            transcription("conv_e2e_register", call_sid=CALL_SID, transcript=turns(12)),
        )
        assert transcribed.json() == {"status": "accepted"}
        audio = await post_event(
            client,
            audio_event("conv_e2e_register", base64.b64encode(ELEVENLABS_MP3).decode()),
        )
        assert audio.json() == {"status": "accepted"}

        assert await runtime.worker().run_once() == 1
        storage_root = runtime.storage.root

    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    document = await show_call(
        call.id, database_url=postgres_url, var_dir=tmp_path / "cli"
    )

    assert document["id"] == str(call.id)
    assert document["team"] == "acme-dental"
    assert document["mode"] == "register_call"
    assert document["call_sid"] == CALL_SID
    assert document["conversation_id"] == "conv_e2e_register"
    assert document["status"] == "completed"
    assert document["outcome"] == "success"
    assert document["summary"] == "The caller booked a cleaning for Tuesday at 10:00."
    assert document["duration_seconds"] == 47
    assert document["from_number"] == CALLER
    assert len(document["transcript"]) == 12
    assert document["transcript"][0]["message"].startswith("Turn 0")
    assert document["transcript"][9]["message"] is None
    recordings = {item["source"]: item for item in document["recordings"]}
    assert set(recordings) == {"twilio", "elevenlabs"}
    for source, content in (("twilio", TWILIO_MP3), ("elevenlabs", ELEVENLABS_MP3)):
        item = recordings[source]
        assert item["media_status"] == "stored"
        assert item["size_bytes"] == len(content)
        assert item["url"] == f"/api/calls/{call.id}/recordings/{item['id']}"
    assert [event["type"] for event in document["events"]] == [
        "voice",
        "status",
        "status",
        "status",
        "recording",
        "post_call_transcription",
        "post_call_audio",
    ]
    assert fake.registered[0]["agent_id"] == "agent_acme"
    variables = fake.registered[0]["conversation_initiation_client_data"][
        "dynamic_variables"
    ]
    assert variables["team_name"] == "Acme Dental"
    stored = sorted(path.read_bytes() for path in storage_root.rglob("*.mp3"))
    assert stored == sorted([TWILIO_MP3, ELEVENLABS_MP3])


async def test_native_mode_end_to_end(
    make_client: Any, database: Database, postgres_url: str, tmp_path: Path
) -> None:
    await team_with_number(database, number=NUMBER, mode="native")
    async with make_client() as (client, _):
        personalized = await client.post(
            PERSONALIZE_PATH,
            json={
                "caller_id": CALLER,
                "agent_id": "agent_acme",
                "called_number": NUMBER,
                "call_sid": CALL_SID,
            },
            headers={"authorization": f"Bearer {PERSONALIZATION_SECRET}"},
        )
        assert personalized.status_code == 200
        variables = personalized.json()["dynamic_variables"]
        assert variables["team_name"] == "Acme Dental"
        assert variables["caller_known"] == "false"

        transcribed = await post_event(
            client,
            transcription(
                "conv_e2e_native", call_sid=CALL_SID, transcript=turns(6), duration=38
            ),
        )
        assert transcribed.json() == {"status": "accepted"}
        audio = await post_event(
            client,
            audio_event("conv_e2e_native", base64.b64encode(ELEVENLABS_MP3).decode()),
        )
        assert audio.json() == {"status": "accepted"}

        again = await client.post(
            PERSONALIZE_PATH,
            json={"caller_id": CALLER, "called_number": NUMBER, "call_sid": "CA2"},
            headers={"x-webhook-secret": PERSONALIZATION_SECRET},
        )

    call = await call_by_sid(database, CALL_SID)
    assert call is not None
    document = await show_call(
        call.id, database_url=postgres_url, var_dir=tmp_path / "cli"
    )

    assert document["team"] == "acme-dental"
    assert document["mode"] == "native"
    assert document["agent_id"] == "agent_acme"
    assert document["status"] == "completed"
    assert document["outcome"] == "success"
    assert document["summary"] == "The caller booked a cleaning for Tuesday at 10:00."
    assert document["duration_seconds"] == 38
    assert document["from_number"] == CALLER
    assert document["to_number"] == NUMBER
    assert len(document["transcript"]) == 6
    assert [item["source"] for item in document["recordings"]] == ["elevenlabs"]
    assert document["recordings"][0]["media_status"] == "stored"
    assert document["recordings"][0]["size_bytes"] == len(ELEVENLABS_MP3)
    # The next call from the same number finds this one in its history.
    next_variables = again.json()["dynamic_variables"]
    assert next_variables["caller_known"] == "true"
    assert next_variables["caller_call_count"] == "1"
    assert next_variables["last_call_summary"] == document["summary"]
