"""All tables, importable from one place for Alembic and the services."""

from renchi.db.models.accounts import ROLES, Membership, User, UserSession
from renchi.db.models.base import Base
from renchi.db.models.calls import Call, LegalHold, Recording, Transcript
from renchi.db.models.events import Task, WebhookEvent
from renchi.db.models.teams import (
    PHONE_NUMBER_MODES,
    Agent,
    PhoneNumber,
    Team,
    TeamSettingsChange,
    TeamSettingsRow,
)

__all__ = [
    "PHONE_NUMBER_MODES",
    "ROLES",
    "Agent",
    "Base",
    "Call",
    "LegalHold",
    "Membership",
    "PhoneNumber",
    "Recording",
    "Task",
    "Team",
    "TeamSettingsChange",
    "TeamSettingsRow",
    "Transcript",
    "User",
    "UserSession",
    "WebhookEvent",
]
