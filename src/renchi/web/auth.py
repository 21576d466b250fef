"""Request authentication and the role check that every protected route calls.

A request proves who it is with the session cookie or an
`Authorization: Bearer` header carrying the same kind of token. Route code
asks for what it needs in one line, and the check raises the error answer:

    access = await require_team_role(request, slug, "admin")

The response is 404 for a team the user may not see, 403 for a role too
low, and 401 without a valid session. A cookie-authenticated request that changes state must also
come from the service's own origin or an allowed origin, which stops
cross-site request forgery. Bearer tokens are never sent by a browser on
its own, so they need no such check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from starlette.requests import Request

from renchi.accounts.roles import TeamAccess, team_access
from renchi.accounts.sessions import ActiveSession, SessionPolicy, resolve_session
from renchi.config import Settings
from renchi.db.models import User
from renchi.errors import InvalidInput
from renchi.web.errors import ApiError
from renchi.web.ratelimit import client_address, rate_limiter_of
from renchi.web.webhooks.pipeline import runtime_of

SESSION_COOKIE = "renchi_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request and how the session token came."""

    user: User
    session: ActiveSession
    token: str
    via_cookie: bool


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(
        lifetime=timedelta(seconds=settings.session_ttl_seconds),
        idle_timeout=timedelta(seconds=settings.session_idle_seconds),
    )


def session_cookie(token: str, *, max_age: int) -> str:
    return (
        f"{SESSION_COOKIE}={token}; Max-Age={max_age}; Path=/; "
        "HttpOnly; Secure; SameSite=Lax"
    )


def expired_session_cookie() -> str:
    return session_cookie("", max_age=0)


def _session_token(request: Request) -> tuple[str, bool] | None:
    """Return the token and whether it came in the cookie, or None when there is none."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                "UNAUTHORIZED",
                "Invalid Authorization header; send 'Bearer TOKEN' with a session token.",
            )
        return token.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None


def service_origin(request: Request) -> str:
    """Return the origin of the service: that of RENCHI_PUBLIC_URL, else of the request."""
    public_url = runtime_of(request).settings.public_url
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def check_origin(request: Request, *, required: bool = True) -> None:
    """Raise 403 unless Origin (or else Referer) is the service or an allowed origin.

    With `required=False` a request that carries neither header passes.
    """
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else None
    if origin is None:
        if not required:
            return
        raise ApiError(
            "FORBIDDEN",
            "Missing Origin header: a request with the session cookie that changes "
            "state must come from the service's own pages or an allowed origin.",
        )
    allowed = {service_origin(request), *runtime_of(request).settings.cors_origins}
    if origin.lower() not in allowed:
        raise ApiError(
            "FORBIDDEN", f"Requests from origin {origin!r} may not use this session."
        )


async def authenticate(request: Request) -> Principal:
    """Return the signed-in user of the request, or raise 401.

    Also counts the request against the per-address and per-user rate limits,
    so every authenticated endpoint is limited.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    runtime = runtime_of(request)
    limiter = rate_limiter_of(request)
    await limiter.hit("address", limiter.per_address, client_address(request))

    found = _session_token(request)
    if found is None:
        raise ApiError(
            "UNAUTHORIZED",
            "Sign in first: send the session cookie or 'Authorization: Bearer TOKEN'.",
        )
    token, via_cookie = found
    if via_cookie and request.method not in SAFE_METHODS:
        check_origin(request)

    async with runtime.database.transaction() as session:
        active = await resolve_session(
            session, token, policy=session_policy(runtime.settings)
        )
    if active is None:
        headers = {"Set-Cookie": expired_session_cookie()} if via_cookie else None
        raise ApiError(
            "UNAUTHORIZED",
            "The session is invalid or has expired; sign in again.",
            headers=headers,
        )
    await limiter.hit("user", limiter.per_user, str(active.user.id))

    principal = Principal(
        user=active.user, session=active, token=token, via_cookie=via_cookie
    )
    request.state.principal = principal
    return principal


async def require_super_admin(request: Request) -> Principal:
    principal = await authenticate(request)
    if not principal.user.super_admin:
        raise ApiError("FORBIDDEN", "This needs a super admin.")
    return principal


def team_parameter(request: Request) -> str | None:
    """Return the `team` query parameter: a slug, or None when it is absent."""
    slug = request.query_params.get("team")
    if slug is None:
        return None
    slug = slug.strip()
    if not slug:
        raise InvalidInput(
            "Empty query parameter 'team': give a team slug.", field="team"
        )
    return slug


async def require_team_role(
    request: Request, slug: str | None, role: str
) -> TeamAccess:
    """Return the caller's access to team `slug` (None: their only team) with at least `role`.

    Raises 401 without a session, 400 when the team must be named, 404 for a
    team the caller may not see, and 403 when their role there is too low.
    """
    principal = await authenticate(request)
    async with runtime_of(request).database.sessions() as session:
        return await team_access(session, user=principal.user, slug=slug, required=role)
