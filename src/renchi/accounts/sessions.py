"""Login sessions: random tokens, stored only as their SHA-256 hash.

A session ends at its absolute expiry or after the idle timeout without use,
whichever comes first. Use is recorded at most once per `touch_interval`,
so an active client does not cause a database write on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.db.models import User, UserSession
from renchi.db.models.base import utcnow

TOKEN_BYTES = 32


@dataclass(frozen=True)
class SessionPolicy:
    lifetime: timedelta
    idle_timeout: timedelta
    touch_interval: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class StartedSession:
    """A new session and its token, which exists nowhere else once returned."""

    token: str
    record: UserSession


@dataclass(frozen=True)
class ActiveSession:
    record: UserSession
    user: User


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    session: AsyncSession,
    *,
    user: User,
    policy: SessionPolicy,
    now: datetime | None = None,
) -> StartedSession:
    """Create a session for `user` and drop the user's expired ones."""
    now = now or utcnow()
    await session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id, UserSession.expires_at <= now
        )
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = UserSession(
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + policy.lifetime,
        last_seen_at=now,
    )
    session.add(record)
    await session.flush()
    return StartedSession(token=token, record=record)


async def resolve_session(
    session: AsyncSession,
    token: str,
    *,
    policy: SessionPolicy,
    now: datetime | None = None,
) -> ActiveSession | None:
    """Return the live session of `token` and its user, or None.

    An expired or idle session is deleted. The caller commits, so that both
    the deletion and a refreshed `last_seen_at` are kept.
    """
    now = now or utcnow()
    row = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == hash_token(token))
        )
    ).first()
    if row is None:
        return None
    record, user = row
    if now >= record.expires_at or now >= record.last_seen_at + policy.idle_timeout:
        await session.delete(record)
        return None
    if now - record.last_seen_at >= policy.touch_interval:
        record.last_seen_at = now
    return ActiveSession(record=record, user=user)


async def end_session(session: AsyncSession, token: str) -> bool:
    """Delete the session of `token`; return False when there was none."""
    result = await session.execute(
        delete(UserSession).where(UserSession.token_hash == hash_token(token))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
