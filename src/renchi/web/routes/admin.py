"""Operator endpoints: the one-time super admin setup and the database check.

Both are off by default. `setup_routes` exist only while RENCHI_SETUP_TOKEN
is set, and `debug_routes` only while RENCHI_DEBUG_ENDPOINTS is true; without
them the paths return 404 like any unknown path.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

import structlog
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.accounts.setup import NewAccount, create_first_super_admins
from renchi.db.engine import is_unavailable
from renchi.db.migrate import migration_state
from renchi.errors import InvalidInput
from renchi.web.auth import require_super_admin
from renchi.web.errors import ApiError
from renchi.web.ratelimit import client_address, rate_limiter_of
from renchi.web.routes.auth import user_document
from renchi.web.routes.bodies import json_object, string_field
from renchi.web.webhooks.pipeline import runtime_of

logger = structlog.get_logger(__name__)

MAX_SETUP_ACCOUNTS = 20


def _check_setup_token(request: Request) -> None:
    setup_token = runtime_of(request).settings.setup_token
    assert setup_token is not None, "The setup route exists only with a token."
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = setup_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected
    ):
        logger.warning("setup request rejected: wrong or missing setup token")
        raise ApiError(
            "UNAUTHORIZED",
            "Invalid or missing setup token; send 'Authorization: Bearer "
            "$RENCHI_SETUP_TOKEN'.",
        )


def _accounts(data: dict[str, Any]) -> list[NewAccount]:
    if "accounts" not in data:
        return [
            NewAccount(
                email=string_field(data, "email"),
                password=string_field(data, "password"),
            )
        ]
    entries = data["accounts"]
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(
            "Field 'accounts' must be a non-empty list of {email, password} objects.",
            field="accounts",
        )
    if len(entries) > MAX_SETUP_ACCOUNTS:
        raise InvalidInput(
            f"Too many accounts: give at most {MAX_SETUP_ACCOUNTS}.", field="accounts"
        )
    accounts = []
    for index, entry in enumerate(entries):
        prefix = f"accounts[{index}]."
        if not isinstance(entry, dict):
            raise InvalidInput(
                f"Account {index + 1} must be an object with email and password.",
                field=f"accounts[{index}]",
            )
        accounts.append(
            NewAccount(
                email=string_field(entry, "email", prefix=prefix),
                password=string_field(entry, "password", prefix=prefix),
            )
        )
    return accounts


async def setup_super_admin(request: Request) -> Response:
    limiter = rate_limiter_of(request)
    await limiter.hit("setup", limiter.login_per_address, client_address(request))
    _check_setup_token(request)
    data = await json_object(request)
    accounts = _accounts(data)

    async with runtime_of(request).database.transaction() as session:
        users = await create_first_super_admins(
            session, accounts, numbered="accounts" in data
        )
    logger.info(
        "super admins created by setup", user_ids=[str(user.id) for user in users]
    )
    return JSONResponse(
        {"users": [user_document(user) for user in users]}, status_code=201
    )


async def debug_database(request: Request) -> Response:
    await require_super_admin(request)
    runtime = runtime_of(request)
    database = runtime.database
    started = time.perf_counter()
    try:
        async with asyncio.timeout(runtime.settings.database_timeout_seconds):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                latency_ms = round((time.perf_counter() - started) * 1000, 2)
                version = await connection.run_sync(
                    lambda sync: sync.dialect.server_version_info
                )
            state = await migration_state(database)
    except Exception as error:
        if not is_unavailable(error):
            raise
        return JSONResponse(
            {
                "reachable": False,
                "dialect": database.dialect,
                "error": type(error).__name__,
            }
        )
    return JSONResponse(
        {
            "reachable": True,
            "dialect": database.dialect,
            "latency_ms": latency_ms,
            "server_version": ".".join(str(part) for part in version or ()),
            "migration": {
                "revision": state.current,
                "expected_revision": state.head,
                "status": state.status,
            },
        }
    )


setup_routes = [
    Route("/api/setup-super-admin", setup_super_admin, methods=["POST"]),
]
debug_routes = [
    Route("/api/debug/db", debug_database, methods=["GET"]),
]
