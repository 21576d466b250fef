"""Replaying the spool into the database once it is reachable again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy import text

from renchi.asynctools import bounded, wait_for_stop
from renchi.db.engine import Database, is_schema_error, is_unavailable
from renchi.observability import metrics
from renchi.webhooks.intake import EventProcessor, InboundEvent
from renchi.webhooks.spool import Spool

logger = structlog.get_logger(__name__)


@dataclass
class ReplayResult:
    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    remaining: int = 0


class SpoolReplayer:
    """Moves spooled events into the database, oldest first, through the processor."""

    def __init__(
        self, *, spool: Spool, processor: EventProcessor, database: Database
    ) -> None:
        self._spool = spool
        self._processor = processor
        self._database = database

    async def probe(self, timeout: float) -> bool:
        """Check that the database responds, and record the result in the processor's health."""

        async def select_one() -> None:
            async with self._database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        try:
            await bounded(select_one(), timeout)
        except Exception as error:
            if not is_unavailable(error):
                raise
            self._processor.health.mark_down(error)
            return False
        self._processor.health.mark_up()
        return True

    async def replay_once(self) -> ReplayResult:
        """Replay every pending event until done or until the database goes away."""
        result = ReplayResult()
        with self._spool.replay_lock() as held:
            if not held:
                return result
            paths = self._spool.pending()
            for index, path in enumerate(paths):
                try:
                    record = self._spool.read(path)
                    event = InboundEvent.from_record(record)
                except (OSError, ValueError, KeyError, TypeError) as error:
                    logger.error(
                        "spooled event unreadable", path=str(path), error=str(error)
                    )
                    self._spool.record_failure(
                        path, {"unreadable": path.name}, str(error)
                    )
                    result.failed += 1
                    continue
                try:
                    processed = await self._processor.apply(event)
                except Exception as error:
                    if is_unavailable(error):
                        self._processor.health.mark_down(error)
                        result.remaining = len(paths) - index
                        logger.info(
                            "spool replay paused: database unavailable",
                            remaining=result.remaining,
                        )
                        break
                    if is_schema_error(error):
                        # Events wait for `renchi migrate` instead of using up attempts.
                        result.remaining = len(paths) - index
                        logger.info(
                            "spool replay paused: schema not migrated",
                            remaining=result.remaining,
                        )
                        break
                    logger.exception(
                        "spooled event failed to apply", path=path.name, type=event.type
                    )
                    if await self._processor.store_unapplied(event) is not None:
                        self._spool.remove(path)
                        metrics.spool_replayed.labels(event.source, "failed").inc()
                        result.failed += 1
                        continue
                    moved = self._spool.record_failure(
                        path, record, type(error).__name__
                    )
                    metrics.spool_replayed.labels(event.source, "failed").inc()
                    result.failed += 1
                    if moved:
                        logger.error(
                            "spooled event set aside after repeated failures",
                            path=path.name,
                        )
                    continue
                self._spool.remove(path)
                if processed.status == "duplicate":
                    result.duplicates += 1
                    metrics.spool_replayed.labels(event.source, "duplicate").inc()
                else:
                    result.applied += 1
                    metrics.spool_replayed.labels(event.source, "applied").inc()
        self._spool.refresh_metrics()
        if result.applied or result.duplicates or result.failed:
            logger.info(
                "spool replayed",
                applied=result.applied,
                duplicates=result.duplicates,
                failed=result.failed,
                remaining=result.remaining,
            )
        return result

    async def run(
        self, *, interval: float, stop: asyncio.Event, probe_timeout: float
    ) -> None:
        """Probe the database and replay the spool every `interval` seconds until `stop`."""
        while not stop.is_set():
            try:
                if await self.probe(probe_timeout) and self._spool.pending():
                    await self.replay_once()
                else:
                    self._spool.refresh_metrics()
            except Exception:
                logger.exception("spool replay loop failed")
            await wait_for_stop(stop, interval)
