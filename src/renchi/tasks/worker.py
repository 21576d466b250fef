"""The worker: claims due tasks and runs each with the handler of its kind.

A handler raises `RetryableTaskError` (with an optional delay) or
`PermanentTaskError` to steer what happens next. Any other exception is
logged and retried with backoff, because most failures here are an outside
service or the database being away for a while. While the database is
unreachable or not migrated the worker keeps polling, and logs the outage once
when it begins and once when it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from renchi.asynctools import wait_for_stop
from renchi.db.engine import Database, is_schema_error, is_unavailable
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


class DatabaseOutage:
    """A database outage as the worker sees it.

    It logs the start, a change of cause and the end, each once, however many
    polls fail in between.
    """

    def __init__(self) -> None:
        self._since: float | None = None
        self._cause: str | None = None

    def failed(self, error: BaseException, *, schema: bool) -> None:
        """Record a poll that failed; log only when the outage begins or its cause changes."""
        cause = "schema" if schema else "unreachable"
        if cause == self._cause:
            return
        if self._since is None:
            self._since = time.monotonic()
        self._cause = cause
        detail = _first_line(error)
        if schema:
            logger.warning(
                "worker paused: database schema missing or behind; run `renchi migrate`",
                error=detail,
            )
        else:
            logger.warning("worker cannot reach the database", error=detail)

    def succeeded(self) -> None:
        """Record a poll that reached the database; log the end of an outage."""
        if self._since is None:
            return
        logger.info(
            "worker reached the database again",
            down_seconds=round(time.monotonic() - self._since, 3),
        )
        self._since = None
        self._cause = None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


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
        self.outage = DatabaseOutage()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Claim and run tasks until `stop` is called."""
        logger.info("worker started", concurrency=self._concurrency)
        while not self._stopping.is_set():
            try:
                ran = await self.run_once()
            except Exception as error:
                ran = 0
                if is_unavailable(error) or is_schema_error(error):
                    self.outage.failed(error, schema=is_schema_error(error))
                else:
                    logger.exception("worker loop failed")
            else:
                self.outage.succeeded()
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
