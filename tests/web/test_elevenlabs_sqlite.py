"""The ElevenLabs webhooks on SQLite, the embedded database of a local run."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import upgrade
from tests.support.elevenlabs import (
    PERSONALIZATION_SECRET,
    PERSONALIZE_PATH,
    audio_event,
    post_event,
    transcription,
)
from tests.support.factories import call_by_sid, document_of, team_with_number

NUMBER = "+14155550100"
CALL_SID = "CA" + "3" * 32


@pytest.fixture
async def sqlite_database(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[Database]:
    database = create_database(settings, url=f"sqlite:///{tmp_path / 'renchi.db'}")
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def test_call_from_elevenlabs_events(
    make_client: Any, sqlite_database: Database
) -> None:
    await team_with_number(sqlite_database, number=NUMBER, mode="native")
    audio = os.urandom(5000)

    async with make_client(runtime_database=sqlite_database) as (client, runtime):
        first_audio = await post_event(
            client, audio_event("conv_sqlite", base64.b64encode(audio).decode())
        )
        transcribed = await post_event(
            client, transcription("conv_sqlite", call_sid=CALL_SID)
        )
        personalized = await client.post(
            PERSONALIZE_PATH,
            json={"caller_id": "+15550001111", "called_number": NUMBER},
            headers={"x-webhook-secret": PERSONALIZATION_SECRET},
        )
        root = runtime.storage.root

    assert first_audio.json() == {"status": "accepted"}
    assert transcribed.json() == {"status": "accepted"}
    call = await call_by_sid(sqlite_database, CALL_SID)
    assert call is not None
    document = await document_of(sqlite_database, call.id)
    assert document["conversation_id"] == "conv_sqlite"
    assert document["mode"] == "native"
    assert len(document["transcript"]) == 4
    assert len(document["recordings"]) == 1
    recording_key = f"conv_sqlite/{document['recordings'][0]['id']}.mp3"
    assert (root / recording_key).read_bytes() == audio
    variables = personalized.json()["dynamic_variables"]
    assert variables["caller_known"] == "true"
    assert variables["last_call_summary"] == document["summary"]
