"""Teams, their ElevenLabs agents and the Twilio numbers that route to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renchi.db.models.base import Base, created_at, uuid_pk

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
