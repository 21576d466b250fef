"""The database away: events are spooled, acknowledged with 200, and later land exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from renchi.db.engine import Database
from renchi.db.models import Call, WebhookEvent
from tests.conftest import AppFactory, metric
from tests.support.factories import call_by_sid, team_with_number
from tests.support.fakes import AGENT_TWIML, FakeElevenLabs
from tests.support.servers import TcpProxy, serve_app
from tests.support.twilio import post_signed, status_params, voice_params

NUMBER = "+14155550100"
STATUS_PATH = "/api/webhooks/twilio/status"
VOICE_PATH = "/api/webhooks/twilio/voice"


async def count_events(database: Database) -> dict[str, int]:
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(WebhookEvent.dedupe_key, func.count()).group_by(
                    WebhookEvent.dedupe_key
                )
            )
        ).all()
    return dict(rows)


async def test_status_spooled_then_replayed_once(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    spooled_before = metric(
        "renchi_spool_events_total", source="twilio", reason="database_unavailable"
    )
    async with make_client(runtime_database=proxied_database) as (client, runtime):
        proxy.cut()
        response = await post_signed(
            client,
            STATUS_PATH,
            status_params("CA1", "completed", sequence=3, to=NUMBER),
        )
        assert response.status_code == 200
        assert response.json() == {"status": "spooled"}
        assert len(runtime.spool.pending()) == 1
        assert await call_by_sid(database, "CA1") is None

        proxy.restore()
        assert await runtime.replayer.probe(2.0)
        result = await runtime.replayer.replay_once()
        again = await runtime.replayer.replay_once()

    assert result.applied == 1
    assert again.applied == 0
    assert runtime.spool.pending() == []
    call = await call_by_sid(database, "CA1")
    assert call is not None
    assert call.status == "completed"
    assert await count_events(database) == {"status:CA1:completed:3": 1}
    assert (
        metric(
            "renchi_spool_events_total", source="twilio", reason="database_unavailable"
        )
        == spooled_before + 1
    )


async def test_cut_during_load_loses_nothing(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    await team_with_number(database, number=NUMBER)
    statuses = ["initiated", "ringing", "in-progress", "completed"]
    params = [
        status_params(f"CA{call}", status, sequence=sequence, to=NUMBER)
        for call in range(25)
        for sequence, status in enumerate(statuses)
    ]
    async with make_client(runtime_database=proxied_database) as (client, runtime):

        async def cut_midway() -> None:
            await asyncio.sleep(0.05)
            proxy.cut()
            await asyncio.sleep(0.3)
            proxy.restore()

        cutter = asyncio.create_task(cut_midway())
        responses = []
        for start in range(0, len(params), 10):
            batch = params[start : start + 10]
            responses += await asyncio.gather(
                *(post_signed(client, STATUS_PATH, item) for item in batch)
            )
            await asyncio.sleep(0.01)
        await cutter
        assert await runtime.replayer.probe(2.0)
        await runtime.replayer.replay_once()

    assert all(response.status_code == 200 for response in responses)
    outcomes = {response.json()["status"] for response in responses}
    assert "spooled" in outcomes
    counts = await count_events(database)
    assert len(counts) == len(params)
    assert set(counts.values()) == {1}
    async with database.sessions() as session:
        completed = await session.scalar(
            select(func.count()).select_from(Call).where(Call.status == "completed")
        )
    assert completed == 25


async def test_lost_commit_ack_replays_as_duplicate(
    make_client: AppFactory, database: Database
) -> None:
    async with make_client() as (client, runtime):
        real_apply = runtime.processor.apply

        async def apply_then_drop(event):  # type: ignore[no-untyped-def]
            await real_apply(event)
            raise ConnectionResetError("connection lost after COMMIT was sent")

        runtime.processor.apply = apply_then_drop  # type: ignore[method-assign]
        response = await post_signed(
            client, STATUS_PATH, status_params("CA2", "ringing", sequence=1, to=NUMBER)
        )
        runtime.processor.apply = real_apply  # type: ignore[method-assign]
        runtime.processor.health.mark_up()
        result = await runtime.replayer.replay_once()

    assert response.json() == {"status": "spooled"}
    assert result.duplicates == 1
    assert result.applied == 0
    assert await count_events(database) == {"status:CA2:ringing:1": 1}


async def test_stalled_database_times_out_to_spool(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    async with make_client(
        runtime_database=proxied_database, database_timeout_seconds=0.5
    ) as (client, runtime):
        proxy.stall()
        started = asyncio.get_running_loop().time()
        response = await post_signed(
            client, STATUS_PATH, status_params("CA3", "ringing", sequence=1, to=NUMBER)
        )
        elapsed = asyncio.get_running_loop().time() - started
        proxy.cut()
        proxy.restore()
        assert await runtime.replayer.probe(2.0)
        await runtime.replayer.replay_once()

    assert response.json() == {"status": "spooled"}
    # Generous bound: only checks that the request did not wait for the database.
    assert elapsed < 5
    assert await count_events(database) == {"status:CA3:ringing:1": 1}


async def test_voice_routes_from_memory_when_database_down(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    team = await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(
            runtime_database=proxied_database,
            elevenlabs_api_url=url,
            elevenlabs_api_key="xi-test",
        ) as (client, runtime),
    ):
        assert runtime.routes.get(NUMBER) is not None
        proxy.cut()
        response = await post_signed(client, VOICE_PATH, voice_params("CA4", to=NUMBER))
        repeat = await post_signed(client, VOICE_PATH, voice_params("CA4", to=NUMBER))
        proxy.restore()
        assert await runtime.replayer.probe(2.0)
        await runtime.replayer.replay_once()

    assert response.status_code == 200
    assert response.text == AGENT_TWIML
    assert repeat.text == AGENT_TWIML
    assert len(fake.requests) == 1
    variables = fake.requests[0]["body"]["conversation_initiation_client_data"][
        "dynamic_variables"
    ]
    assert variables["team_name"] == "Acme Dental"
    assert variables["caller_known"] == "false"
    call = await call_by_sid(database, "CA4")
    assert call is not None
    assert call.team_id == team.id


async def test_database_and_spool_down_is_503(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    async with make_client(
        runtime_database=proxied_database, spool_dir=blocker / "spool"
    ) as (client, _):
        proxy.cut()
        status = await post_signed(
            client, STATUS_PATH, status_params("CA5", "ringing", sequence=1, to=NUMBER)
        )
        voice = await post_signed(client, VOICE_PATH, voice_params("CA6", to=NUMBER))
        ready = await client.get("/readyz")

    assert status.status_code == 503
    assert status.json()["code"] == "UNAVAILABLE"
    assert voice.status_code == 503
    assert ready.status_code == 503
    assert ready.json()["database"]["reachable"] is False
    assert ready.json()["spool"]["writable"] is False


async def test_ready_while_database_down_with_spool(
    make_client: AppFactory,
    database: Database,
    proxied_database: Database,
    proxy: TcpProxy,
) -> None:
    async with make_client(runtime_database=proxied_database) as (client, _):
        healthy = await client.get("/readyz")
        proxy.cut()
        degraded = await client.get("/readyz")

    assert healthy.status_code == 200
    assert healthy.json()["database"]["migrations"] == "current"
    assert degraded.status_code == 200
    assert degraded.json()["ready"] is True
    assert degraded.json()["database"]["reachable"] is False
    assert degraded.json()["spool"]["writable"] is True


async def test_failed_spool_events_can_be_requeued(
    make_client: AppFactory, database: Database
) -> None:
    async with make_client() as (_, runtime):
        event_record = {
            "source": "twilio",
            "type": "status",
            "dedupe_key": "status:CA9:ringing:1",
            "payload": status_params("CA9", "ringing", sequence=1, to=NUMBER),
            "received_at": "2026-12-04T16:00:00+00:00",
            "response": None,
        }
        path = await runtime.spool.append(event_record)
        for _ in range(5):
            runtime.spool.record_failure(path, runtime.spool.read(path), "boom")
        assert len(runtime.spool.failed()) == 1
        assert runtime.spool.pending() == []

        moved = runtime.spool.requeue_failed()
        result = await runtime.replayer.replay_once()

    assert moved == 1
    assert result.applied == 1
    assert runtime.spool.failed() == []
    assert await count_events(database) == {"status:CA9:ringing:1": 1}
