"""Creating users and checking their passwords.

The command line, the setup endpoint and the login endpoint call these same
functions, so every path applies the same email and password rules.
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.accounts.passwords import (
    dummy_hash,
    hash_password,
    needs_rehash,
    validate_password,
    verify_password,
)
from renchi.db.models import User
from renchi.db.models.base import utcnow
from renchi.errors import Conflict, InvalidInput

MAX_EMAIL_LENGTH = 320
# One @, no spaces, and a dot in the domain: enough to catch typing mistakes
# without rejecting addresses that a stricter pattern gets wrong.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    """Return `email` trimmed and in lower case, as it is stored and looked up."""
    return email.strip().lower()


def validate_email(email: str) -> str:
    """Return the normalized email, or raise InvalidInput naming the field."""
    normalized = normalize_email(email)
    if (
        len(normalized) > MAX_EMAIL_LENGTH
        or not normalized.isprintable()
        or not _EMAIL.match(normalized)
    ):
        raise InvalidInput(f"Invalid email address {email!r}.", field="email")
    return normalized


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """Return the user with `email`, or None, also when `email` is not valid."""
    try:
        normalized = validate_email(email)
    except InvalidInput:
        return None
    return await session.scalar(select(User).where(User.email == normalized))


async def create_user(
    session: AsyncSession, *, email: str, password: str, super_admin: bool = False
) -> User:
    """Create a user after checking the email and the password rules."""
    normalized = validate_email(email)
    validate_password(password, email=normalized)
    if await get_user_by_email(session, normalized) is not None:
        raise Conflict(f"A user with email {normalized!r} already exists.")
    password_hash = await asyncio.to_thread(hash_password, password)
    user = User(email=normalized, password_hash=password_hash, super_admin=super_admin)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(f"A user with email {normalized!r} already exists.") from error
    return user


async def authenticate_user(
    session: AsyncSession, *, email: str, password: str
) -> User | None:
    """Return the user when the password matches, else None.

    A missing user costs one password verification too, so the time taken
    does not tell whether the email is registered. A hash made with older
    parameters is replaced after a successful check.
    """
    user = await get_user_by_email(session, email)
    stored = user.password_hash if user is not None else dummy_hash()
    matches = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not matches:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    user.last_login_at = utcnow()
    return user
