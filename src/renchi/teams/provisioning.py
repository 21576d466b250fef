"""Creating teams and assigning Twilio numbers to agents.

The command line and the API call these same functions, so both apply the
same validation and the same rule that a number belongs to one team.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import (
    PHONE_NUMBER_MODES,
    Agent,
    PhoneNumber,
    Team,
    TeamSettingsRow,
)
from renchi.db.models.base import utcnow
from renchi.db.upsert import insert_for
from renchi.errors import Conflict, InvalidInput, NotFound, shorten

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG_LENGTH = 64
MAX_NAME_LENGTH = 200
AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def slugify(name: str) -> str:
    """Return `name` in lower case with runs of other characters turned into one hyphen."""
    return (
        re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_SLUG_LENGTH].strip("-")
    )


def validate_e164(number: str, *, field: str = "number") -> str:
    number = number.strip()
    if not E164.match(number):
        raise InvalidInput(
            f"Invalid phone number {shorten(number)!r}: use E.164, a plus sign and up to 15 digits "
            "such as '+14155550100'.",
            field=field,
        )
    return number


async def get_team(session: AsyncSession, slug: str) -> Team:
    team = await session.scalar(select(Team).where(Team.slug == slug))
    if team is None:
        raise NotFound(f"Team {shorten(slug)!r} not found.")
    return team


async def create_team(
    session: AsyncSession, *, name: str, slug: str | None = None
) -> Team:
    """Create a team; the slug defaults to the name in lower case with hyphens."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"Team name must be 1 to {MAX_NAME_LENGTH} characters.", field="name"
        )
    if slug is None:
        slug = slugify(name)
        if not slug:
            raise InvalidInput(
                f"Cannot derive a slug from the team name {shorten(name)!r} because "
                "it has no ASCII letters or digits; choose one with --slug, such as "
                "--slug tokyo-clinic.",
                field="slug",
            )
    slug = slug.strip()
    if not SLUG.match(slug) or len(slug) > MAX_SLUG_LENGTH:
        raise InvalidInput(
            f"Invalid slug {shorten(slug)!r}: use lower-case letters, digits and single hyphens, "
            f"at most {MAX_SLUG_LENGTH} characters.",
            field="slug",
        )
    if await session.scalar(select(Team.id).where(Team.slug == slug)) is not None:
        raise Conflict(
            f"Team slug {slug!r} is already taken; choose another with --slug."
        )
    team = Team(name=name, slug=slug)
    session.add(team)
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(
            f"Team slug {slug!r} is already taken; choose another with --slug."
        ) from error
    return team


@dataclass(frozen=True)
class NumberAssignment:
    phone_number: PhoneNumber
    agent: Agent
    created: bool
    agent_created: bool


async def assign_phone_number(
    session: AsyncSession,
    *,
    team: Team,
    number: str,
    elevenlabs_agent_id: str,
    mode: str = "register_call",
) -> NumberAssignment:
    """Give `number` to `team`, answered by the agent, creating the agent record when new.

    Adding a number the team already holds updates its agent and mode; a number
    or agent of another team is a conflict.
    """
    number = validate_e164(number)
    if mode not in PHONE_NUMBER_MODES:
        raise InvalidInput(
            f"Invalid mode {shorten(mode)!r}; use one of {', '.join(PHONE_NUMBER_MODES)}.",
            field="mode",
        )
    if not AGENT_ID.match(elevenlabs_agent_id):
        raise InvalidInput(
            f"Invalid ElevenLabs agent id {shorten(elevenlabs_agent_id)!r}.",
            field="agent_id",
        )

    agent, agent_created = await _agent_for(session, team, elevenlabs_agent_id)
    if agent.team_id != team.id:
        raise Conflict(
            f"Agent {shorten(elevenlabs_agent_id)!r} belongs to another team."
        )

    existing = await session.scalar(
        select(PhoneNumber).where(PhoneNumber.number == number).with_for_update()
    )
    if existing is not None and existing.team_id != team.id:
        raise Conflict(
            f"Number {number} belongs to another team; release it there first."
        )
    if existing is not None:
        existing.agent_id = agent.id
        existing.mode = mode
        existing.updated_at = utcnow()
        await session.flush()
        return NumberAssignment(
            existing, agent, created=False, agent_created=agent_created
        )

    fallback_of = await session.scalar(
        select(TeamSettingsRow.team_id).where(TeamSettingsRow.fallback_number == number)
    )
    if fallback_of is not None:
        # A caller sent to a team's fallback would reach an agent again, and two
        # teams' fallbacks could send a call back and forth.
        raise Conflict(
            f"Number {number} is the fallback number of a team; change that "
            "team's fallback_number first."
        )
    phone_number = PhoneNumber(
        team_id=team.id, agent_id=agent.id, number=number, mode=mode
    )
    session.add(phone_number)
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(f"Number {number} was just taken by another team.") from error
    return NumberAssignment(
        phone_number, agent, created=True, agent_created=agent_created
    )


async def _agent_for(
    session: AsyncSession, team: Team, elevenlabs_agent_id: str
) -> tuple[Agent, bool]:
    """Return the agent record, creating it for `team` when new, safely under concurrency.

    Two requests adding numbers with the same new agent both reach this; the
    insert that loses does nothing, and both then read the one row.
    """
    query = select(Agent).where(Agent.elevenlabs_agent_id == elevenlabs_agent_id)
    agent = await session.scalar(query)
    if agent is not None:
        return agent, False
    agents = Agent.__table__
    result = await session.execute(
        insert_for(session, agents)
        .values(
            id=uuid.uuid4(),
            team_id=team.id,
            elevenlabs_agent_id=elevenlabs_agent_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["elevenlabs_agent_id"])
        .returning(agents.c.id)
    )
    created = result.first() is not None
    agent = await session.scalar(query.execution_options(populate_existing=True))
    assert agent is not None, "An agent row exists after its insert."
    return agent, created


async def release_phone_number(
    session: AsyncSession, *, team: Team, number: str
) -> PhoneNumber:
    """Remove `number` from `team`, so it routes nowhere until a team adds it again.

    The agent record stays, because calls refer to it. Raises NotFound when
    the team does not hold the number, also when another team does.
    """
    number = validate_e164(number)
    phone_number = await session.scalar(
        select(PhoneNumber)
        .where(PhoneNumber.number == number, PhoneNumber.team_id == team.id)
        .with_for_update()
    )
    if phone_number is None:
        raise NotFound(f"Number {number} not found in team {team.slug!r}.")
    await session.delete(phone_number)
    await session.flush()
    return phone_number


def phone_number_document(phone_number: PhoneNumber, agent: Agent) -> dict[str, Any]:
    return {
        "number": phone_number.number,
        "agent_id": agent.elevenlabs_agent_id,
        "mode": phone_number.mode,
        "created_at": phone_number.created_at.isoformat(),
        "updated_at": (
            phone_number.updated_at.isoformat() if phone_number.updated_at else None
        ),
    }


async def list_phone_numbers(
    session: AsyncSession, team_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Return the team's numbers with their agent and mode, ordered by number."""
    rows = await session.execute(
        select(PhoneNumber, Agent)
        .join(Agent, Agent.id == PhoneNumber.agent_id)
        .where(PhoneNumber.team_id == team_id)
        .order_by(PhoneNumber.number)
    )
    return [phone_number_document(number, agent) for number, agent in rows]
