from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select, update
from structlog.typing import EventDict

from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import upgrade
from renchi.db.models import Task
from renchi.db.models.base import utcnow
from renchi.tasks import queue, worker
from renchi.tasks.worker import PermanentTaskError, RetryableTaskError, Worker
from tests.conftest import metric
from tests.support.servers import TcpProxy

UNREACHABLE = "worker cannot reach the database"
SCHEMA_MISSING = (
    "worker paused: database schema missing or behind; run `renchi migrate`"
)
BACK = "worker reached the database again"


def make_worker(database: Database, handlers: dict[str, Any]) -> Worker:
    return Worker(
        database=database,
        handlers=handlers,
        concurrency=4,
        poll_interval=0.01,
        lease_seconds=60,
    )


async def add_task(database: Database, kind: str, *, max_attempts: int = 3) -> int:
    async with database.transaction() as session:
        task = queue.enqueue(
            session, kind=kind, payload={"n": 1}, max_attempts=max_attempts
        )
        await session.flush()
        return task.id


async def get_task(database: Database, task_id: int) -> Task:
    async with database.sessions() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def make_due(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Task).where(Task.state == "pending").values(due_at=utcnow())
        )


async def test_success_records_result(database: Database) -> None:
    async def handler(payload: dict[str, Any]) -> dict[str, Any]:
        return {"seen": payload["n"]}

    task_id = await add_task(database, "echo")
    before = metric("renchi_tasks_total", kind="echo", state="succeeded")

    assert await make_worker(database, {"echo": handler}).run_once() == 1

    task = await get_task(database, task_id)
    assert task.state == "succeeded"
    assert task.result == {"seen": 1}
    assert task.attempts == 1
    assert task.finished_at is not None
    assert metric("renchi_tasks_total", kind="echo", state="succeeded") == before + 1


async def test_failures_back_off_then_die(database: Database) -> None:
    async def handler(payload: dict[str, Any]) -> None:
        raise RuntimeError("provider exploded")

    task_id = await add_task(database, "flaky", max_attempts=3)
    worker = make_worker(database, {"flaky": handler})
    delays = []
    for _ in range(2):
        assert await worker.run_once() == 1
        task = await get_task(database, task_id)
        assert task.state == "pending"
        delays.append((task.due_at - utcnow()).total_seconds())
        await make_due(database)
    assert await worker.run_once() == 1

    task = await get_task(database, task_id)
    assert task.state == "dead"
    assert task.attempts == 3
    assert task.last_error == "provider exploded"
    assert 5 < delays[0] < 15
    assert 15 < delays[1] < 30


async def test_retry_after_is_honoured(database: Database) -> None:
    async def handler(payload: dict[str, Any]) -> None:
        raise RetryableTaskError("rate limited", retry_after=600)

    task_id = await add_task(database, "limited")
    await make_worker(database, {"limited": handler}).run_once()

    task = await get_task(database, task_id)
    assert task.state == "pending"
    assert task.due_at - utcnow() > timedelta(seconds=590)


async def test_permanent_error_dies_at_once(database: Database) -> None:
    async def handler(payload: dict[str, Any]) -> None:
        raise PermanentTaskError("grant revoked")

    task_id = await add_task(database, "revoked", max_attempts=8)
    await make_worker(database, {"revoked": handler}).run_once()

    task = await get_task(database, task_id)
    assert task.state == "dead"
    assert task.attempts == 1


async def test_unknown_kind_dies(database: Database) -> None:
    task_id = await add_task(database, "mystery")
    await make_worker(database, {}).run_once()

    task = await get_task(database, task_id)
    assert task.state == "dead"
    assert "mystery" in (task.last_error or "")


async def test_retry_revives_dead_task(database: Database) -> None:
    task_id = await add_task(database, "mystery")
    await make_worker(database, {}).run_once()

    revived = await queue.retry(database, task_id)

    assert revived.state == "pending"
    assert revived.attempts == 0
    with pytest.raises(queue.TaskStateError):
        await queue.retry(database, task_id)
    with pytest.raises(queue.TaskNotFound):
        await queue.retry(database, 999_999)


