"""Users, memberships and signed-in clients for tests."""

from __future__ import annotations

import httpx

from renchi.accounts.roles import add_member
from renchi.accounts.users import create_user
from renchi.db.engine import Database
from renchi.db.models import Team, User

PASSWORD = "correct horse battery staple"


async def make_user(
    database: Database,
    email: str,
    *,
    password: str = PASSWORD,
    super_admin: bool = False,
    team: Team | None = None,
    role: str | None = None,
) -> User:
    async with database.transaction() as session:
        user = await create_user(
            session, email=email, password=password, super_admin=super_admin
        )
        if team is not None and role is not None:
            await add_member(session, team=team, user=user, role=role)
    return user


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in and return the session token."""
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": password, "include_token": True},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
