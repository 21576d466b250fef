"""Audio bodies streamed to the real application under uvicorn on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from renchi.config import Settings
from renchi.db.engine import Database
from renchi.db.models import Call, Recording, WebhookEvent
from renchi.runtime import Runtime, build_runtime
from renchi.web.app import create_app
from tests.conftest import metric
from tests.support.elevenlabs import (
    POST_CALL_PATH,
    WEBHOOK_SECRET,
    audio_event,
    post_event,
)
from tests.support.factories import team_with_number
from tests.support.servers import TcpProxy, serve_app

NUMBER = "+14155550100"
# 3 MiB of audio is 4 MiB of base64, so blocks join without padding between them.
RAW_BLOCK = os.urandom(3 * 1024 * 1024)
BASE64_BLOCK = base64.b64encode(RAW_BLOCK)
BLOCKS = 25  # 100 MiB of base64 text, 75 MiB of audio


@asynccontextmanager
async def served(
    settings: Settings, database: Database
) -> AsyncIterator[tuple[str, Runtime]]:
    """Run the real application through its lifespan under uvicorn; yield its URL."""
    runtime = build_runtime(settings, database=database)
    app = create_app(settings, runtime=runtime, background=False)
    async with app.router.lifespan_context(app), serve_app(app) as base_url:
        yield base_url, runtime


def body_parts(conversation_id: str) -> tuple[bytes, bytes]:
    prefix = (
        '{"type":"post_call_audio","event_timestamp":1796400061,'
        f'"data":{{"agent_id":"agent_acme","conversation_id":"{conversation_id}",'
        '"full_audio":"'
    ).encode()
    return prefix, b'"}}'


def large_body_signature(prefix: bytes, suffix: bytes) -> str:
    timestamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    mac.update(prefix)
    for _ in range(BLOCKS):
        mac.update(BASE64_BLOCK)
    mac.update(suffix)
    return f"t={timestamp},v0={mac.hexdigest()}"


async def large_body(prefix: bytes, suffix: bytes) -> AsyncIterator[bytes]:
    yield prefix
    for _ in range(BLOCKS):
        yield BASE64_BLOCK
    yield suffix


def files_under(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(path for path in root.rglob("*") if path.is_file())


async def count(database: Database, model: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_100_mb_audio_body_is_stored(
    settings: Settings, database: Database
) -> None:
    await team_with_number(database, number=NUMBER)
    prefix, suffix = body_parts("conv_big")
    expected = hashlib.sha256()
    for _ in range(BLOCKS):
        expected.update(RAW_BLOCK)
    bytes_before = metric("renchi_recording_media_bytes_total", source="elevenlabs")

    async with (
        served(settings, database) as (base_url, runtime),
        httpx.AsyncClient(base_url=base_url, timeout=120) as client,
    ):
        response = await client.post(
            POST_CALL_PATH,
            content=large_body(prefix, suffix),
            headers={
                "content-type": "application/json",
                "elevenlabs-signature": large_body_signature(prefix, suffix),
            },
        )
        root = runtime.storage.root

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    async with database.sessions() as session:
        recording = await session.scalar(select(Recording))
        payload = await session.scalar(select(WebhookEvent.payload))
    assert recording is not None
    assert recording.size_bytes == BLOCKS * len(RAW_BLOCK)
    stored = root / str(recording.storage_key)
    assert files_under(root) == [stored]
    digest = hashlib.sha256()
    with stored.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == expected.hexdigest()
    assert payload is not None
    assert len(json.dumps(payload)) < 1000
    bytes_after = metric("renchi_recording_media_bytes_total", source="elevenlabs")
    assert bytes_after == bytes_before + BLOCKS * len(RAW_BLOCK)


async def send_cut_off(base_url: str, *, chunked: bool) -> None:
    """Send headers and half of a signed audio body, then close the connection."""
    prefix, suffix = body_parts("conv_cut")
    body = prefix + BASE64_BLOCK + suffix
    mac = hmac.new(
        WEBHOOK_SECRET.encode(), f"{int(time.time())}.".encode() + body, hashlib.sha256
    )
    header = f"t={int(time.time())},v0={mac.hexdigest()}"
    host_port = base_url.removeprefix("http://")
    host, port = host_port.split(":")
    framing = (
        "Transfer-Encoding: chunked\r\n"
        if chunked
        else f"Content-Length: {len(body)}\r\n"
    )
    head = (
        f"POST {POST_CALL_PATH} HTTP/1.1\r\nHost: {host_port}\r\n"
        f"Content-Type: application/json\r\nElevenLabs-Signature: {header}\r\n"
        f"{framing}\r\n"
    ).encode()
    half = body[: len(body) // 2]
    if chunked:
        half = f"{len(body):x}\r\n".encode() + half
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + half)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    del reader


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_cut_off_body_leaves_nothing(
    settings: Settings, database: Database, chunked: bool
) -> None:
    before = metric("renchi_elevenlabs_audio_bodies_total", result="incomplete")
    labels = {"source": "elevenlabs", "type": "unknown", "outcome": "incomplete"}
    events_before = metric("renchi_webhook_events_total", **labels)

    async with served(settings, database) as (base_url, runtime):
        await send_cut_off(base_url, chunked=chunked)
        # The server notices the disconnect on its own time; wait up to 10 s.
        for _ in range(200):
            if (
                metric("renchi_elevenlabs_audio_bodies_total", result="incomplete")
                > before
            ):
                break
            await asyncio.sleep(0.05)
        root = runtime.storage.root

    after = metric("renchi_elevenlabs_audio_bodies_total", result="incomplete")
    assert after == before + 1
    assert metric("renchi_webhook_events_total", **labels) == events_before + 1
    assert files_under(root) == []
    assert await count(database, WebhookEvent) == 0
    assert await count(database, Call) == 0


async def test_audio_spooled_while_database_is_away(
    make_client: Any,
    database: Database,
    proxy: TcpProxy,
    proxied_database: Database,
) -> None:
    await team_with_number(database, number=NUMBER)
    audio = os.urandom(30_000)
    payload = audio_event("conv_spool", base64.b64encode(audio).decode())

    async with make_client(runtime_database=proxied_database) as (client, runtime):
        proxy.cut()
        response = await post_event(client, payload)
        root = runtime.storage.root
        stored_while_away = files_under(root)
        spooled = [path.read_text() for path in runtime.spool.pending()]

        proxy.restore()
        assert await runtime.replayer.probe(2.0)
        first = await runtime.replayer.replay_once()
        second = await runtime.replayer.replay_once()
        repeat = await post_event(client, payload)

    assert response.status_code == 200
    assert response.json() == {"status": "spooled"}
    assert len(stored_while_away) == 1
    assert stored_while_away[0].read_bytes() == audio
    assert len(spooled) == 1
    record = json.loads(spooled[0])
    assert record["payload"]["data"]["full_audio"]["size_bytes"] == len(audio)
    assert base64.b64encode(audio).decode()[:100] not in spooled[0]
    assert (first.applied, first.duplicates, first.failed) == (1, 0, 0)
    assert (second.applied, second.duplicates) == (0, 0)
    assert repeat.json() == {"status": "duplicate"}
    async with database.sessions() as session:
        recording = await session.scalar(select(Recording))
        events = (await session.scalars(select(WebhookEvent))).all()
    assert recording is not None
    assert root / str(recording.storage_key) == stored_while_away[0]
    assert recording.media_status == "stored"
    assert [(event.event_type, event.spooled) for event in events] == [
        ("post_call_audio", True)
    ]
    assert files_under(root) == stored_while_away
