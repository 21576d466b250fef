from __future__ import annotations

import base64

from sqlalchemy import select, update

from renchi.db.engine import Database
from renchi.db.models import Recording, Task
from renchi.db.models.base import utcnow
from tests.conftest import AppFactory, metric
from tests.support.factories import call_by_sid, team_with_number
from tests.support.fakes import FakeTwilioApi
from tests.support.servers import serve_app
from tests.support.twilio import AUTH_TOKEN, post_signed

NUMBER = "+14155550100"
RECORDING_PATH = "/api/webhooks/twilio/recording"
ACCOUNT_SID = "AC" + "1" * 32


def recording_params(
    base_url: str, *, recording_sid: str = "RE1", status: str = "completed"
) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": "CA1",
        "RecordingSid": recording_sid,
        "RecordingUrl": f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}",
        "RecordingStatus": status,
        "RecordingDuration": "37",
        "RecordingChannels": "2",
        "RecordingStartTime": "Fri, 04 Dec 2026 16:00:05 +0000",
        "RecordingSource": "DialVerb",
        "To": NUMBER,
    }


async def recordings(database: Database) -> list[Recording]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Recording))).all())


async def tasks(database: Database) -> list[Task]:
    async with database.sessions() as session:
        return list((await session.scalars(select(Task).order_by(Task.id))).all())


async def test_completed_recording_is_downloaded(
    make_client: AppFactory, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    fake = FakeTwilioApi()
    async with (
        serve_app(fake.app()) as api_url,
        make_client(twilio_api_url=api_url, twilio_account_sid=ACCOUNT_SID) as (
            client,
            runtime,
        ),
    ):
        response = await post_signed(client, RECORDING_PATH, recording_params(api_url))
        assert response.status_code == 200
        assert await runtime.worker().run_once() == 1

    [recording] = await recordings(database)
    assert recording.media_status == "stored"
    assert recording.duration_seconds == 37
    assert recording.channels == 2
    assert recording.size_bytes == len(fake.media)
    assert recording.storage_key is not None
    assert runtime.storage.path_for(recording.storage_key).read_bytes() == fake.media
    [request] = fake.requests
    assert request["path"].endswith("/Recordings/RE1.mp3")
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["headers"]["authorization"] == f"Basic {expected}"
    [task] = await tasks(database)
    assert task.state == "succeeded"
    call = await call_by_sid(database, "CA1")
    assert call is not None
    assert call.team_id is not None


async def test_foreign_recording_url_is_never_requested(
    make_client: AppFactory, database: Database
) -> None:
    api = FakeTwilioApi()
    elsewhere = FakeTwilioApi()
    before = metric("renchi_recording_urls_rejected_total")
    async with (
        serve_app(api.app()) as api_url,
        serve_app(elsewhere.app()) as other_url,
        make_client(twilio_api_url=api_url, twilio_account_sid=ACCOUNT_SID) as (
            client,
            runtime,
        ),
    ):
        response = await post_signed(
            client, RECORDING_PATH, recording_params(other_url)
        )
        ran = await runtime.worker().run_once()

    assert response.status_code == 200
    assert ran == 0
    assert elsewhere.requests == []
    assert api.requests == []
    [recording] = await recordings(database)
    assert recording.media_status == "rejected"
    assert await tasks(database) == []
    assert metric("renchi_recording_urls_rejected_total") == before + 1


async def test_lookalike_hosts_are_rejected(
    make_client: AppFactory, database: Database
) -> None:
    async with make_client(twilio_api_url="https://api.twilio.com") as (_, runtime):
        for url in [
            "https://api.twilio.com.evil.example/2010-04-01/Accounts/AC1/Recordings/RE1",
            "https://user:pass@api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "https://api.twilio.com:8443/2010-04-01/Accounts/AC1/Recordings/RE1",
            "file:///etc/passwd",
            "not a url",
        ]:
            assert not runtime.twilio.is_api_url(url), url
        assert runtime.twilio.is_api_url(
            "https://api.twilio.com:443/2010-04-01/Accounts/AC1/Recordings/RE1"
        )


async def test_download_retries_then_succeeds(
    make_client: AppFactory, database: Database
) -> None:
    fake = FakeTwilioApi(failures_before_success=1)
    async with (
        serve_app(fake.app()) as api_url,
        make_client(twilio_api_url=api_url, twilio_account_sid=ACCOUNT_SID) as (
            client,
            runtime,
        ),
    ):
        await post_signed(client, RECORDING_PATH, recording_params(api_url))
        worker = runtime.worker()
        assert await worker.run_once() == 1
        [task] = await tasks(database)
        assert task.state == "pending"
        assert task.attempts == 1
        assert task.due_at > utcnow()
        assert "503" in (task.last_error or "")
        async with database.transaction() as session:
            await session.execute(update(Task).values(due_at=utcnow()))
        assert await worker.run_once() == 1

    [task] = await tasks(database)
    assert task.state == "succeeded"
    assert task.attempts == 2
    [recording] = await recordings(database)
    assert recording.media_status == "stored"


async def test_missing_credentials_make_task_dead(
    make_client: AppFactory, database: Database
) -> None:
    fake = FakeTwilioApi()
    async with (
        serve_app(fake.app()) as api_url,
        make_client(twilio_api_url=api_url) as (client, runtime),
    ):
        await post_signed(client, RECORDING_PATH, recording_params(api_url))
        await runtime.worker().run_once()

    [task] = await tasks(database)
    assert task.state == "dead"
    assert "RENCHI_TWILIO_ACCOUNT_SID" in (task.last_error or "")
    assert fake.requests == []
    [recording] = await recordings(database)
    assert recording.media_status == "failed"


async def test_repeated_recording_callback_queues_once(
    make_client: AppFactory, database: Database
) -> None:
    async with make_client(twilio_api_url="http://127.0.0.1:9") as (client, _):
        params = recording_params("http://127.0.0.1:9")
        first = await post_signed(client, RECORDING_PATH, params)
        second = await post_signed(client, RECORDING_PATH, params)

    assert first.json() == {"status": "accepted"}
    assert second.json() == {"status": "duplicate"}
    assert len(await tasks(database)) == 1
    assert len(await recordings(database)) == 1


async def test_failed_recording_is_marked(
    make_client: AppFactory, database: Database
) -> None:
    async with make_client(twilio_api_url="http://127.0.0.1:9") as (client, _):
        await post_signed(
            client,
            RECORDING_PATH,
            recording_params("http://127.0.0.1:9", status="absent"),
        )

    [recording] = await recordings(database)
    assert recording.status == "absent"
    assert recording.media_status == "failed"
    assert await tasks(database) == []
