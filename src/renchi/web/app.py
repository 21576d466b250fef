"""The Starlette application and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from renchi.calls.voice import VoiceAnswers
from renchi.config import Settings
from renchi.db.engine import is_unavailable
from renchi.db.migrate import SchemaNotReady, require_current_schema
from renchi.runtime import Runtime, build_runtime
from renchi.web import health, openapi
from renchi.web.cors import CorsMiddleware
from renchi.web.errors import EXCEPTION_HANDLERS
from renchi.web.middleware import RequestContextMiddleware
from renchi.web.ratelimit import RateLimiter
from renchi.web.routes import admin, auth, calls, teams
from renchi.web.webhooks import elevenlabs, personalization, twilio

logger = structlog.get_logger(__name__)


def all_routes(settings: Settings) -> list[BaseRoute]:
    """Return the routes; the operator endpoints only when their settings enable them."""
    routes: list[BaseRoute] = [
        *health.routes,
        *twilio.routes,
        *elevenlabs.routes,
        *personalization.routes,
        *openapi.routes,
        *auth.routes,
        *calls.routes,
        *teams.routes,
    ]
    if settings.setup_token is not None:
        routes.extend(admin.setup_routes)
    if settings.debug_endpoints:
        routes.extend(admin.debug_routes)
    return routes


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
            await require_current_schema(current.database)
            await current.refresh_routes()
        except SchemaNotReady as error:
            # Keep serving: webhooks go to the spool and /readyz shows the state.
            logger.error("database schema not ready at start", problem=str(error))
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
            await app.state.rate_limiter.aclose()
            await current.aclose()
            logger.info("service stopped")

    def body_limit(path: str) -> int:
        # Only the post-call webhook carries audio, and it streams the body to disk.
        if path == elevenlabs.POST_CALL_PATH:
            return settings.max_audio_body_bytes
        return settings.max_body_bytes

    app = Starlette(
        routes=all_routes(settings),
        middleware=[
            Middleware(RequestContextMiddleware, body_limit=body_limit),
            Middleware(CorsMiddleware, allowed_origins=settings.cors_origins),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # An unknown path with or without a trailing slash is a 404, never a
    # redirect built from the request's Host header.
    app.router.redirect_slashes = False
    app.state.voice_answers = VoiceAnswers()
    app.state.post_call_slots = asyncio.Semaphore(settings.max_concurrent_audio_bodies)
    app.state.rate_limiter = RateLimiter(settings)
    return app
