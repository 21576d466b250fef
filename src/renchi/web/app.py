"""The Starlette application and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from renchi.calls.voice import VoiceAnswers
from renchi.config import Settings
from renchi.db.engine import is_unavailable
from renchi.runtime import Runtime, build_runtime
from renchi.web import health
from renchi.web.errors import EXCEPTION_HANDLERS
from renchi.web.middleware import RequestContextMiddleware
from renchi.web.webhooks import elevenlabs, personalization, twilio

logger = structlog.get_logger(__name__)


def all_routes() -> list[BaseRoute]:
    return [
        *health.routes,
        *twilio.routes,
        *elevenlabs.routes,
        *personalization.routes,
    ]


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    background: bool = True,
) -> Starlette:
    """Build the application; `runtime` and `background=False` let tests drive the parts."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        current = runtime or build_runtime(settings)
        app.state.runtime = current
        try:
            await current.refresh_routes()
        except Exception as error:
            if not is_unavailable(error):
                raise
            logger.warning("database unavailable at start; webhooks will be spooled")
        if background:
            current.start_background(embedded_worker=settings.runs_embedded_worker)
        logger.info(
            "service started",
            env=settings.env,
            embedded_worker=background and settings.runs_embedded_worker,
            database=current.database.dialect,
        )
        try:
            yield
        finally:
            await current.aclose()
            logger.info("service stopped")

    def body_limit(path: str) -> int:
        # Only the post-call webhook carries audio, and it streams the body to disk.
        if path == elevenlabs.POST_CALL_PATH:
            return settings.max_audio_body_bytes
        return settings.max_body_bytes

    app = Starlette(
        routes=all_routes(),
        middleware=[Middleware(RequestContextMiddleware, body_limit=body_limit)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.voice_answers = VoiceAnswers()
    return app
