"""Cross-origin requests: allowed only from the origins in `RENCHI_CORS_ORIGINS`.

Same-origin requests need no CORS headers and pass untouched. A request from
an allowed origin gets `Access-Control-Allow-Origin` with credentials, so a
web app on another host can send the session cookie. A preflight from any
other origin is rejected with 403, and an actual request from one gets no
CORS headers, so the browser keeps the response from the page.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renchi.web.errors import error_response

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = frozenset(
    {"authorization", "content-type", "range", "x-request-id", "if-range"}
)
EXPOSED_HEADERS = (
    "Retry-After, X-Request-Id, Content-Range, Accept-Ranges, Content-Length"
)
PREFLIGHT_MAX_AGE_SECONDS = 600


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed_origins = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return

        allowed = origin.lower() in self.allowed_origins
        is_preflight = (
            scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        )
        if is_preflight:
            response = (
                self._preflight(origin, headers) if allowed else _rejected(origin)
            )
            await response(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-credentials", b"true"),
                    (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, origin: str, headers: Headers) -> Response:
        requested = [
            name.strip().lower()
            for name in headers.get("access-control-request-headers", "").split(",")
            if name.strip()
        ]
        refused = [name for name in requested if name not in ALLOWED_HEADERS]
        if refused:
            return error_response(
                "FORBIDDEN",
                f"Request headers not allowed across origins: {', '.join(refused)}.",
                headers={"Vary": "Origin"},
            )
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ", ".join(sorted(ALLOWED_HEADERS)),
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )


def _rejected(origin: str) -> Response:
    return error_response(
        "FORBIDDEN",
        f"Cross-origin requests from {origin!r} are not allowed; add the origin "
        "to RENCHI_CORS_ORIGINS.",
        headers={"Vary": "Origin"},
    )
