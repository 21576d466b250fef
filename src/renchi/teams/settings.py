"""Team settings: the one place that validates, stores and reads them.

Every other part reads a team's settings through `get_team_settings`, or
`load_all_team_settings` for a job that goes over every team, and gets a
`TeamSettings` with the defaults applied. `update_settings` validates a
partial change, stores it and records each changed field in
`team_settings_changes` with who changed it.

Storage is one `team_settings` row per team, created on the first change. A
team without a row has every default. `recording_retention_days` stays null
until the team sets it, so such teams follow RENCHI_RECORDING_RETENTION_DAYS
even after that setting changes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from renchi.accounts.users import validate_email
from renchi.db.models import (
    Membership,
    PhoneNumber,
    Team,
    TeamSettingsChange,
    TeamSettingsRow,
    User,
)
from renchi.db.upsert import insert_for
from renchi.errors import InvalidInput, brief, shorten
from renchi.teams.provisioning import validate_e164

DEFAULT_TIMEZONE = "UTC"
DEFAULT_CALENDAR_ID = "primary"
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
MAX_SUMMARY_RECIPIENTS = 50
MAX_CALENDAR_ID_LENGTH = 255
# Graph wants the team id as a GUID, and channel ids look like
# "19:...@thread.tacv2". 200 is a generous bound, not a documented limit.
MAX_CHANNEL_ID_LENGTH = 200

# Settings whose value on the command line is plain text rather than JSON.
TEXT_SETTINGS = frozenset({"timezone", "fallback_number", "calendar_id"})


@dataclass(frozen=True)
class TeamsChannel:
    """A Microsoft Teams channel: the team's id and the channel's id in Graph."""

    team_id: str
    channel_id: str


@dataclass(frozen=True)
class TeamSettings:
    """Every setting of one team with its effective value, defaults applied."""

    team_id: uuid.UUID
    timezone: str
    recording_retention_days: int
    fallback_number: str | None
    # None means the team's owners and admins; see `summary_recipients_of`.
    summary_recipients: tuple[str, ...] | None
    daily_summary_enabled: bool
    weekly_report_enabled: bool
    send_empty_summaries: bool
    teams_channel: TeamsChannel | None
    calendar_id: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def document(self) -> dict[str, Any]:
        """Return the settings as the JSON object of the API and the command line."""
        channel = self.teams_channel
        recipients = self.summary_recipients
        return {
            "timezone": self.timezone,
            "recording_retention_days": self.recording_retention_days,
            "fallback_number": self.fallback_number,
            "summary_recipients": list(recipients) if recipients is not None else None,
            "daily_summary_enabled": self.daily_summary_enabled,
            "weekly_report_enabled": self.weekly_report_enabled,
            "send_empty_summaries": self.send_empty_summaries,
            "teams_channel": (
                {"team_id": channel.team_id, "channel_id": channel.channel_id}
                if channel is not None
                else None
            ),
            "calendar_id": self.calendar_id,
        }


def _effective(
    team_id: uuid.UUID, row: TeamSettingsRow | None, *, default_retention_days: int
) -> TeamSettings:
    if row is None:
        return TeamSettings(
            team_id=team_id,
            timezone=DEFAULT_TIMEZONE,
            recording_retention_days=default_retention_days,
            fallback_number=None,
            summary_recipients=None,
            daily_summary_enabled=True,
            weekly_report_enabled=True,
            send_empty_summaries=False,
            teams_channel=None,
            calendar_id=DEFAULT_CALENDAR_ID,
        )
    channel = row.teams_channel
    return TeamSettings(
        team_id=team_id,
        timezone=row.timezone,
        recording_retention_days=(
            row.recording_retention_days
            if row.recording_retention_days is not None
            else default_retention_days
        ),
        fallback_number=row.fallback_number,
        summary_recipients=(
            tuple(row.summary_recipients)
            if row.summary_recipients is not None
            else None
        ),
        daily_summary_enabled=row.daily_summary_enabled,
        weekly_report_enabled=row.weekly_report_enabled,
        send_empty_summaries=row.send_empty_summaries,
        teams_channel=(
            TeamsChannel(team_id=channel["team_id"], channel_id=channel["channel_id"])
            if channel is not None
            else None
        ),
        calendar_id=row.calendar_id,
    )


async def get_team_settings(
    session: AsyncSession, team_id: uuid.UUID, *, default_retention_days: int
) -> TeamSettings:
    """Return the settings of one team; `default_retention_days` is RENCHI_RECORDING_RETENTION_DAYS."""
    row = await session.get(TeamSettingsRow, team_id)
    return _effective(team_id, row, default_retention_days=default_retention_days)


async def load_all_team_settings(
    session: AsyncSession, *, default_retention_days: int
) -> dict[uuid.UUID, TeamSettings]:
    """Return the settings of every team by team id, in one query."""
    rows = await session.execute(
        select(Team.id, TeamSettingsRow).outerjoin(
            TeamSettingsRow, TeamSettingsRow.team_id == Team.id
        )
    )
    return {
        team_id: _effective(team_id, row, default_retention_days=default_retention_days)
        for team_id, row in rows
    }


async def summary_recipients_of(
    session: AsyncSession, settings: TeamSettings
) -> list[str]:
    """Return who gets the team's summaries: the set recipients, else its owners and admins."""
    if settings.summary_recipients is not None:
        return list(settings.summary_recipients)
    emails = await session.scalars(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.team_id == settings.team_id,
            Membership.role.in_(("owner", "admin")),
        )
        .order_by(User.email)
    )
    return list(emails)


