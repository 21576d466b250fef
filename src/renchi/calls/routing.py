"""Finding the team, agent and mode of a called number.

`RouteCache` keeps an in-memory copy of the number table, refreshed on every
lookup and in full in the background, so the voice webhook can still route a
call while the database is away.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import Agent, PhoneNumber, Team, TeamSettingsRow


@dataclass(frozen=True)
class Route:
    number: str
    team_id: uuid.UUID
    team_slug: str
    team_name: str
    agent_id: uuid.UUID
    elevenlabs_agent_id: str
    mode: str
    fallback_number: str | None = None


_RouteRow = Row[str, str, uuid.UUID, str, str, uuid.UUID, str, str | None]


def _route_query() -> Select[str, str, uuid.UUID, str, str, uuid.UUID, str, str | None]:
    # The fallback number comes from the team's settings row, read here with
    # the route so the voice webhook needs one query while the phone rings.
    # A team without a row has no fallback number, the default in `teams.settings`.
    return (
        select(
            PhoneNumber.number,
            PhoneNumber.mode,
            Team.id,
            Team.slug,
            Team.name,
            Agent.id,
            Agent.elevenlabs_agent_id,
            TeamSettingsRow.fallback_number,
        )
        .join(Team, Team.id == PhoneNumber.team_id)
        .join(Agent, Agent.id == PhoneNumber.agent_id)
        .outerjoin(TeamSettingsRow, TeamSettingsRow.team_id == PhoneNumber.team_id)
    )


def _to_route(row: _RouteRow) -> Route:
    number, mode, team_id, slug, name, agent_id, elevenlabs_agent_id, fallback = row
    return Route(
        number=number,
        team_id=team_id,
        team_slug=slug,
        team_name=name,
        agent_id=agent_id,
        elevenlabs_agent_id=elevenlabs_agent_id,
        mode=mode,
        fallback_number=fallback,
    )


async def lookup_route(session: AsyncSession, number: str) -> Route | None:
    """Return the route of `number`, or None when no team holds it."""
    row = (
        await session.execute(_route_query().where(PhoneNumber.number == number))
    ).first()
    return _to_route(row) if row else None


async def load_routes(
    session: AsyncSession, *, team_id: uuid.UUID | None = None
) -> dict[str, Route]:
    """Return the route of every number, or of the numbers of `team_id`."""
    query = _route_query()
    if team_id is not None:
        query = query.where(PhoneNumber.team_id == team_id)
    rows = (await session.execute(query)).all()
    return {route.number: route for route in map(_to_route, rows)}


async def refresh_team_routes(
    session: AsyncSession, cache: RouteCache, team_id: uuid.UUID
) -> None:
    """Bring the cached routes of one team up to date after its numbers or settings change."""
    cache.replace_team(team_id, await load_routes(session, team_id=team_id))


class RouteCache:
    """The last known route of each number, for routing without the database."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self.loaded = False

    def get(self, number: str) -> Route | None:
        return self._routes.get(number)

    def remember(self, number: str, route: Route | None) -> None:
        if route is None:
            self._routes.pop(number, None)
        else:
            self._routes[number] = route

    def replace(self, routes: dict[str, Route]) -> None:
        # NOTE: a full refresh that read the table just before a number was
        # released can put that number back until the next refresh. The copy
        # is read only while the database is unreachable.
        self._routes = dict(routes)
        self.loaded = True

    def replace_team(self, team_id: uuid.UUID, routes: dict[str, Route]) -> None:
        """Replace the routes of one team, dropping its numbers missing from `routes`."""
        kept = {
            number: route
            for number, route in self._routes.items()
            if route.team_id != team_id
        }
        self._routes = {**kept, **routes}

    def __len__(self) -> int:
        return len(self._routes)
