"""The dynamic variables ElevenLabs requests when a call to a `native` number starts.

ElevenLabs connects the call itself and requests the variables from the
personalization webhook while the phone rings, so only indexed lookups run here: the
number (unique), the agent id (unique), and the caller's history through the
index on (team_id, from_number, started_at). Nothing is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.calls.routing import RouteCache, lookup_route
from renchi.calls.variables import compute_variables, empty_variables
from renchi.db.models import Agent, Team
from renchi.db.models.base import clean_text

MATCHED_NUMBER = "number"
MATCHED_AGENT = "agent"
UNMATCHED = "unknown"

# Longer values are not phone numbers or ids; they are cut so no lookup gets them whole.
_MAX_FIELD_LENGTH = 128


@dataclass(frozen=True)
class PersonalizationRequest:
    """The fields ElevenLabs sends, as text, empty where missing."""

    caller_id: str
    called_number: str
    agent_id: str
    call_sid: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PersonalizationRequest:
        return cls(
            caller_id=_field(payload, "caller_id"),
            called_number=_field(payload, "called_number"),
            agent_id=_field(payload, "agent_id"),
            call_sid=_field(payload, "call_sid"),
        )


@dataclass(frozen=True)
class Personalization:
    variables: dict[str, str]
    # The lookup that found the team: `number`, `agent` or `unknown`.
    matched_by: str


async def personalize(
    session: AsyncSession, request: PersonalizationRequest, *, routes: RouteCache
) -> Personalization:
    """Find the team by the called number, else by the agent, and compute the variables."""
    team_id: uuid.UUID | None = None
    team_name = ""
    matched_by = UNMATCHED

    route = None
    if request.called_number:
        route = await lookup_route(session, request.called_number)
        routes.remember(request.called_number, route)
    if route is not None:
        team_id, team_name, matched_by = route.team_id, route.team_name, MATCHED_NUMBER
    elif request.agent_id:
        row = (
            await session.execute(
                select(Team.id, Team.name)
                .join(Agent, Agent.team_id == Team.id)
                .where(Agent.elevenlabs_agent_id == request.agent_id)
            )
        ).first()
        if row is not None:
            team_id, team_name = row
            matched_by = MATCHED_AGENT

    variables = await compute_variables(
        session,
        team_id=team_id,
        team_name=team_name,
        caller_number=request.caller_id,
        called_number=request.called_number,
        exclude_call_sid=request.call_sid or None,
    )
    return Personalization(variables=variables, matched_by=matched_by)


def variables_without_database(
    request: PersonalizationRequest, *, routes: RouteCache
) -> dict[str, str]:
    """Return the variables of a caller with no known history, named from the route cache."""
    route = routes.get(request.called_number) if request.called_number else None
    return empty_variables(
        team_name=route.team_name if route else "",
        caller_number=request.caller_id,
        called_number=request.called_number,
    )


def _field(payload: dict[str, Any], name: str) -> str:
    """Read a field that may come as a string or a number; empty when missing."""
    value = payload.get(name)
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, float):
        value = str(int(value)) if value.is_integer() else str(value)
    if not isinstance(value, str):
        return ""
    # The values go into queries and back out as JSON, which neither NUL
    # characters nor lone surrogates survive.
    return clean_text(value).strip()[:_MAX_FIELD_LENGTH]
