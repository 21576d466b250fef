"""Login, logout and the signed-in user: `/api/auth/...`."""

from __future__ import annotations

import hashlib
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.accounts.roles import teams_of
from renchi.accounts.sessions import end_session, start_session
from renchi.accounts.users import authenticate_user, normalize_email
from renchi.db.models import User
from renchi.observability import metrics
from renchi.web.auth import (
    authenticate,
    check_origin,
    expired_session_cookie,
    session_cookie,
    session_policy,
)
from renchi.web.errors import ApiError
from renchi.web.ratelimit import client_address, rate_limiter_of
from renchi.web.routes.bodies import boolean_field, json_object, string_field
from renchi.web.webhooks.pipeline import runtime_of

logger = structlog.get_logger(__name__)

LOGIN_FAILED = "Invalid email or password."


def user_document(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "super_admin": user.super_admin,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


async def login(request: Request) -> Response:
    runtime = runtime_of(request)
    limiter = rate_limiter_of(request)
    await limiter.hit(
        "login-address", limiter.login_per_address, client_address(request)
    )
    # A browser sends Origin with a POST; a foreign one means login forgery.
    check_origin(request, required=False)

    data = await json_object(request)
    email = string_field(data, "email")
    password = string_field(data, "password")
    include_token = boolean_field(data, "include_token", default=False)
    # Counted under a hash, so the limit storage contains no email addresses.
    email_key = hashlib.sha256(
        normalize_email(email).encode("utf-8", "surrogatepass")
    ).hexdigest()
    await limiter.hit("login-email", limiter.login_per_email, email_key)

    async with runtime.database.transaction() as session:
        user = await authenticate_user(session, email=email, password=password)
        if user is None:
            started = None
        else:
            started = await start_session(
                session, user=user, policy=session_policy(runtime.settings)
            )
    if user is None or started is None:
        metrics.login_attempts.labels("failure").inc()
        logger.info("login failed")
        raise ApiError("UNAUTHORIZED", LOGIN_FAILED)

    metrics.login_attempts.labels("success").inc()
    logger.info("login succeeded", user_id=str(user.id))
    body: dict[str, Any] = {
        "user": user_document(user),
        "expires_at": started.record.expires_at.isoformat(),
    }
    if include_token:
        body["token"] = started.token
    return JSONResponse(
        body,
        headers={
            "Set-Cookie": session_cookie(
                started.token, max_age=runtime.settings.session_ttl_seconds
            ),
            "Cache-Control": "no-store",
        },
    )


async def logout(request: Request) -> Response:
    principal = await authenticate(request)
    async with runtime_of(request).database.transaction() as session:
        await end_session(session, principal.token)
    logger.info("logout", user_id=str(principal.user.id))
    return Response(status_code=204, headers={"Set-Cookie": expired_session_cookie()})


async def me(request: Request) -> Response:
    principal = await authenticate(request)
    async with runtime_of(request).database.sessions() as session:
        teams = await teams_of(session, principal.user.id)
    record = principal.session.record
    settings = runtime_of(request).settings
    return JSONResponse(
        {
            "user": user_document(principal.user),
            "teams": [
                {"slug": item.team.slug, "name": item.team.name, "role": item.role}
                for item in teams
            ],
            "session": {
                "created_at": record.created_at.isoformat(),
                "expires_at": record.expires_at.isoformat(),
                "idle_timeout_seconds": settings.session_idle_seconds,
                "authenticated_with": "cookie" if principal.via_cookie else "bearer",
            },
        },
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/me", me, methods=["GET"]),
]
