"""The worker: claims due tasks and runs each with the handler of its kind.

A handler raises `RetryableTaskError` (with an optional delay) or
`PermanentTaskError` to steer what happens next. Any other exception is
logged and retried with backoff, because most failures here are an outside
service or the database being away for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from renchi.asynctools import wait_for_stop
from renchi.db.engine import Database, is_unavailable
from renchi.observability import metrics
from renchi.tasks import queue

logger = structlog.get_logger(__name__)

TaskHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class RetryableTaskError(Exception):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentTaskError(Exception):
    """A failure that another attempt cannot fix; the task goes straight to dead."""


class Worker:
    """Runs tasks from the queue until stopped."""

    def __init__(
        self,
        *,
        database: Database,
        handlers: Mapping[str, TaskHandler],
        concurrency: int,
        poll_interval: float,
        lease_seconds: float,
    ) -> None:
        self._database = database
        self._handlers = handlers
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._lease_seconds = lease_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Claim and run tasks until `stop` is called."""
        logger.info("worker started", concurrency=self._concurrency)
        while not self._stopping.is_set():
            try:
                ran = await self.run_once()
            except Exception as error:
                if not is_unavailable(error):
                    logger.exception("worker loop failed")
                else:
                    logger.warning("worker cannot reach the database", error=str(error))
                ran = 0
            if ran == 0:
                await wait_for_stop(self._stopping, self._poll_interval)
        logger.info("worker stopped")

    async def run_once(self) -> int:
        """Claim one batch of due tasks, run them, and return how many ran."""
        tasks = await queue.claim(
            self._database, limit=self._concurrency, lease_seconds=self._lease_seconds
        )
        if tasks:
            await asyncio.gather(*(self._run_task(task) for task in tasks))
        return len(tasks)

    async def _run_task(self, task: queue.ClaimedTask) -> None:
        log = logger.bind(task_id=task.id, kind=task.kind)
        handler = self._handlers.get(task.kind)
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            task_id=task.id, task_kind=task.kind
        ):
            try:
                if handler is None:
                    raise PermanentTaskError(f"No handler for task kind {task.kind!r}.")
                log.debug("task attempt", attempt=f"{task.attempt}/{task.max_attempts}")
                result = await handler(task.payload)
            except PermanentTaskError as error:
                await self._fail(task, log, error=error, permanent=True)
            except RetryableTaskError as error:
                await self._fail(task, log, error=error, retry_after=error.retry_after)
            except Exception as error:
                log.exception("task raised an unexpected error")
                await self._fail(task, log, error=error)
            else:
                await queue.mark_succeeded(self._database, task.id, result)
                metrics.tasks_finished.labels(task.kind, queue.SUCCEEDED).inc()
                log.info("task succeeded", attempt=task.attempt)
            finally:
                metrics.task_duration.labels(task.kind).observe(
                    time.perf_counter() - started
                )

    async def _fail(
        self,
        task: queue.ClaimedTask,
        log: structlog.stdlib.BoundLogger,
        *,
        error: Exception,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        message = str(error) or type(error).__name__
        state = await queue.mark_failed(
            self._database,
            task,
            error=message,
            permanent=permanent,
            retry_after=retry_after,
        )
        label = "retry" if state == queue.PENDING else queue.DEAD
        metrics.tasks_finished.labels(task.kind, label).inc()
        if state == queue.DEAD:
            log.error("task is dead", attempt=task.attempt, error=message)
        else:
            log.warning("task failed; will retry", attempt=task.attempt, error=message)


async def refresh_queue_metrics(database: Database) -> None:
    """Set the task gauges from a count in the database."""
    counts, oldest_age = await queue.count_by_state(database)
    metrics.tasks_queued.clear()
    for (kind, state), count in counts.items():
        metrics.tasks_queued.labels(kind, state).set(count)
    metrics.tasks_oldest_pending_age.set(oldest_age)
