"""Fakes of outside HTTP services, served on loopback by `servers.serve_app`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

AGENT_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
    '<Stream url="wss://api.elevenlabs.example/stream"/></Connect></Response>'
)


@dataclass
class FakeElevenLabs:
    """The register-call endpoint; `behaviour` is ok, slow, error, reject, huge or drip."""

    behaviour: str = "ok"
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def _drip(self) -> AsyncIterator[bytes]:
        # Each piece arrives well within a read timeout, the whole never does.
        for piece in AGENT_TWIML:
            yield piece.encode()
            await asyncio.sleep(0.05)

    def app(self) -> Starlette:
        async def register_call(request: Request) -> Response:
            body = json.loads(await request.body())
            self.requests.append({"headers": dict(request.headers), "body": body})
            if self.behaviour == "slow":
                await asyncio.sleep(self.delay)
            if self.behaviour == "error":
                return JSONResponse({"detail": "internal"}, status_code=500)
            if self.behaviour == "reject":
                return JSONResponse({"detail": "unknown agent"}, status_code=422)
            if self.behaviour == "huge":
                return Response("<Response>" + " " * 1_000_000 + "</Response>")
            if self.behaviour == "drip":
                return StreamingResponse(self._drip(), media_type="application/xml")
            return Response(AGENT_TWIML, media_type="application/xml")

        return Starlette(
            routes=[
                Route(
                    "/v1/convai/twilio/register-call", register_call, methods=["POST"]
                )
            ]
        )


@dataclass
class FakeTwilioApi:
    """Recording media under /2010-04-01/Accounts/.../Recordings/<sid>.mp3."""

    media: bytes = b"ID3" + bytes(range(256)) * 64
    failures_before_success: int = 0
    status_on_failure: int = 503
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def recording(request: Request) -> Response:
            self.requests.append(
                {"path": request.url.path, "headers": dict(request.headers)}
            )
            if self.failures_before_success > 0:
                self.failures_before_success -= 1
                return Response(
                    status_code=self.status_on_failure, headers={"retry-after": "0"}
                )
            return Response(self.media, media_type="audio/mpeg")

        return Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account}/Recordings/{name}",
                    recording,
                    methods=["GET"],
                )
            ]
        )
