from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from renchi.cli import main
from renchi.db.engine import Database
from renchi.db.models import Membership, Team, User
from tests.support.accounts import PASSWORD

RunCli = Callable[..., Result]


@pytest.fixture
def run_cli(tmp_path: Path, postgres_url: str, database: Database) -> RunCli:
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": postgres_url,
        "RENCHI_VAR_DIR": str(tmp_path / "var"),
        "RENCHI_LOG_LEVEL": "WARNING",
    }

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=stdin, env=env)

    return run


def rows(database: Database, model: type[Any]) -> list[Any]:
    async def read() -> list[Any]:
        async with database.sessions() as session:
            return list(await session.scalars(select(model)))

    return asyncio.run(read())


def test_create_user_with_password_option(run_cli: RunCli, database: Database) -> None:
    result = run_cli(
        "admin", "create-user", "--email", "Ana@Example.com", "--password", PASSWORD
    )

    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["email"] == "ana@example.com"
    assert output["super_admin"] is False
    [user] = rows(database, User)
    assert user.email == "ana@example.com"
    assert PASSWORD not in user.password_hash


def test_create_super_admin_from_stdin(run_cli: RunCli, database: Database) -> None:
    result = run_cli(
        "admin",
        "create-user",
        "--email",
        "root@example.com",
        "--super-admin",
        stdin=PASSWORD + "\n",
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["super_admin"] is True
    [user] = rows(database, User)
    assert user.super_admin


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "too short"), ("Password2024!", "too common")],
)
def test_create_user_rejects_weak_password(
    run_cli: RunCli,
    database: Database,
    password: str,
    message: str,
) -> None:
    result = run_cli(
        "admin", "create-user", "--email", "ana@example.com", "--password", password
    )

    assert result.exit_code != 0
    assert message in result.output
    assert rows(database, User) == []


def test_create_user_twice_conflicts(run_cli: RunCli) -> None:
    args = (
        "admin",
        "create-user",
        "--email",
        "ana@example.com",
        "--password",
        PASSWORD,
    )
    first = run_cli(*args)
    second = run_cli(*args)

    assert first.exit_code == 0
    assert second.exit_code != 0
    assert "already exists" in second.output


def test_add_member_and_change_role(run_cli: RunCli, database: Database) -> None:
    assert run_cli("admin", "create-team", "--name", "Acme Dental").exit_code == 0
    assert (
        run_cli(
            "admin", "create-user", "--email", "ana@example.com", "--password", PASSWORD
        ).exit_code
        == 0
    )

    added = run_cli(
        "admin",
        "add-member",
        "--team",
        "acme-dental",
        "--email",
        "ana@example.com",
        "--role",
        "admin",
    )
    changed = run_cli(
        "admin",
        "add-member",
        "--team",
        "acme-dental",
        "--email",
        "ANA@example.com",
        "--role",
        "owner",
    )

    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {
        "team": "acme-dental",
        "email": "ana@example.com",
        "role": "admin",
        "created": True,
    }
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["created"] is False
    [membership] = rows(database, Membership)
    assert membership.role == "owner"
    [team] = rows(database, Team)
    assert membership.team_id == team.id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--team", "acme-dental", "--email", "nobody@example.com"), "not found"),
        (("--team", "no-team", "--email", "ana@example.com"), "not found"),
    ],
)
def test_add_member_errors(
    run_cli: RunCli, args: tuple[str, ...], message: str
) -> None:
    run_cli("admin", "create-team", "--name", "Acme Dental")
    run_cli(
        "admin", "create-user", "--email", "ana@example.com", "--password", PASSWORD
    )

    result = run_cli("admin", "add-member", *args, "--role", "member")

    assert result.exit_code != 0
    assert message in result.output
