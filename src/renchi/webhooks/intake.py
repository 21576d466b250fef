"""Storing verified webhook events exactly once, or spooling them when that fails.

Every webhook, whatever its source, ends here after its signature is verified and
its body parses. `EventProcessor.process` applies the event to the call
records in one transaction together with its `webhook_events` row, whose
unique `(source, dedupe_key)` makes a repeat change nothing. When the database
cannot take the event, the event goes to the local spool and is replayed later
through the same code, so it still lands exactly once.
"""

from __future__ import annotations

import functools
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.asynctools import bounded
from renchi.db.engine import Database, is_schema_error, is_unavailable
from renchi.db.models import WebhookEvent
from renchi.db.models.base import clean_json, clean_text, utcnow
from renchi.db.upsert import dialect_insert
from renchi.observability import metrics
from renchi.webhooks.spool import Spool, SpoolError

logger = structlog.get_logger(__name__)


MAX_TYPE_LENGTH = 64
MAX_KEY_LENGTH = 255


def storable_key(key: str) -> str:
    """Return `key`, or a digest of it when the key column could not store it as is."""
    if len(key) <= MAX_KEY_LENGTH and clean_text(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class InboundEvent:
    """A verified, parsed webhook event, as stored in the database or the spool."""

    source: str
    type: str
    dedupe_key: str
    payload: dict[str, Any]
    received_at: datetime
    # The response already sent for this event, stored so that a repeat gets the same.
    response: str | None = None
    spooled: bool = False

    def __post_init__(self) -> None:
        # Handlers look values up and store them, so what PostgreSQL refuses
        # (NUL characters, lone surrogates, NaN) goes before any of them runs.
        self.payload = clean_json(self.payload)
        self.type = clean_text(self.type)[:MAX_TYPE_LENGTH]
        self.dedupe_key = storable_key(self.dedupe_key)

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.type,
            "dedupe_key": self.dedupe_key,
            "payload": self.payload,
            "received_at": self.received_at.isoformat(),
            "response": self.response,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> InboundEvent:
        return cls(
            source=str(record["source"]),
            type=str(record["type"]),
            dedupe_key=str(record["dedupe_key"]),
            payload=dict(record["payload"]),
            received_at=datetime.fromisoformat(record["received_at"]),
            response=record.get("response"),
            spooled=True,
        )


@dataclass
class Applied:
    """The result of applying an event: its call, its outcome and what comes after."""

    call_id: uuid.UUID | None
    outcome: str = "accepted"
    # Anything the web layer needs after the commit, such as the route of a call.
    followup: Any = None
    # A Core UPDATE left for the processor, which sends it in the same round
    # trip as the event insert on PostgreSQL (as a data-modifying CTE).
    final_update: FinalUpdate | None = None


@dataclass(frozen=True)
class FinalUpdate:
    """An UPDATE whose values are all named bind parameters, and those values.

    No parameter name may equal a column name of either table, because
    execute() turns such a parameter into one more SET clause.
    """

    statement: Any
    parameters: dict[str, Any]


EventHandler = Callable[[AsyncSession, InboundEvent], Awaitable[Applied]]


@dataclass
class Processed:
    # stored: kept with outcome `failed` because its handler raised.
    status: Literal["applied", "duplicate", "spooled", "stored", "unavailable"]
    applied: Applied | None = None
    # For a duplicate: what the first delivery stored.
    stored_response: str | None = None
    stored_call_id: uuid.UUID | None = None
    error: BaseException | None = field(default=None, repr=False)


FAILED = "failed"


class EventUnavailable(Exception):
    """Neither the database nor the spool could keep the event."""


class _Duplicate(Exception):
    def __init__(self, response: str | None, call_id: uuid.UUID | None) -> None:
        self.response = response
        self.call_id = call_id


class DatabaseHealth:
    """Remembers a recent database failure so that requests skip straight to the spool.

    After a failure the database is left alone for `pause_seconds`; a successful
    transaction or the spool replayer's probe clears the mark.
    """

    def __init__(self, *, pause_seconds: float = 2.0) -> None:
        self._pause_seconds = pause_seconds
        self._down_until = 0.0
        self.last_error: str | None = None

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._down_until

    def mark_down(self, error: BaseException) -> None:
        self._down_until = time.monotonic() + self._pause_seconds
        self.last_error = type(error).__name__
        metrics.database_up.set(0)

    def mark_up(self) -> None:
        self._down_until = 0.0
        self.last_error = None
        metrics.database_up.set(1)


_EVENT_COLUMNS = (
    "source",
    "event_type",
    "dedupe_key",
    "call_id",
    "payload",
    "outcome",
    "response",
    "received_at",
    "spooled",
    "created_at",
)


@functools.cache
def _event_insert(dialect: str) -> Any:
    """Build once per dialect the INSERT that skips a duplicate and returns the new id."""
    table = WebhookEvent.__table__
    # Prefixed names: execute() adds a parameter named like a column of an
    # updated table as one more SET clause, so none may match a column name.
    values = {
        name: bindparam(f"event_row_{name}", type_=table.c[name].type)
        for name in _EVENT_COLUMNS
    }
    return (
        dialect_insert(dialect, table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
        .returning(table.c.id)
    )


@functools.lru_cache(maxsize=256)
def _event_insert_with(update: Any) -> Any:
    """Return the PostgreSQL event insert carrying `update` as a data-modifying CTE."""
    return _event_insert("postgresql").add_cte(update.cte("final_update"))


async def _insert_event(
    session: AsyncSession, event: InboundEvent, applied: Applied
) -> int | None:
    """Insert the event row, with the handler's final update; return None for a duplicate.

    On a duplicate the update has run too, and the caller rolls both back.
    """
    connection = await session.connection()
    dialect = connection.dialect.name
    statement = _event_insert(dialect)
    values = {
        "source": event.source,
        "event_type": event.type,
        "dedupe_key": event.dedupe_key,
        "call_id": applied.call_id,
        "payload": event.payload,
        "outcome": applied.outcome,
        "response": event.response,
        "received_at": event.received_at,
        "spooled": event.spooled,
        "created_at": utcnow(),
    }
    parameters = {f"event_row_{name}": value for name, value in values.items()}
    final = applied.final_update
    if final is not None and dialect == "postgresql":
        statement = _event_insert_with(final.statement)
        parameters.update(final.parameters)
    elif final is not None:
        await connection.execute(final.statement, final.parameters)
    result = await connection.execute(statement, parameters)
    inserted: int | None = result.scalar()
    return inserted


class EventProcessor:
    """Applies events once, spooling the ones the database cannot take."""

    def __init__(
        self,
        *,
        database: Database,
        spool: Spool,
        handlers: Mapping[tuple[str, str], EventHandler],
        timeout: float,
        health: DatabaseHealth | None = None,
    ) -> None:
        self._database = database
        self._spool = spool
        self._handlers = handlers
        self._timeout = timeout
        self.health = health or DatabaseHealth()

    async def process(
        self, event: InboundEvent, *, spool_on_failure: bool = True
    ) -> Processed:
        """Apply `event`, or spool it when the database cannot take it.

        With `spool_on_failure=False` a failure is returned as `unavailable` and
        the caller spools the event itself with `spool`.
        Raises EventUnavailable when the spool fails too.
        """
        log = logger.bind(
            source=event.source, type=event.type, dedupe_key=event.dedupe_key
        )
        if self.health.paused:
            error: BaseException = ConnectionError("database marked unavailable")
            return await self._on_failure(
                event, error, spool_on_failure, reason="database_unavailable"
            )
        try:
            processed = await self.apply(event)
        except Exception as error:
            if is_unavailable(error):
                self.health.mark_down(error)
                log.warning("database unavailable for webhook event", error=repr(error))
                return await self._on_failure(
                    event, error, spool_on_failure, reason="database_unavailable"
                )
            if is_schema_error(error):
                # Every event fails alike until `renchi migrate` runs; the spool keeps them.
                log.warning("database schema not ready for webhook event")
                return await self._on_failure(
                    event, error, spool_on_failure, reason="schema_not_ready"
                )
            log.exception("applying webhook event failed")
            stored = await self.store_unapplied(event)
            if stored is not None:
                return stored
            return await self._on_failure(
                event, error, spool_on_failure, reason="error"
            )
        self.health.mark_up()
        return processed

    async def store_unapplied(self, event: InboundEvent) -> Processed | None:
        """Keep an event whose handler failed as a row with outcome `failed`.

        A payload the handler cannot apply (a bug, or a value no column takes)
        must not be lost, and must not be retried forever either: the row keeps
        it, deduplicated like any event, for an operator to inspect. Returns
        None when even that fails.
        """
        # TODO: a command that applies stored `failed` events again once the
        # handler is fixed; until then they are only kept and counted.

        async def store() -> int | None:
            async with self._database.transaction() as session:
                return await _insert_event(
                    session, event, Applied(call_id=None, outcome=FAILED)
                )

        try:
            inserted = await bounded(store(), self._timeout)
        except Exception as error:
            logger.warning(
                "storing the unapplied webhook event failed",
                source=event.source,
                type=event.type,
                error=type(error).__name__,
            )
            return None
        label = self.type_label(event)
        if inserted is None:
            metrics.webhook_events.labels(event.source, label, "duplicate").inc()
            return Processed(status="duplicate")
        metrics.webhook_events.labels(event.source, label, FAILED).inc()
        logger.error(
            "webhook event stored without being applied",
            source=event.source,
            type=event.type,
            event_id=inserted,
        )
        return Processed(status="stored")

    async def apply(self, event: InboundEvent) -> Processed:
        """Apply `event` in one transaction; raise whatever the database raises."""
        try:
            applied = await bounded(self._apply_transaction(event), self._timeout)
        except _Duplicate as duplicate:
            label = self.type_label(event)
            metrics.webhook_duplicates.labels(event.source, label).inc()
            metrics.webhook_events.labels(event.source, label, "duplicate").inc()
            return Processed(
                status="duplicate",
                stored_response=duplicate.response,
                stored_call_id=duplicate.call_id,
            )
        outcome = "replayed" if event.spooled else applied.outcome
        metrics.webhook_events.labels(
            event.source, self.type_label(event), outcome
        ).inc()
        return Processed(status="applied", applied=applied)

    async def _apply_transaction(self, event: InboundEvent) -> Applied:
        async with self._database.transaction() as session:
            return await self._apply_in(session, event)

    def type_label(self, event: InboundEvent) -> str:
        """Return the event type as a metric label: `other` for types without a handler.

        Providers add event types at will, and each label value is a new time series.
        """
        if (event.source, event.type) in self._handlers:
            return event.type
        return "other"

    async def _apply_in(self, session: AsyncSession, event: InboundEvent) -> Applied:
        handler = self._handlers.get((event.source, event.type))
        if handler is None:
            logger.info(
                "webhook event type not handled", source=event.source, type=event.type
            )
            applied = Applied(call_id=None, outcome="ignored")
        else:
            applied = await handler(session, event)
        inserted = await _insert_event(session, event, applied)
        if inserted is None:
            existing = (
                await session.execute(
                    select(WebhookEvent.response, WebhookEvent.call_id).where(
                        WebhookEvent.source == event.source,
                        WebhookEvent.dedupe_key == event.dedupe_key,
                    )
                )
            ).one()
            # Raising rolls back whatever the handler changed.
            raise _Duplicate(existing.response, existing.call_id)
        return applied

    async def record_response(self, event: InboundEvent, response: str) -> None:
        """Store the response sent for an applied event, so that a repeat gets the same."""

        async def store() -> None:
            async with self._database.transaction() as session:
                await session.execute(
                    update(WebhookEvent)
                    .where(
                        WebhookEvent.source == event.source,
                        WebhookEvent.dedupe_key == event.dedupe_key,
                    )
                    .values(response=response)
                )

        await bounded(store(), self._timeout)

    async def stored_response(self, event: InboundEvent) -> str | None:

        async def read() -> str | None:
            async with self._database.sessions() as session:
                return await session.scalar(
                    select(WebhookEvent.response).where(
                        WebhookEvent.source == event.source,
                        WebhookEvent.dedupe_key == event.dedupe_key,
                    )
                )

        return await bounded(read(), self._timeout)

    async def spool(self, event: InboundEvent, *, reason: str) -> None:
        """Append `event` durably to the spool; raise EventUnavailable when that fails."""
        try:
            await self._spool.append(event.to_record())
        except SpoolError as error:
            logger.error(
                "webhook event lost: database and spool both unavailable",
                source=event.source,
                type=event.type,
                dedupe_key=event.dedupe_key,
                error=str(error),
            )
            metrics.webhook_events.labels(
                event.source, self.type_label(event), "unavailable"
            ).inc()
            raise EventUnavailable(str(error)) from error
        metrics.spool_events.labels(event.source, reason).inc()
        metrics.webhook_events.labels(
            event.source, self.type_label(event), "spooled"
        ).inc()
        logger.warning(
            "webhook event spooled", source=event.source, type=event.type, reason=reason
        )

    async def _on_failure(
        self,
        event: InboundEvent,
        error: BaseException,
        spool_on_failure: bool,
        *,
        reason: str,
    ) -> Processed:
        if not spool_on_failure:
            return Processed(status="unavailable", error=error)
        await self.spool(event, reason=reason)
        return Processed(status="spooled", error=error)