@cache
def _zone_names() -> frozenset[str]:
    # available_timezones() walks the zone files on every call. "localtime"
    # is the server's own zone and "Factory" is no place, so neither is a choice.
    return frozenset(available_timezones()) - {"localtime", "Factory"}


def _validate_timezone(value: object) -> str:
    if not isinstance(value, str) or value not in _zone_names():
        raise InvalidInput(
            f"Invalid timezone {brief(value)}: use an IANA time zone name such as "
            "'Europe/Berlin' or 'America/New_York'.",
            field="timezone",
        )
    return value


def _validate_retention(value: object) -> int | None:
    if value is None:
        return None
    # bool is a subclass of int, and 30.0 or "30" are not whole numbers of days.
    if type(value) is not int or not (
        MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS
    ):
        raise InvalidInput(
            f"Invalid recording_retention_days {brief(value)}: use a whole number of days "
            f"from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, or null for the "
            "platform default.",
            field="recording_retention_days",
        )
    return value


def _validate_fallback_number(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f"Invalid fallback_number {brief(value)}: use an E.164 number such as "
            "'+14155550100', or null.",
            field="fallback_number",
        )
    return validate_e164(value, field="fallback_number")


def _validate_summary_recipients(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            "Invalid summary_recipients: use a non-empty list of email addresses, "
            "or null for the team's owners and admins.",
            field="summary_recipients",
        )
    recipients: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(
                f"Invalid summary recipient {brief(item)}: use an email address.",
                field="summary_recipients",
            )
        try:
            email = validate_email(item)
        except InvalidInput as error:
            raise InvalidInput(error.message, field="summary_recipients") from error
        if email not in recipients:
            recipients.append(email)
    if len(recipients) > MAX_SUMMARY_RECIPIENTS:
        raise InvalidInput(
            f"Too many summary_recipients ({len(recipients)}): the maximum is "
            f"{MAX_SUMMARY_RECIPIENTS}; use a mailing list address for more.",
            field="summary_recipients",
        )
    return recipients


def _boolean_validator(name: str) -> Callable[[object], bool]:
    def validate(value: object) -> bool:
        if not isinstance(value, bool):
            raise InvalidInput(
                f"Invalid {name} {brief(value)}: use true or false.", field=name
            )
        return value

    return validate


