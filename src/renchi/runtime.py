"""Wiring: the objects one process shares, built from its settings.

The faces (`renchi serve`, `renchi worker`, the command line) build one
`Runtime` and pass its parts to the domain, which never builds them itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from renchi.adapters.elevenlabs import ElevenLabsClient
from renchi.adapters.elevenlabs_signature import WebhookSignatureVerifier
from renchi.adapters.storage import Storage
from renchi.adapters.twilio import SignatureVerifier, TwilioClient
from renchi.asynctools import wait_for_stop
from renchi.calls.elevenlabs_events import ElevenLabsEventHandlers
from renchi.calls.media import RecordingFetcher
from renchi.calls.routing import RouteCache, load_routes
from renchi.calls.twilio_events import FETCH_RECORDING_TASK, TwilioEventHandlers
from renchi.config import Settings
from renchi.db.engine import (
    Database,
    create_database,
    is_schema_error,
    is_unavailable,
)
from renchi.tasks.worker import TaskHandler, Worker, refresh_queue_metrics
from renchi.webhooks.intake import DatabaseHealth, EventHandler, EventProcessor
from renchi.webhooks.replay import SpoolReplayer
from renchi.webhooks.spool import Spool

logger = structlog.get_logger(__name__)

ROUTE_REFRESH_SECONDS = 60.0
QUEUE_METRICS_SECONDS = 15.0


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


@dataclass
class Runtime:
    settings: Settings
    database: Database
    http: httpx.AsyncClient
    storage: Storage
    spool: Spool
    twilio: TwilioClient
    twilio_signatures: SignatureVerifier
    elevenlabs: ElevenLabsClient
    elevenlabs_signatures: WebhookSignatureVerifier
    routes: RouteCache
    processor: EventProcessor
    replayer: SpoolReplayer
    task_handlers: Mapping[str, TaskHandler]
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _worker: Worker | None = None

    def worker(self) -> Worker:
        settings = self.settings
        return Worker(
            database=self.database,
            handlers=self.task_handlers,
            concurrency=settings.worker_concurrency,
            poll_interval=settings.worker_poll_interval_seconds,
            lease_seconds=settings.task_lease_seconds,
        )

    async def refresh_routes(self) -> None:
        async with self.database.sessions() as session:
            self.routes.replace(await load_routes(session))

    def start_background(self, *, embedded_worker: bool) -> None:
        """Start the spool replayer, the route refresher and, if asked, the worker."""
        settings = self.settings
        self._stop.clear()
        self._spawn(
            self.replayer.run(
                interval=settings.spool_replay_interval_seconds,
                stop=self._stop,
                probe_timeout=settings.database_timeout_seconds,
            )
        )
        self._spawn(
            self._every(ROUTE_REFRESH_SECONDS, self.refresh_routes, "route refresh")
        )
        self._spawn(
            self._every(
                QUEUE_METRICS_SECONDS,
                lambda: refresh_queue_metrics(self.database),
                "task metrics",
            )
        )
        if embedded_worker:
            self._worker = self.worker()
            self._spawn(self._worker.run())

    def _spawn(self, coroutine: Any) -> None:
        self._background.append(asyncio.create_task(coroutine))

    async def _every(self, interval: float, action: Any, name: str) -> None:
        while not self._stop.is_set():
            try:
                await action()
            except Exception as error:
                if is_unavailable(error):
                    logger.info("periodic job skipped: database unavailable", job=name)
                elif is_schema_error(error):
                    # The service logs the missing migrations once, as it starts.
                    logger.info("periodic job skipped: schema not migrated", job=name)
                else:
                    logger.exception("periodic job failed", job=name)
            await wait_for_stop(self._stop, interval)

    async def aclose(self) -> None:
        """Stop the background work and close connections."""
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
            self._background.clear()
        await self.http.aclose()
        await self.database.dispose()


def build_runtime(
    settings: Settings,
    *,
    database: Database | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    """Build the shared objects; `transport` lets tests serve outside APIs in-process."""
    database = database or create_database(settings)
    http = httpx.AsyncClient(
        transport=transport,
        timeout=settings.outbound_timeout_seconds,
        headers={"user-agent": "renchi"},
    )
    storage = Storage(settings.resolved_recordings_dir)
    spool = Spool(settings.resolved_spool_dir)
    twilio = TwilioClient(
        http=http,
        api_url=settings.twilio_api_url,
        account_sid=settings.twilio_account_sid,
        auth_token=_secret(settings.twilio_auth_token),
        timeout=settings.outbound_timeout_seconds,
    )
    elevenlabs = ElevenLabsClient(
        http=http,
        api_url=settings.elevenlabs_api_url,
        api_key=_secret(settings.elevenlabs_api_key),
    )
    routes = RouteCache()
    twilio_events = TwilioEventHandlers(
        routes=routes, twilio=twilio, task_max_attempts=settings.task_max_attempts
    )
    elevenlabs_events = ElevenLabsEventHandlers(routes=routes)
    handlers: dict[tuple[str, str], EventHandler] = {
        **twilio_events.handlers(),
        **elevenlabs_events.handlers(),
    }
    processor = EventProcessor(
        database=database,
        spool=spool,
        handlers=handlers,
        timeout=settings.database_timeout_seconds,
        health=DatabaseHealth(),
    )
    task_handlers: dict[str, TaskHandler] = {
        FETCH_RECORDING_TASK: RecordingFetcher(
            database=database, storage=storage, twilio=twilio
        ),
    }
    return Runtime(
        settings=settings,
        database=database,
        http=http,
        storage=storage,
        spool=spool,
        twilio=twilio,
        twilio_signatures=SignatureVerifier(_secret(settings.twilio_auth_token) or ""),
        elevenlabs=elevenlabs,
        elevenlabs_signatures=WebhookSignatureVerifier(
            _secret(settings.elevenlabs_webhook_secret),
            tolerance_seconds=settings.signature_tolerance_seconds,
        ),
        routes=routes,
        processor=processor,
        replayer=SpoolReplayer(spool=spool, processor=processor, database=database),
        task_handlers=task_handlers,
    )
