"""Team settings: validation of every setting, defaults, storage and the change history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from renchi.accounts.roles import add_member
from renchi.db.engine import Database
from renchi.db.models import Team, TeamSettingsChange, User
from renchi.errors import InvalidInput
from renchi.teams.settings import (
    SETTING_NAMES,
    TeamsChannel,
    get_team_settings,
    list_setting_changes,
    load_all_team_settings,
    parse_setting_text,
    summary_recipients_of,
    update_settings,
    validate_changes,
)
from tests.support.accounts import make_user
from tests.support.factories import team_with_number

DEFAULT_DAYS = 90

# (setting, value sent, value stored and read back)
VALID = [
    ("timezone", "Europe/Berlin", "Europe/Berlin"),
    ("timezone", "America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ("timezone", "UTC", "UTC"),
    ("recording_retention_days", 1, 1),
    ("recording_retention_days", 3650, 3650),
    ("recording_retention_days", 30, 30),
    ("fallback_number", "+4930123456", "+4930123456"),
    ("fallback_number", " +14155550111 ", "+14155550111"),
    ("fallback_number", None, None),
    (
        "summary_recipients",
        ["Ana@Example.com", "bo@example.com", "ana@example.com"],
        ["ana@example.com", "bo@example.com"],
    ),
    ("summary_recipients", None, None),
    ("daily_summary_enabled", False, False),
    ("weekly_report_enabled", False, False),
    ("send_empty_summaries", True, True),
    (
        "teams_channel",
        {
            "team_id": "b1c0ffee-0000-4000-8000-000000000001",
            "channel_id": "19:a@thread",
        },
        {
            "team_id": "b1c0ffee-0000-4000-8000-000000000001",
            "channel_id": "19:a@thread",
        },
    ),
    ("teams_channel", None, None),
    ("calendar_id", "team@group.calendar.google.com", "team@group.calendar.google.com"),
    ("calendar_id", " primary ", "primary"),
]

INVALID = [
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "../../etc/passwd"),
    ("timezone", "/usr/share/zoneinfo/UTC"),
    ("timezone", "Europe/../UTC"),
    ("timezone", ""),
    ("timezone", " Europe/Berlin"),
    ("timezone", None),
    ("timezone", "localtime"),
    ("timezone", "Factory"),
    ("timezone", 1),
    ("recording_retention_days", 0),
    ("recording_retention_days", 3651),
    ("recording_retention_days", -5),
    ("recording_retention_days", True),
    ("recording_retention_days", 30.0),
    ("recording_retention_days", "30"),
    ("recording_retention_days", [30]),
    ("fallback_number", "4155550100"),
    ("fallback_number", "+0155550100"),
    ("fallback_number", "+1 415 555 0100"),
    ("fallback_number", "+1415555010012345"),
    ("fallback_number", 14155550100),
    ("fallback_number", ""),
    ("summary_recipients", []),
    ("summary_recipients", "ana@example.com"),
    ("summary_recipients", ["not-an-address"]),
    ("summary_recipients", ["ana@example"]),
    ("summary_recipients", ["ana @example.com"]),
    ("summary_recipients", [None]),
    ("summary_recipients", [f"user{index}@example.com" for index in range(51)]),
    ("summary_recipients", {"to": "ana@example.com"}),
    ("daily_summary_enabled", "true"),
    ("daily_summary_enabled", 1),
    ("daily_summary_enabled", None),
    ("weekly_report_enabled", "false"),
    ("weekly_report_enabled", 0),
    ("send_empty_summaries", "yes"),
    ("send_empty_summaries", None),
    ("teams_channel", {"team_id": "t"}),
    ("teams_channel", {"team_id": "t", "channel_id": "c", "extra": "x"}),
    ("teams_channel", {"team_id": "", "channel_id": "c"}),
    ("teams_channel", {"team_id": "t", "channel_id": "   "}),
    ("teams_channel", {"team_id": 1, "channel_id": "c"}),
    ("teams_channel", {"team_id": "t", "channel_id": "c" * 201}),
    ("teams_channel", {"team_id": "t", "channel_id": "c\x00d"}),
    ("teams_channel", ["t", "c"]),
    ("teams_channel", "19:a@thread"),
    ("calendar_id", ""),
    ("calendar_id", "   "),
    ("calendar_id", "x" * 256),
    ("calendar_id", None),
    ("calendar_id", 7),
    ("calendar_id", "primary\nX-Injected: 1"),
]


@pytest.fixture
async def acme(database: Database) -> Team:
    return await team_with_number(database)


async def change(
    database: Database, team: Team, changes: Any, actor: User | None = None
) -> dict[str, Any]:
    async with database.transaction() as session:
        settings = await update_settings(
            session, team, changes, actor, default_retention_days=DEFAULT_DAYS
        )
    return settings.document()


async def read(database: Database, team: Team) -> dict[str, Any]:
    async with database.sessions() as session:
        settings = await get_team_settings(
            session, team.id, default_retention_days=DEFAULT_DAYS
        )
    return settings.document()


async def test_defaults_without_row(database: Database, acme: Team) -> None:
    assert await read(database, acme) == {
        "timezone": "UTC",
        "recording_retention_days": DEFAULT_DAYS,
        "fallback_number": None,
        "summary_recipients": None,
        "daily_summary_enabled": True,
        "weekly_report_enabled": True,
        "send_empty_summaries": False,
        "teams_channel": None,
        "calendar_id": "primary",
    }


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    VALID,
    ids=[f"{name}-{value!r}"[:60] for name, value, _ in VALID],
)
async def test_valid_value_is_stored(
    database: Database, acme: Team, name: str, value: Any, stored: Any
) -> None:
    returned = await change(database, acme, {name: value})

    assert returned[name] == stored
    assert (await read(database, acme))[name] == stored


@pytest.mark.parametrize(
    ("name", "value"),
    INVALID,
    ids=[f"{name}-{value!r}"[:60] for name, value in INVALID],
)
async def test_invalid_value_names_field(
    database: Database, acme: Team, name: str, value: Any
) -> None:
    before = await read(database, acme)

    with pytest.raises(InvalidInput) as raised:
        await change(database, acme, {name: value})

    assert raised.value.field == name
    assert await read(database, acme) == before


def test_every_setting_has_cases() -> None:
    assert {name for name, _, _ in VALID} == set(SETTING_NAMES)
    assert {name for name, _ in INVALID} == set(SETTING_NAMES)


@pytest.mark.parametrize("body", [{}, [], "timezone", None, 3])
def test_empty_or_non_object_rejected(body: Any) -> None:
    with pytest.raises(InvalidInput):
        validate_changes(body)


def test_unknown_setting_named() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_changes({"timezone": "UTC", "retention": 30})

    assert raised.value.field == "retention"
    assert "timezone" in raised.value.message


async def test_invalid_change_stores_nothing(database: Database, acme: Team) -> None:
    with pytest.raises(InvalidInput):
        await change(database, acme, {"timezone": "Europe/Berlin", "calendar_id": ""})

    assert (await read(database, acme))["timezone"] == "UTC"
    async with database.sessions() as session:
        count = await session.scalar(select(func.count(TeamSettingsChange.id)))
    assert count == 0


async def test_patch_changes_only_given_keys(database: Database, acme: Team) -> None:
    await change(database, acme, {"timezone": "Europe/Berlin", "calendar_id": "ops"})

    returned = await change(database, acme, {"send_empty_summaries": True})

    assert returned["timezone"] == "Europe/Berlin"
    assert returned["calendar_id"] == "ops"
    assert returned["send_empty_summaries"] is True
    assert returned["daily_summary_enabled"] is True


async def test_retention_follows_default_until_set(
    database: Database, acme: Team
) -> None:
    await change(database, acme, {"timezone": "Europe/Berlin"})
    async with database.sessions() as session:
        default = await get_team_settings(session, acme.id, default_retention_days=45)

    await change(database, acme, {"recording_retention_days": 7})
    async with database.sessions() as session:
        own = await get_team_settings(session, acme.id, default_retention_days=45)

    await change(database, acme, {"recording_retention_days": None})
    async with database.sessions() as session:
        reset = await get_team_settings(session, acme.id, default_retention_days=45)

    assert default.recording_retention_days == 45
    assert own.recording_retention_days == 7
    assert reset.recording_retention_days == 45


async def test_changes_recorded_with_user(database: Database, acme: Team) -> None:
    ana = await make_user(database, "ana@example.com", team=acme, role="owner")
    await change(database, acme, {"timezone": "Europe/Berlin"}, ana)
    await change(
        database,
        acme,
        # The timezone is unchanged, so only the retention is recorded.
        {"timezone": "Europe/Berlin", "recording_retention_days": 30},
        None,
    )

    async with database.sessions() as session:
        changes = await list_setting_changes(session, acme.id)

    assert [
        (item["field"], item["old_value"], item["new_value"]) for item in changes
    ] == [
        ("recording_retention_days", None, 30),
        ("timezone", "UTC", "Europe/Berlin"),
    ]
    assert changes[0]["user_id"] is None
    assert changes[0]["user_email"] is None
    assert changes[1]["user_id"] == str(ana.id)
    assert changes[1]["user_email"] == "ana@example.com"
    assert changes[1]["changed_at"] <= changes[0]["changed_at"]


async def test_json_values_recorded(database: Database, acme: Team) -> None:
    channel = {"team_id": "t1", "channel_id": "c1"}
    await change(database, acme, {"teams_channel": channel})
    await change(database, acme, {"teams_channel": None})

    async with database.sessions() as session:
        changes = await list_setting_changes(session, acme.id)

    assert [(item["old_value"], item["new_value"]) for item in changes] == [
        (channel, None),
        (None, channel),
    ]


async def test_fallback_may_not_be_routed_number(
    database: Database, acme: Team
) -> None:
    await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )

    for number in ("+14155550100", "+14155550199"):
        with pytest.raises(InvalidInput) as raised:
            await change(database, acme, {"fallback_number": number})
        assert raised.value.field == "fallback_number"


async def test_concurrent_first_changes(database: Database, acme: Team) -> None:
    await asyncio.gather(
        change(database, acme, {"timezone": "Europe/Berlin"}),
        change(database, acme, {"calendar_id": "ops"}),
    )

    settings = await read(database, acme)
    assert settings["timezone"] == "Europe/Berlin"
    assert settings["calendar_id"] == "ops"


async def test_bulk_reader_covers_every_team(database: Database, acme: Team) -> None:
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await change(database, acme, {"recording_retention_days": 10})
    await change(database, beta, {"teams_channel": {"team_id": "t", "channel_id": "c"}})

    async with database.sessions() as session:
        everything = await load_all_team_settings(session, default_retention_days=60)

    assert set(everything) == {acme.id, beta.id}
    assert everything[acme.id].recording_retention_days == 10
    assert everything[beta.id].recording_retention_days == 60
    assert everything[beta.id].teams_channel == TeamsChannel("t", "c")
    assert everything[acme.id].zone.key == "UTC"


async def test_summary_recipients_default_to_admins(
    database: Database, acme: Team
) -> None:
    await make_user(database, "owner@example.com", team=acme, role="owner")
    await make_user(database, "admin@example.com", team=acme, role="admin")
    await make_user(database, "member@example.com", team=acme, role="member")
    beta = await team_with_number(
        database, name="Beta Clinic", number="+14155550199", agent_id="agent_beta"
    )
    await make_user(database, "beta@example.com", team=beta, role="owner")

    async with database.sessions() as session:
        settings = await get_team_settings(
            session, acme.id, default_retention_days=DEFAULT_DAYS
        )
        default = await summary_recipients_of(session, settings)
    await change(database, acme, {"summary_recipients": ["ops@example.com"]})
    async with database.sessions() as session:
        settings = await get_team_settings(
            session, acme.id, default_retention_days=DEFAULT_DAYS
        )
        chosen = await summary_recipients_of(session, settings)

    assert default == ["admin@example.com", "owner@example.com"]
    assert chosen == ["ops@example.com"]


async def test_owner_added_later_receives_summary(
    database: Database, acme: Team
) -> None:
    user = await make_user(database, "late@example.com")
    async with database.transaction() as session:
        await add_member(session, team=acme, user=user, role="owner")
        settings = await get_team_settings(
            session, acme.id, default_retention_days=DEFAULT_DAYS
        )
        recipients = await summary_recipients_of(session, settings)

    assert recipients == ["late@example.com"]


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("timezone", "Europe/Berlin", "Europe/Berlin"),
        ("fallback_number", "+14155550111", "+14155550111"),
        ("fallback_number", "null", None),
        ("calendar_id", "123", "123"),
        ("recording_retention_days", "30", 30),
        ("daily_summary_enabled", "false", False),
        ("summary_recipients", '["a@example.com"]', ["a@example.com"]),
        (
            "teams_channel",
            '{"team_id": "t", "channel_id": "c"}',
            {"team_id": "t", "channel_id": "c"},
        ),
    ],
)
def test_parse_setting_text(name: str, text: str, value: Any) -> None:
    assert parse_setting_text(name, text) == value


def test_parse_setting_text_rejects_bad_json() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_setting_text("daily_summary_enabled", "yes please")

    assert raised.value.field == "daily_summary_enabled"
