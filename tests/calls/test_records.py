"""Joining a conversation to its Twilio call when two transactions race."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from renchi.calls.records import lock_call_by_conversation, lock_call_by_sid
from renchi.db.engine import Database
from renchi.db.models import Call

CALL_SID = "CA" + "5" * 32
CONVERSATION_ID = "conv_race"


async def calls(database: Database) -> list[Call]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Call))).all())


async def join_in_transaction(database: Database) -> None:
    async with database.transaction() as session:
        call, _ = await lock_call_by_conversation(
            session, CONVERSATION_ID, call_sid=CALL_SID, defaults={}
        )
        call.outcome = "success"


async def test_join_waits_for_concurrent_conversation_row(database: Database) -> None:
    async with database.transaction() as session:
        await lock_call_by_sid(session, CALL_SID, defaults={"status": "in-progress"})

    # The audio side inserts the conversation's own row and leaves it uncommitted
    # while the transcription side tries to give the Twilio row the same id.
    async with database.transaction() as audio_session:
        audio_call, created = await lock_call_by_conversation(
            audio_session, CONVERSATION_ID, call_sid=None, defaults={}
        )
        audio_call.summary = "from the audio side"
        join = asyncio.create_task(join_in_transaction(database))
        await asyncio.sleep(0.5)
        assert not join.done()
    await asyncio.wait_for(join, 10)

    assert created
    rows = await calls(database)
    assert len(rows) == 1
    assert rows[0].call_sid == CALL_SID
    assert rows[0].conversation_id == CONVERSATION_ID
    assert rows[0].status == "in-progress"
    assert rows[0].outcome == "success"
    assert rows[0].summary == "from the audio side"


async def test_conversation_row_waits_for_concurrent_join(database: Database) -> None:
    async with database.transaction() as session:
        await lock_call_by_sid(session, CALL_SID, defaults={})

    async def audio_side() -> bool:
        async with database.transaction() as session:
            call, created = await lock_call_by_conversation(
                session, CONVERSATION_ID, call_sid=None, defaults={}
            )
            call.summary = "from the audio side"
            return created

    # The transcription side joins first and keeps its transaction open while
    # the audio side tries to create the conversation's own row.
    async with database.transaction() as session:
        call, _ = await lock_call_by_conversation(
            session, CONVERSATION_ID, call_sid=CALL_SID, defaults={}
        )
        call.outcome = "success"
        audio = asyncio.create_task(audio_side())
        await asyncio.sleep(0.5)
        assert not audio.done()
    created = await asyncio.wait_for(audio, 10)

    assert not created
    rows = await calls(database)
    assert len(rows) == 1
    assert rows[0].call_sid == CALL_SID
    assert rows[0].outcome == "success"
    assert rows[0].summary == "from the audio side"


async def test_sequential_join_merges_rows(database: Database) -> None:
    async with database.transaction() as session:
        conversation_call, _ = await lock_call_by_conversation(
            session, CONVERSATION_ID, call_sid=None, defaults={}
        )
        conversation_call.summary = "kept"
        conversation_call.status = "completed"
    async with database.transaction() as session:
        await lock_call_by_sid(session, CALL_SID, defaults={"status": "ringing"})

    await join_in_transaction(database)

    rows = await calls(database)
    assert len(rows) == 1
    assert rows[0].call_sid == CALL_SID
    assert rows[0].conversation_id == CONVERSATION_ID
    assert rows[0].summary == "kept"
    assert rows[0].status == "completed"


async def test_conversation_of_other_call_stays_apart(database: Database) -> None:
    async with database.transaction() as session:
        other, _ = await lock_call_by_sid(session, "CA" + "6" * 32, defaults={})
        other.conversation_id = CONVERSATION_ID
    async with database.transaction() as session:
        await lock_call_by_sid(session, CALL_SID, defaults={})

    await join_in_transaction(database)

    rows = {row.call_sid: row for row in await calls(database)}
    assert len(rows) == 2
    assert rows[CALL_SID].conversation_id is None
    assert rows["CA" + "6" * 32].outcome == "success"
