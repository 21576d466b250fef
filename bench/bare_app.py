"""The baseline for bench/webhooks.py: a bare Starlette endpoint doing the minimum.

It parses the signed Twilio form, checks the signature with the twilio
library, and in one transaction inserts a deduplication row and updates the
call's status, with no pipeline, metrics, logging or spool around it.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

engine = create_async_engine(
    os.environ["BARE_DATABASE_URL"], pool_size=10, max_overflow=10
)
validator = RequestValidator(os.environ["BARE_AUTH_TOKEN"])
PUBLIC_URL = os.environ["BARE_PUBLIC_URL"]


async def status(request: Request) -> Response:
    params = dict(parse_qsl((await request.body()).decode()))
    signature = request.headers.get("x-twilio-signature", "")
    if not validator.validate(PUBLIC_URL + request.url.path, params, signature):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    key = (
        f"{params['CallSid']}:{params['CallStatus']}:{params.get('SequenceNumber', '')}"
    )
    async with engine.begin() as connection:
        inserted = await connection.execute(
            text(
                "INSERT INTO bare_events (key) VALUES (:key) ON CONFLICT DO NOTHING RETURNING key"
            ),
            {"key": key},
        )
        if inserted.first() is None:
            return JSONResponse({"status": "duplicate"})
        await connection.execute(
            text("UPDATE bare_calls SET status = :status WHERE call_sid = :sid"),
            {"status": params["CallStatus"], "sid": params["CallSid"]},
        )
    return JSONResponse({"status": "accepted"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/api/webhooks/twilio/status", status, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
