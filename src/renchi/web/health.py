"""Liveness, readiness and the Prometheus endpoint.

Ready means "can accept webhooks durably": the database answers with its
migrations applied, or the spool is writable. A pod whose database is away
keeps taking webhooks into its spool, so it stays in the Service.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.asynctools import bounded
from renchi.db.engine import is_unavailable
from renchi.db.migrate import MigrationState, migration_state
from renchi.observability import metrics
from renchi.web.webhooks.pipeline import runtime_of


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    database = await _database_state(request)
    spool_ok = await asyncio.to_thread(runtime.spool.check_writable)
    spool = {
        "writable": spool_ok,
        "pending": len(runtime.spool.pending()),
        "failed": len(runtime.spool.failed()),
    }
    database_ready = database["reachable"] and database.get("migrations") != "pending"
    ready = database_ready or spool_ok
    body = {"ready": ready, "database": database, "spool": spool}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _database_state(request: Request) -> dict[str, Any]:
    runtime = runtime_of(request)
    started = time.perf_counter()

    async def check() -> MigrationState:
        async with runtime.database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return await migration_state(runtime.database)

    try:
        state = await bounded(check(), runtime.settings.database_timeout_seconds)
    except Exception as error:
        if not is_unavailable(error):
            raise
        runtime.processor.health.mark_down(error)
        return {"reachable": False, "error": type(error).__name__}
    runtime.processor.health.mark_up()
    metrics.database_up.set(1)
    return {
        "reachable": True,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "migrations": state.status,
        "revision": state.current,
        "expected_revision": state.head,
    }


async def prometheus(request: Request) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", prometheus, methods=["GET"]),
]
