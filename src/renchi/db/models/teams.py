"""Teams, their settings, their ElevenLabs agents and the Twilio numbers that route to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renchi.db.models.base import (
    Base,
    JSONType,
    bigint_pk,
    created_at,
    updated_at,
    utcnow,
    uuid_pk,
)

PHONE_NUMBER_MODES = ("register_call", "native")


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[uuid_pk]
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[created_at]


class Agent(Base):
    """An ElevenLabs conversational agent that answers a team's calls."""

    __tablename__ = "agents"

    id: Mapped[uuid_pk]
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    elevenlabs_agent_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]

    team: Mapped[Team] = relationship(lazy="raise")


class PhoneNumber(Base):
    """A Twilio number of a team, with the agent that answers it and the mode."""

    __tablename__ = "phone_numbers"

    id: Mapped[uuid_pk]
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="RESTRICT"), index=True
    )
    number: Mapped[str] = mapped_column(String(32), unique=True)
    mode: Mapped[str] = mapped_column(String(32), default="register_call")
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]

    team: Mapped[Team] = relationship(lazy="raise")
    agent: Mapped[Agent] = relationship(lazy="raise")


class TeamSettingsRow(Base):
    """The stored settings of one team; `renchi.teams.settings` reads and validates them.

    A team without a row has every default. `recording_retention_days` is null
    while the team follows RENCHI_RECORDING_RETENTION_DAYS.
    """

    __tablename__ = "team_settings"

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    recording_retention_days: Mapped[int | None] = mapped_column(Integer)
    fallback_number: Mapped[str | None] = mapped_column(String(32))
    summary_recipients: Mapped[list[str] | None] = mapped_column(JSONType)
    daily_summary_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    weekly_report_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    send_empty_summaries: Mapped[bool] = mapped_column(Boolean, default=False)
    teams_channel: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    calendar_id: Mapped[str] = mapped_column(String(255), default="primary")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class TeamSettingsChange(Base):
    """One changed setting: who changed it (null: the command line), when, and the values."""

    __tablename__ = "team_settings_changes"
    __table_args__ = (
        Index("ix_team_settings_changes_team_changed", "team_id", "changed_at"),
    )

    id: Mapped[bigint_pk]
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    field: Mapped[str] = mapped_column(String(64))
    # The stored values, as JSON; null where the setting was unset.
    old_value: Mapped[Any | None] = mapped_column(JSONType)
    new_value: Mapped[Any | None] = mapped_column(JSONType)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
