"""Accepted webhook events and the durable background tasks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from renchi.db.models.base import (
    Base,
    bigint_pk,
    created_at,
    json_object,
    updated_at,
    utcnow,
)


class WebhookEvent(Base):
    """One accepted webhook event; its unique key makes a repeat change nothing."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("source", "dedupe_key"),)

    id: Mapped[bigint_pk]
    source: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    call_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[json_object]
    outcome: Mapped[str] = mapped_column(String(32), default="accepted")
    # The body first answered, replayed to a repeat (the voice webhook's TwiML).
    response: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    spooled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[created_at]


class Task(Base):
    """A durable unit of background work, claimed by one worker at a time."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_state_due_at", "state", "due_at"),
        Index("ix_tasks_kind_state", "kind", "state"),
    )

    id: Mapped[bigint_pk]
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[json_object]
    # pending, running, succeeded or dead.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
    finished_at: Mapped[datetime | None]