def _bounded_text(value: object, *, maximum: int) -> str | None:
    """Return `value` stripped if it is printable text of 1 to `maximum` characters."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > maximum or not text.isprintable():
        return None
    return text


def _validate_teams_channel(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    problem = (
        'use {"team_id": "...", "channel_id": "..."} with the ids from Microsoft '
        f"Teams, each at most {MAX_CHANNEL_ID_LENGTH} characters, or null"
    )
    if not isinstance(value, dict) or set(value) != {"team_id", "channel_id"}:
        raise InvalidInput(f"Invalid teams_channel: {problem}.", field="teams_channel")
    channel: dict[str, str] = {}
    for key in ("team_id", "channel_id"):
        text = _bounded_text(value[key], maximum=MAX_CHANNEL_ID_LENGTH)
        if text is None:
            raise InvalidInput(
                f"Invalid teams_channel.{key} {brief(value[key])}: {problem}.",
                field="teams_channel",
            )
        channel[key] = text
    return channel


def _validate_calendar_id(value: object) -> str:
    text = _bounded_text(value, maximum=MAX_CALENDAR_ID_LENGTH)
    if text is None:
        raise InvalidInput(
            f"Invalid calendar_id {brief(value)}: use a Google Calendar id of 1 to "
            f"{MAX_CALENDAR_ID_LENGTH} characters, such as 'primary'.",
            field="calendar_id",
        )
    return text


# Each validator returns the value to store, or raises InvalidInput naming the field.
_VALIDATORS: dict[str, Callable[[object], object]] = {
    "timezone": _validate_timezone,
    "recording_retention_days": _validate_retention,
    "fallback_number": _validate_fallback_number,
    "summary_recipients": _validate_summary_recipients,
    "daily_summary_enabled": _boolean_validator("daily_summary_enabled"),
    "weekly_report_enabled": _boolean_validator("weekly_report_enabled"),
    "send_empty_summaries": _boolean_validator("send_empty_summaries"),
    "teams_channel": _validate_teams_channel,
    "calendar_id": _validate_calendar_id,
}
SETTING_NAMES = tuple(_VALIDATORS)


def validate_changes(changes: object) -> dict[str, object]:
    """Return the changes with each value checked and normalized, as they are stored.

    Raises InvalidInput naming the first unknown or invalid setting, and for
    anything but a non-empty object.
    """
    if not isinstance(changes, Mapping):
        raise InvalidInput("Settings must be a JSON object of setting names to values.")
    if not changes:
        raise InvalidInput(
            f"No settings given; send one or more of {', '.join(SETTING_NAMES)}."
        )
    for name in changes:
        if name not in _VALIDATORS:
            raise InvalidInput(
                f"Unknown setting {brief(name)}; the settings are "
                f"{', '.join(SETTING_NAMES)}.",
                field=shorten(name),
            )
    return {name: _VALIDATORS[name](value) for name, value in changes.items()}


def parse_setting_text(name: str, text: str) -> object:
    """Read a value given on the command line: plain text or JSON, by setting.

    `null` unsets a setting either way.
    """
    if name not in _VALIDATORS:
        raise InvalidInput(
            f"Unknown setting {brief(name)}; the settings are {', '.join(SETTING_NAMES)}.",
            field=shorten(name),
        )
    if text == "null":
        return None
    if name in TEXT_SETTINGS:
        return text
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInput(
            f"Invalid value {brief(text)} for {name}: write it as JSON, such as 30, "
            'true, ["ana@example.com"] or {"team_id": "...", "channel_id": "..."}.',
            field=name,
        ) from error


async def _check_fallback_not_routed(session: AsyncSession, number: str) -> None:
    routed = await session.scalar(
        select(PhoneNumber.id).where(PhoneNumber.number == number)
    )
    if routed is not None:
        raise InvalidInput(
            f"Invalid fallback_number {number}: it is a number that Renchi answers, "
            "so a caller sent there would come back to an agent. Use a number "
            "outside Renchi, such as the front desk.",
            field="fallback_number",
        )


async def _lock_row(session: AsyncSession, team_id: uuid.UUID) -> TeamSettingsRow:
    """Create the team's row if it is missing, then lock and return it."""
    await session.execute(
        insert_for(session, TeamSettingsRow)
        .values(team_id=team_id)
        .on_conflict_do_nothing(index_elements=["team_id"])
    )
    row = await session.scalar(
        select(TeamSettingsRow)
        .where(TeamSettingsRow.team_id == team_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def update_settings(
    session: AsyncSession,
    team: Team,
    changes: object,
    actor: User | None,
    *,
    default_retention_days: int,
) -> TeamSettings:
    """Validate and store the settings in `changes`, leaving the others as they are.

    Each setting whose stored value changes gets a row in
    `team_settings_changes` with `actor` (None: the command line). Returns the
    team's settings after the change.
    """
    values = validate_changes(changes)
    fallback = values.get("fallback_number")
    if isinstance(fallback, str):
        await _check_fallback_not_routed(session, fallback)

    row = await _lock_row(session, team.id)
    for name, new in values.items():
        old = getattr(row, name)
        if old == new:
            continue
        setattr(row, name, new)
        session.add(
            TeamSettingsChange(
                team_id=team.id,
                user_id=actor.id if actor is not None else None,
                field=name,
                old_value=old,
                new_value=new,
            )
        )
    await session.flush()
    return _effective(team.id, row, default_retention_days=default_retention_days)


async def list_setting_changes(
    session: AsyncSession, team_id: uuid.UUID, *, limit: int = 100
) -> list[dict[str, Any]]:
    """Return the team's recorded setting changes, newest first."""
    rows = await session.execute(
        select(TeamSettingsChange, User.email)
        .outerjoin(User, User.id == TeamSettingsChange.user_id)
        .where(TeamSettingsChange.team_id == team_id)
        .order_by(TeamSettingsChange.changed_at.desc(), TeamSettingsChange.id.desc())
        .limit(limit)
    )
    return [
        {
            "field": change.field,
            "old_value": change.old_value,
            "new_value": change.new_value,
            "user_id": str(change.user_id) if change.user_id else None,
            "user_email": email,
            "changed_at": change.changed_at.isoformat(),
        }
        for change, email in rows
    ]
