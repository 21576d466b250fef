"""Creating the first super admin accounts, exactly once.

Setup is allowed only while no super admin exists. Two concurrent setup
requests are serialized by a lock held to the end of the transaction, so the
second one sees the first one's accounts and fails with Conflict: on
PostgreSQL a transaction-level advisory lock, and on SQLite the database lock
that every transaction takes with `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.accounts.passwords import validate_password
from renchi.accounts.users import create_user, validate_email
from renchi.db.models import User
from renchi.errors import Conflict, InvalidInput

# An arbitrary constant that names this lock among PostgreSQL advisory locks.
SETUP_LOCK_KEY = 0x52454E4348490001


@dataclass(frozen=True)
class NewAccount:
    email: str
    password: str


async def super_admin_exists(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(User.super_admin))))


async def create_first_super_admins(
    session: AsyncSession, accounts: Sequence[NewAccount], *, numbered: bool = True
) -> list[User]:
    """Create `accounts` as super admins unless a super admin exists already.

    Every account is validated before any is created. Raises Conflict once
    setup has been done, and InvalidInput naming the field, prefixed with
    the account's position (`accounts[1].password`) when `numbered`.
    """
    if not accounts:
        raise InvalidInput("Give at least one account.", field="accounts")
    emails: set[str] = set()
    for index, account in enumerate(accounts):
        try:
            email = validate_email(account.email)
            validate_password(account.password, email=email)
        except InvalidInput as error:
            if not numbered:
                raise
            raise InvalidInput(
                f"Account {index + 1}: {error.message}",
                field=f"accounts[{index}].{error.field}",
            ) from error
        if email in emails:
            raise InvalidInput(
                f"Account {index + 1}: email {email!r} is given twice.",
                field=f"accounts[{index}].email",
            )
        emails.add(email)

    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK_KEY}
        )
    if await super_admin_exists(session):
        raise Conflict("Setup is already done: a super admin exists.")
    return [
        await create_user(
            session, email=account.email, password=account.password, super_admin=True
        )
        for account in accounts
    ]
