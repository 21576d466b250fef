from __future__ import annotations

import httpx
from sqlalchemy import select

from renchi.db.engine import Database
from renchi.db.models import Recording, Task
from tests.support.factories import team_with_number
from tests.support.twilio import post_signed

NUMBER = "+14155550100"
ACCOUNT_SID = "AC" + "0" * 32


async def test_completed_recording_queues_download(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)

    response = await post_signed(
        client,
        "/api/webhooks/twilio/recording",
        {
            "AccountSid": ACCOUNT_SID,
            "CallSid": "CA" + "2" * 32,
            "RecordingSid": "RE" + "2" * 32,
            "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/"
            f"{ACCOUNT_SID}/Recordings/RE{'2' * 32}",
            "RecordingStatus": "completed",
            "RecordingDuration": "12",
        },
    )

    assert response.status_code == 200
    async with database.sessions() as session:
        recording = await session.scalar(select(Recording))
        task = await session.scalar(select(Task))
    assert recording is not None
    assert recording.media_status == "pending"
    assert task is not None
    assert task.kind == "fetch_recording"
    assert task.payload == {"recording_id": str(recording.id)}
