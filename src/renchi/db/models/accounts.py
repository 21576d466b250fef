"""Users, their team memberships and their login sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from renchi.db.models.base import Base, created_at, updated_at, uuid_pk

# Team roles from the least to the most privileged.
ROLES = ("member", "admin", "owner")


class User(Base):
    """A person who signs in; `super_admin` may act on every team."""

    __tablename__ = "users"

    id: Mapped[uuid_pk]
    # Stored in lower case, so the unique constraint ignores case.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    super_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class Membership(Base):
    """A user's role on one team."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        CheckConstraint("role IN ('member', 'admin', 'owner')", name="role"),
    )

    id: Mapped[uuid_pk]
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class UserSession(Base):
    """A login session; only the SHA-256 hash of its token is stored."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_expires_at", "expires_at"),)

    id: Mapped[uuid_pk]
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[created_at]
    # The absolute end of the session, whatever its activity.
    expires_at: Mapped[datetime]
    # Refreshed at most once a minute; the idle timeout counts from here.
    last_seen_at: Mapped[datetime]