async def test_expired_lease_is_claimed_again(database: Database) -> None:
    task_id = await add_task(database, "slow")
    [claimed] = await queue.claim(database, limit=1, lease_seconds=60)
    assert claimed.id == task_id
    assert await queue.claim(database, limit=1, lease_seconds=60) == []

    async with database.transaction() as session:
        await session.execute(
            update(Task).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    [again] = await queue.claim(database, limit=1, lease_seconds=60)

    assert again.id == task_id
    assert again.attempt == 2


async def test_future_task_waits(database: Database) -> None:
    async with database.transaction() as session:
        queue.enqueue(
            session,
            kind="later",
            payload={},
            max_attempts=1,
            due_at=utcnow() + timedelta(hours=1),
        )

    assert await queue.claim(database, limit=5, lease_seconds=60) == []


async def test_two_workers_never_share_a_task(database: Database) -> None:
    for _ in range(6):
        await add_task(database, "shared")

    first, second = await asyncio.gather(
        queue.claim(database, limit=4, lease_seconds=60),
        queue.claim(database, limit=4, lease_seconds=60),
    )

    assert sorted([len(first), len(second)]) == [2, 4]
    assert not {task.id for task in first} & {task.id for task in second}
    async with database.sessions() as session:
        states = set((await session.scalars(select(Task.state))).all())
    assert states == {"running"}


@pytest.fixture
def worker_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EventDict]]:
    """Capture what the worker logs, whatever logging an earlier test configured."""
    with structlog.testing.capture_logs() as entries:
        # A fresh proxy binds to the capturing configuration on first use.
        monkeypatch.setattr(
            worker, "logger", structlog.get_logger("renchi.tasks.worker")
        )
        yield entries


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record every poll of the queue: True when it reached the database."""
    polls: list[bool] = []
    claim = queue.claim

    async def counted(*args: Any, **kwargs: Any) -> list[queue.ClaimedTask]:
        try:
            found = await claim(*args, **kwargs)
        except Exception:
            polls.append(False)
            raise
        polls.append(True)
        return found

    monkeypatch.setattr(queue, "claim", counted)
    return polls


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 10 seconds")


def events(entries: list[EventDict], name: str) -> list[EventDict]:
    return [entry for entry in entries if entry["event"] == name]


async def test_outage_logged_once_each_way(
    proxied_database: Database,
    proxy: TcpProxy,
    claims: list[bool],
    worker_logs: list[EventDict],
) -> None:
    running = make_worker(proxied_database, {})
    task = asyncio.create_task(running.run())
    try:
        await wait_until(lambda: True in claims)
        proxy.cut()
        await wait_until(lambda: claims.count(False) >= 10)
        proxy.restore()
        await wait_until(lambda: bool(events(worker_logs, BACK)))
    finally:
        running.stop()
        await task

    assert len(events(worker_logs, UNREACHABLE)) == 1
    assert events(worker_logs, UNREACHABLE)[0]["log_level"] == "warning"
    [back] = events(worker_logs, BACK)
    assert back["down_seconds"] > 0
    assert events(worker_logs, "worker loop failed") == []


async def test_missing_schema_logged_once(
    tmp_path: Path, claims: list[bool], worker_logs: list[EventDict]
) -> None:
    fresh = create_database(Settings(), url=f"sqlite:///{tmp_path / 'fresh.db'}")
    running = make_worker(fresh, {})
    task = asyncio.create_task(running.run())
    try:
        await wait_until(lambda: claims.count(False) >= 10)
        await upgrade(fresh)
        await wait_until(lambda: bool(events(worker_logs, BACK)))
    finally:
        running.stop()
        await task
        await fresh.dispose()

    assert len(events(worker_logs, SCHEMA_MISSING)) == 1
    assert len(events(worker_logs, BACK)) == 1
    assert events(worker_logs, UNREACHABLE) == []
    assert events(worker_logs, "worker loop failed") == []
