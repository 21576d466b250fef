"""Calls, their transcripts and their recordings."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from renchi.db.models.base import (
    Base,
    BoundedInteger,
    BoundedNumeric,
    BoundedString,
    CleanText,
    JSONType,
    created_at,
    json_object,
    updated_at,
    uuid_pk,
)


class Call(Base):
    """One phone call: its Twilio leg, its ElevenLabs conversation, or both."""

    __tablename__ = "calls"
    __table_args__ = (
        # Caller history for the dynamic variables, read while the phone rings.
        Index("ix_calls_team_caller_started", "team_id", "from_number", "started_at"),
        # A team's calls, newest first.
        Index("ix_calls_team_started", "team_id", "started_at", "id"),
    )

    id: Mapped[uuid_pk]
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL")
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    direction: Mapped[str | None] = mapped_column(BoundedString(32))
    from_number: Mapped[str | None] = mapped_column(BoundedString(64))
    to_number: Mapped[str | None] = mapped_column(BoundedString(64))
    mode: Mapped[str | None] = mapped_column(BoundedString(32))

    # Twilio's CallStatus of the telephone leg; it only moves forward.
    status: Mapped[str | None] = mapped_column(BoundedString(32))
    outcome: Mapped[str | None] = mapped_column(BoundedString(16))
    failure_reason: Mapped[str | None] = mapped_column(BoundedString(200))
    termination_reason: Mapped[str | None] = mapped_column(CleanText)
    summary: Mapped[str | None] = mapped_column(CleanText)

    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(BoundedInteger)
    cost: Mapped[Decimal | None] = mapped_column(BoundedNumeric(14, 6))

    analysis: Mapped[json_object]
    dynamic_variables: Mapped[json_object]
    error: Mapped[dict[str, Any] | None]
    details: Mapped[json_object]

    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class Transcript(Base):
    """The turns of a call's conversation with its agent, one row per call."""

    __tablename__ = "transcripts"

    id: Mapped[uuid_pk]
    call_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[str | None] = mapped_column(BoundedString(128))
    # ElevenLabs' status of the conversation, such as `done` or `failed`.
    status: Mapped[str | None] = mapped_column(BoundedString(32))
    # Each turn: role, message (None on tool turns), time_in_call_secs,
    # tool_calls and tool_results.
    turns: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)

    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class Recording(Base):
    """A recording of a call, from Twilio or ElevenLabs, and where its media is stored."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[uuid_pk]
    call_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(BoundedString(32))
    external_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(BoundedString(32))
    source_url: Mapped[str | None] = mapped_column(CleanText)
    duration_seconds: Mapped[int | None] = mapped_column(BoundedInteger)
    channels: Mapped[int | None] = mapped_column(BoundedInteger)
    started_at: Mapped[datetime | None]

    # pending, stored, rejected, failed or deleted.
    media_status: Mapped[str] = mapped_column(BoundedString(16), default="pending")
    media_error: Mapped[str | None] = mapped_column(CleanText)
    storage_key: Mapped[str | None] = mapped_column(CleanText)
    content_type: Mapped[str | None] = mapped_column(BoundedString(64))
    size_bytes: Mapped[int | None] = mapped_column(BoundedInteger)
    stored_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]

    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class LegalHold(Base):
    """A legal hold on a call's recordings, kept after release as its history.

    The hold is active while `released_at` is null; a partial unique index
    allows one active hold per call.
    """

    __tablename__ = "legal_holds"
    __table_args__ = (
        Index(
            "uq_legal_holds_active_call",
            "call_id",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
            sqlite_where=text("released_at IS NULL"),
        ),
        Index("ix_legal_holds_call_set", "call_id", "set_at"),
    )

    id: Mapped[uuid_pk]
    call_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(CleanText)
    # Null when set from the command line or when the user was deleted.
    set_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    set_at: Mapped[datetime]
    released_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    released_at: Mapped[datetime | None]
