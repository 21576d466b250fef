"""The tasks table as a queue.

A worker claims due tasks with `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite
runs one writer at a time anyway) and holds each for a lease. A task whose
worker died is claimed again once its lease runs out. Failures retry with
exponential backoff until `max_attempts`, then the task is dead with the
reason, until someone retries it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.engine import Database
from renchi.db.models import Task
from renchi.db.models.base import utcnow

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
DEAD = "dead"
STATES = (PENDING, RUNNING, SUCCEEDED, DEAD)

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0


class TaskNotFound(Exception):
    pass


class TaskStateError(Exception):
    """The task is not in a state that allows the operation."""


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    max_attempts: int,
    due_at: datetime | None = None,
) -> Task:
    """Add a task in the caller's transaction, so it exists only if that commits."""
    task = Task(
        kind=kind,
        payload=payload,
        state=PENDING,
        attempts=0,
        max_attempts=max_attempts,
        due_at=due_at or utcnow(),
    )
    session.add(task)
    return task


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


async def claim(
    database: Database, *, limit: int, lease_seconds: float
) -> list[ClaimedTask]:
    """Claim up to `limit` due tasks and mark them running until the lease ends."""
    now = utcnow()
    due = or_(
        (Task.state == PENDING) & (Task.due_at <= now),
        (Task.state == RUNNING) & (Task.locked_until < now),
    )
    async with database.transaction() as session:
        query = select(Task).where(due).order_by(Task.due_at, Task.id).limit(limit)
        if database.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        tasks = (await session.scalars(query)).all()
        claimed = []
        for task in tasks:
            task.state = RUNNING
            task.attempts += 1
            task.locked_until = now + timedelta(seconds=lease_seconds)
            claimed.append(
                ClaimedTask(
                    id=task.id,
                    kind=task.kind,
                    payload=dict(task.payload),
                    attempt=task.attempts,
                    max_attempts=task.max_attempts,
                )
            )
    return claimed


async def mark_succeeded(
    database: Database, task_id: int, result: dict[str, Any] | None
) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(
                state=SUCCEEDED,
                result=result,
                last_error=None,
                locked_until=None,
                finished_at=utcnow(),
            )
        )


async def mark_failed(
    database: Database,
    task: ClaimedTask,
    *,
    error: str,
    permanent: bool,
    retry_after: float | None = None,
) -> str:
    """Schedule the next attempt, or mark the task dead; return the new state."""
    now = utcnow()
    if permanent or task.attempt >= task.max_attempts:
        values: dict[str, Any] = {"state": DEAD, "finished_at": now}
    else:
        delay = max(backoff_seconds(task.attempt), retry_after or 0.0)
        values = {"state": PENDING, "due_at": now + timedelta(seconds=delay)}
    async with database.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.id == task.id)
            .values(last_error=error[:4000], locked_until=None, **values)
        )
    return str(values["state"])


def backoff_seconds(attempt: int) -> float:
    """Return the delay after failed attempt number `attempt`, with jitter of up to a quarter."""
    delay = min(BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1), BACKOFF_MAX_SECONDS)
    return delay * (1 + random.random() / 4)  # noqa: S311 - jitter, not a secret


async def retry(database: Database, task_id: int) -> Task:
    """Run a dead task again from its first attempt."""
    async with database.transaction() as session:
        task = await session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise TaskNotFound(f"Task {task_id} does not exist.")
        if task.state != DEAD:
            raise TaskStateError(
                f"Task {task_id} is {task.state}; only a dead task can be retried."
            )
        task.state = PENDING
        task.attempts = 0
        task.due_at = utcnow()
        task.finished_at = None
        return task


async def list_tasks(
    database: Database,
    *,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Task]:
    query = select(Task).order_by(Task.id.desc()).limit(limit)
    if state:
        query = query.where(Task.state == state)
    if kind:
        query = query.where(Task.kind == kind)
    async with database.sessions() as session:
        return list((await session.scalars(query)).all())


async def count_by_state(
    database: Database,
) -> tuple[dict[tuple[str, str], int], float]:
    """Count tasks by kind and state, and return the age of the oldest due pending task."""
    now = utcnow()
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(Task.kind, Task.state, func.count())
                .where(Task.state.in_((PENDING, RUNNING, DEAD)))
                .group_by(Task.kind, Task.state)
            )
        ).all()
        oldest = await session.scalar(
            select(func.min(Task.due_at)).where(
                Task.state == PENDING, Task.due_at <= now
            )
        )
    counts = {(kind, state): count for kind, state, count in rows}
    age = float((now - oldest).total_seconds()) if oldest else 0.0
    return counts, age


def describe(task: Task) -> dict[str, Any]:
    """Return a task as the JSON document the command line prints."""
    return {
        "id": task.id,
        "kind": task.kind,
        "state": task.state,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "due_at": _iso(task.due_at),
        "last_error": task.last_error,
        "payload": task.payload,
        "result": task.result,
        "created_at": _iso(task.created_at),
        "finished_at": _iso(task.finished_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
