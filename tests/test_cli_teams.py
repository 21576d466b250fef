"""The team commands of `renchi admin`: settings, the team document and releasing numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from renchi.cli import main
from renchi.db.engine import Database
from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, make_user
from tests.support.cli import run_command
from tests.support.factories import team_with_number

RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path, postgres_url: str, database: Database) -> RunCli:
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": postgres_url,
        "RENCHI_VAR_DIR": str(tmp_path / "var"),
        "RENCHI_LOG_LEVEL": "WARNING",
    }

    def run(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**env, **extra_env})

    return run


def output_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def add_number(run_cli: RunCli, team: str, number: str, agent: str) -> Result:
    return run_cli(
        "admin",
        "add-phone-number",
        "--team",
        team,
        "--number",
        number,
        "--agent-id",
        agent,
    )


def test_set_setting_and_show_team(run_cli: RunCli) -> None:
    run_cli("admin", "create-team", "--name", "Acme Dental")
    add_number(run_cli, "acme-dental", "+14155550100", "agent_acme")

    timezone = output_json(
        run_cli(
            "admin", "set-setting", "--team", "acme-dental", "timezone", "Asia/Tokyo"
        )
    )
    recipients = output_json(
        run_cli(
            "admin",
            "set-setting",
            "--team",
            "acme-dental",
            "summary_recipients",
            '["Ops@Example.com", "ops@example.com"]',
        )
    )
    enabled = output_json(
        run_cli(
            "admin",
            "set-setting",
            "--team",
            "acme-dental",
            "daily_summary_enabled",
            "false",
        )
    )
    team = output_json(run_cli("admin", "show-team", "--team", "acme-dental"))
    changes = output_json(run_cli("admin", "setting-changes", "--team", "acme-dental"))

    assert timezone["timezone"] == "Asia/Tokyo"
    assert recipients["summary_recipients"] == ["ops@example.com"]
    assert enabled["daily_summary_enabled"] is False
    assert team["settings"] == enabled
    assert team["slug"] == "acme-dental"
    assert [number["number"] for number in team["phone_numbers"]] == ["+14155550100"]
    assert [change["field"] for change in changes] == [
        "daily_summary_enabled",
        "summary_recipients",
        "timezone",
    ]
    assert {change["user_id"] for change in changes} == {None}


def test_retention_default_from_environment(run_cli: RunCli) -> None:
    run_cli("admin", "create-team", "--name", "Acme Dental")

    default = output_json(
        run_cli(
            "admin",
            "show-team",
            "--team",
            "acme-dental",
            RENCHI_RECORDING_RETENTION_DAYS="45",
        )
    )
    own = output_json(
        run_cli(
            "admin",
            "set-setting",
            "--team",
            "acme-dental",
            "recording_retention_days",
            "30",
            RENCHI_RECORDING_RETENTION_DAYS="45",
        )
    )
    reset = output_json(
        run_cli(
            "admin",
            "set-setting",
            "--team",
            "acme-dental",
            "recording_retention_days",
            "null",
            RENCHI_RECORDING_RETENTION_DAYS="45",
        )
    )

    assert default["settings"]["recording_retention_days"] == 45
    assert own["recording_retention_days"] == 30
    assert reset["recording_retention_days"] == 45


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("timezone", "Mars/Base", "Invalid timezone 'Mars/Base'"),
        ("recording_retention_days", "0", "Invalid recording_retention_days 0"),
        ("recording_retention_days", "thirty", "write it as JSON"),
        ("fallback_number", "+14155550100", "Renchi answers"),
        ("retention", "30", "Unknown setting 'retention'"),
    ],
)
def test_set_setting_rejects(
    run_cli: RunCli, name: str, value: str, message: str
) -> None:
    run_cli("admin", "create-team", "--name", "Acme Dental")
    add_number(run_cli, "acme-dental", "+14155550100", "agent_acme")

    result = run_cli("admin", "set-setting", "--team", "acme-dental", name, value)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr


def test_release_then_add_elsewhere(run_cli: RunCli) -> None:
    run_cli("admin", "create-team", "--name", "Acme")
    run_cli("admin", "create-team", "--name", "Beta")
    add_number(run_cli, "acme", "+14155550100", "agent_a")

    taken = add_number(run_cli, "beta", "+14155550100", "agent_b")
    wrong_team = run_cli(
        "admin", "release-phone-number", "--team", "beta", "--number", "+14155550100"
    )
    released = output_json(
        run_cli(
            "admin",
            "release-phone-number",
            "--team",
            "acme",
            "--number",
            "+14155550100",
        )
    )
    again = run_cli(
        "admin", "release-phone-number", "--team", "acme", "--number", "+14155550100"
    )
    moved = output_json(add_number(run_cli, "beta", "+14155550100", "agent_b"))
    acme = output_json(run_cli("admin", "show-team", "--team", "acme"))

    assert taken.exit_code == 1
    assert "belongs to another team" in taken.stderr
    assert wrong_team.exit_code == 1
    assert "not found" in wrong_team.stderr
    assert released == {"number": "+14155550100", "team": "acme", "released": True}
    assert again.exit_code == 1
    assert "not found" in again.stderr
    assert moved["team"] == "beta"
    assert moved["created"] is True
    assert acme["phone_numbers"] == []


async def test_command_line_and_api_agree(
    make_client: AppFactory, database: Database, postgres_url: str, tmp_path: Path
) -> None:
    team = await team_with_number(database)
    await make_user(database, "owner@example.com", team=team, role="owner")
    async with make_client() as (client, _):
        owner = bearer(await login(client, "owner@example.com"))
        await client.patch(
            "/api/teams/acme-dental/settings",
            json={"calendar_id": "ops@group.calendar.google.com"},
            headers=owner,
        )
        set_by_command = await run_command(
            [
                "admin",
                "set-setting",
                "--team",
                "acme-dental",
                "teams_channel",
                '{"team_id": "t1", "channel_id": "19:c1@thread.tacv2"}',
            ],
            database_url=postgres_url,
            var_dir=tmp_path / "var",
        )
        shown_by_command = await run_command(
            ["admin", "show-team", "--team", "acme-dental"],
            database_url=postgres_url,
            var_dir=tmp_path / "var",
        )
        api = await client.get("/api/teams/acme-dental", headers=owner)

    assert set_by_command.exit_code == 0, set_by_command.output
    assert shown_by_command.exit_code == 0, shown_by_command.output
    document = json.loads(shown_by_command.stdout)
    assert document == api.json()
    assert document["settings"]["calendar_id"] == "ops@group.calendar.google.com"
    assert document["settings"]["teams_channel"] == {
        "team_id": "t1",
        "channel_id": "19:c1@thread.tacv2",
    }
