"""A team, its settings and its phone numbers.

Members may read; changes need the admin or owner role. The command line's
`renchi admin` commands call the same domain functions. After a change to
the numbers or the fallback number, this process's route cache is updated at
once. Other replicas need no signal, because the voice webhook reads the
route from the database on every call.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.calls.routing import refresh_team_routes
from renchi.errors import InvalidInput
from renchi.runtime import Runtime
from renchi.teams.documents import team_document
from renchi.teams.provisioning import (
    assign_phone_number,
    list_phone_numbers,
    phone_number_document,
    release_phone_number,
)
from renchi.teams.settings import update_settings
from renchi.web.auth import require_team_role
from renchi.web.routes.bodies import json_object, string_field
from renchi.web.webhooks.pipeline import runtime_of

logger = structlog.get_logger(__name__)

_NUMBER_FIELDS = frozenset({"number", "agent_id", "mode"})


async def _refresh_routes(runtime: Runtime, team_id: uuid.UUID) -> None:
    """Update this process's route cache; a failure only leaves it stale until the next lookup."""
    try:
        async with runtime.database.sessions() as session:
            await refresh_team_routes(session, runtime.routes, team_id)
    except Exception as error:
        logger.warning(
            "refreshing the route cache failed", team_id=str(team_id), error=repr(error)
        )


async def show_team(request: Request) -> Response:
    access = await require_team_role(request, request.path_params["slug"], "member")
    runtime = runtime_of(request)
    async with runtime.database.sessions() as session:
        document = await team_document(
            session,
            access.team,
            default_retention_days=runtime.settings.recording_retention_days,
        )
    return JSONResponse(document)


async def change_settings(request: Request) -> Response:
    access = await require_team_role(request, request.path_params["slug"], "admin")
    changes = await json_object(request)
    runtime = runtime_of(request)
    async with runtime.database.transaction() as session:
        settings = await update_settings(
            session,
            access.team,
            changes,
            access.user,
            default_retention_days=runtime.settings.recording_retention_days,
        )
    logger.info(
        "team settings changed",
        team=access.team.slug,
        user_id=str(access.user.id),
        fields=sorted(changes),
    )
    if "fallback_number" in changes:
        await _refresh_routes(runtime, access.team.id)
    return JSONResponse(settings.document())


async def list_numbers(request: Request) -> Response:
    access = await require_team_role(request, request.path_params["slug"], "member")
    async with runtime_of(request).database.sessions() as session:
        numbers = await list_phone_numbers(session, access.team.id)
    return JSONResponse({"phone_numbers": numbers})


def _number_request(data: dict[str, Any]) -> tuple[str, str, str]:
    unknown = sorted(set(data) - _NUMBER_FIELDS)
    if unknown:
        raise InvalidInput(
            f"Unknown field {unknown[0]!r}; send number, agent_id and mode.",
            field=unknown[0],
        )
    number = string_field(data, "number")
    agent_id = string_field(data, "agent_id")
    mode = data.get("mode", "register_call")
    if not isinstance(mode, str):
        raise InvalidInput("Field 'mode' must be a string.", field="mode")
    return number, agent_id, mode


async def add_number(request: Request) -> Response:
    access = await require_team_role(request, request.path_params["slug"], "admin")
    number, agent_id, mode = _number_request(await json_object(request))
    runtime = runtime_of(request)
    async with runtime.database.transaction() as session:
        assignment = await assign_phone_number(
            session,
            team=access.team,
            number=number,
            elevenlabs_agent_id=agent_id,
            mode=mode,
        )
    document = phone_number_document(assignment.phone_number, assignment.agent)
    logger.info(
        "phone number assigned",
        team=access.team.slug,
        number=document["number"],
        created=assignment.created,
        user_id=str(access.user.id),
    )
    await _refresh_routes(runtime, access.team.id)
    return JSONResponse(document, status_code=201 if assignment.created else 200)


async def release_number(request: Request) -> Response:
    access = await require_team_role(request, request.path_params["slug"], "admin")
    runtime = runtime_of(request)
    async with runtime.database.transaction() as session:
        released = await release_phone_number(
            session, team=access.team, number=request.path_params["number"]
        )
    runtime.routes.remember(released.number, None)
    logger.info(
        "phone number released",
        team=access.team.slug,
        number=released.number,
        user_id=str(access.user.id),
    )
    return Response(status_code=204)


routes = [
    Route("/api/teams/{slug}", show_team, methods=["GET"]),
    Route("/api/teams/{slug}/settings", change_settings, methods=["PATCH"]),
    Route("/api/teams/{slug}/phone-numbers", list_numbers, methods=["GET"]),
    Route("/api/teams/{slug}/phone-numbers", add_number, methods=["POST"]),
    Route(
        "/api/teams/{slug}/phone-numbers/{number}",
        release_number,
        methods=["DELETE"],
    ),
]
