"""Team memberships, the order of roles, and the access rule for team data.

Roles rank member < admin < owner. A super admin passes every role check on
every team. A user who is not a member of a team gets NotFound for it, the
same error as for a team that does not exist, so team names do not leak.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import ROLES, Membership, Team, User
from renchi.db.models.base import utcnow
from renchi.errors import Forbidden, InvalidInput, NotFound
from renchi.teams.provisioning import SLUG

_RANK = {role: rank for rank, role in enumerate(ROLES)}


def validate_role(role: str) -> str:
    if role not in _RANK:
        raise InvalidInput(
            f"Invalid role {role!r}; use one of {', '.join(ROLES)}.", field="role"
        )
    return role


def role_at_least(role: str | None, required: str) -> bool:
    """Tell whether `role` ranks at or above `required`; None ranks below every role."""
    return role is not None and _RANK[role] >= _RANK[validate_role(required)]


@dataclass(frozen=True)
class TeamAccess:
    """A user's access to one team: their role there, or None for a super admin who is no member."""

    user: User
    team: Team
    role: str | None

    @property
    def via_super_admin(self) -> bool:
        return self.role is None


@dataclass(frozen=True)
class TeamRole:
    team: Team
    role: str


async def add_member(
    session: AsyncSession, *, team: Team, user: User, role: str
) -> tuple[Membership, bool]:
    """Give `user` `role` on `team`; return the membership and whether it is new.

    Adding an existing member changes their role.
    """
    validate_role(role)
    membership = await session.scalar(
        select(Membership)
        .where(Membership.team_id == team.id, Membership.user_id == user.id)
        .with_for_update()
    )
    if membership is not None:
        membership.role = role
        membership.updated_at = utcnow()
        await session.flush()
        return membership, False
    membership = Membership(team_id=team.id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    return membership, True


async def teams_of(session: AsyncSession, user_id: uuid.UUID) -> list[TeamRole]:
    """Return the user's teams with their role, ordered by slug."""
    rows = await session.execute(
        select(Team, Membership.role)
        .join(Membership, Membership.team_id == Team.id)
        .where(Membership.user_id == user_id)
        .order_by(Team.slug)
    )
    return [TeamRole(team=team, role=role) for team, role in rows]


async def team_access(
    session: AsyncSession, *, user: User, slug: str | None, required: str
) -> TeamAccess:
    """Return the user's access to the team `slug` if their role is at least `required`.

    `slug` may be None only for a user with exactly one team. Raises
    InvalidInput (field `team`) when the team must be named, NotFound when the
    team does not exist or the user is no member, and Forbidden when the role
    is too low.
    """
    validate_role(required)
    if slug is None:
        teams = await teams_of(session, user.id)
        if len(teams) != 1:
            raise InvalidInput(
                "Missing query parameter 'team': name the team by its slug, "
                "such as ?team=acme-dental.",
                field="team",
            )
        only = teams[0]
        return _checked(TeamAccess(user=user, team=only.team, role=only.role), required)

    if not SLUG.match(slug):
        raise NotFound(f"Team {slug!r} not found.")
    row = (
        await session.execute(
            select(Team, Membership.role)
            .outerjoin(
                Membership,
                (Membership.team_id == Team.id) & (Membership.user_id == user.id),
            )
            .where(Team.slug == slug)
        )
    ).first()
    if row is None or (row.role is None and not user.super_admin):
        raise NotFound(f"Team {slug!r} not found.")
    return _checked(TeamAccess(user=user, team=row.Team, role=row.role), required)


def _checked(access: TeamAccess, required: str) -> TeamAccess:
    if access.user.super_admin or role_at_least(access.role, required):
        return access
    raise Forbidden(
        f"This needs the {required} role on team {access.team.slug!r}; "
        f"your role is {access.role}."
    )


async def team_access_by_id(
    session: AsyncSession, *, user: User, team_id: uuid.UUID | None, required: str
) -> TeamAccess:
    """Like `team_access`, for a team known by id, such as the team of a call."""
    validate_role(required)
    team = await session.get(Team, team_id) if team_id is not None else None
    if team is None:
        raise NotFound("Team not found.")
    role = await session.scalar(
        select(Membership.role).where(
            Membership.team_id == team.id, Membership.user_id == user.id
        )
    )
    if role is None and not user.super_admin:
        raise NotFound("Team not found.")
    return _checked(TeamAccess(user=user, team=team, role=role), required)
