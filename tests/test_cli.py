from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from renchi.cli import main
from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.models import Call, Task


@pytest.fixture
def run(postgres_url: str, database: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `renchi` against the test database in development mode."""
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": postgres_url,
        "RENCHI_VAR_DIR": str(tmp_path / "var"),
        "RENCHI_LOG_LEVEL": "WARNING",
    }

    def invoke(*args: str, input: str | None = None, **extra_env: str) -> Result:
        return CliRunner().invoke(
            main, list(args), env={**env, **extra_env}, input=input
        )

    return invoke


def output_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_create_team_derives_slug(run) -> None:  # type: ignore[no-untyped-def]
    team = output_json(run("admin", "create-team", "--name", "Acme Dental"))

    assert team["slug"] == "acme-dental"
    assert team["name"] == "Acme Dental"
    assert len(team["id"]) == 36


def test_taken_slug_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme Dental")

    result = run("admin", "create-team", "--name", "Other", "--slug", "acme-dental")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "already taken" in result.stderr


@pytest.mark.parametrize("slug", ["Acme", "acme--dental", "-acme", "acme_dental", ""])
def test_invalid_slug_is_an_error(run, slug: str) -> None:  # type: ignore[no-untyped-def]
    result = run("admin", "create-team", "--name", "Acme", "--slug", slug)

    assert result.exit_code == 1
    assert "Invalid slug" in result.stderr


def test_add_phone_number_creates_agent(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme Dental")

    first = output_json(
        run(
            "admin",
            "add-phone-number",
            "--team",
            "acme-dental",
            "--number",
            "+14155550100",
            "--agent-id",
            "agent_1",
        )
    )
    second = output_json(
        run(
            "admin",
            "add-phone-number",
            "--team",
            "acme-dental",
            "--number",
            "+14155550101",
            "--agent-id",
            "agent_1",
            "--mode",
            "native",
        )
    )

    assert first == {
        "number": "+14155550100",
        "team": "acme-dental",
        "agent_id": "agent_1",
        "mode": "register_call",
        "created": True,
        "agent_created": True,
    }
    assert second["agent_created"] is False
    assert second["mode"] == "native"


def test_number_of_another_team_conflicts(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme")
    run("admin", "create-team", "--name", "Beta")
    run(
        "admin",
        "add-phone-number",
        "--team",
        "acme",
        "--number",
        "+14155550100",
        "--agent-id",
        "agent_a",
    )

    result = run(
        "admin",
        "add-phone-number",
        "--team",
        "beta",
        "--number",
        "+14155550100",
        "--agent-id",
        "agent_b",
    )

    assert result.exit_code == 1
    assert "belongs to another team" in result.stderr


@pytest.mark.parametrize(
    "number", ["4155550100", "+0155550100", "+1415555010012345", "+1 415 555 0100"]
)
def test_invalid_number_is_an_error(run, number: str) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme")

    result = run(
        "admin",
        "add-phone-number",
        "--team",
        "acme",
        "--number",
        number,
        "--agent-id",
        "agent_a",
    )

    assert result.exit_code == 1
    assert "E.164" in result.stderr


def test_unknown_team_is_an_error(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "admin",
        "add-phone-number",
        "--team",
        "nobody",
        "--number",
        "+14155550100",
        "--agent-id",
        "a",
    )

    assert result.exit_code == 1
    assert "'nobody' not found" in result.stderr


def test_calls_list_and_show(run, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    async def add_call() -> str:
        database = create_database(Settings(), url=postgres_url)
        async with database.transaction() as session:
            call = Call(
                call_sid="CA-cli",
                from_number="+15550001111",
                status="completed",
                duration_seconds=9,
            )
            session.add(call)
            await session.flush()
            call_id = str(call.id)
        await database.dispose()
        return call_id

    call_id = asyncio.run(add_call())

    listed = output_json(run("calls", "list"))
    shown = output_json(run("calls", "show", call_id))

    assert [call["id"] for call in listed] == [call_id]
    assert shown["call_sid"] == "CA-cli"
    assert shown["status"] == "completed"
    assert shown["duration_seconds"] == 9
    assert shown["recordings"] == []
    assert shown["events"] == []


def test_show_unknown_call(run) -> None:  # type: ignore[no-untyped-def]
    missing = run("calls", "show", "00000000-0000-0000-0000-000000000000")
    malformed = run("calls", "show", "CA123")

    assert missing.exit_code == 1
    assert "not found" in missing.stderr
    assert malformed.exit_code == 2
    assert "not a call id" in malformed.stderr


def test_tasks_list_and_retry(run, postgres_url: str) -> None:  # type: ignore[no-untyped-def]
    async def add_dead_task() -> int:
        database = create_database(Settings(), url=postgres_url)
        async with database.transaction() as session:
            task = Task(
                kind="fetch_recording",
                payload={},
                state="dead",
                attempts=8,
                max_attempts=8,
                last_error="boom",
            )
            session.add(task)
            await session.flush()
            task_id = task.id
        await database.dispose()
        return task_id

    task_id = asyncio.run(add_dead_task())

    dead = output_json(run("tasks", "list", "--state", "dead"))
    retried = output_json(run("tasks", "retry", str(task_id)))
    again = run("tasks", "retry", str(task_id))

    assert [task["id"] for task in dead] == [task_id]
    assert dead[0]["last_error"] == "boom"
    assert retried["state"] == "pending"
    assert retried["attempts"] == 0
    assert again.exit_code == 1
    assert "only a dead task can be retried" in again.stderr


def test_production_requires_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["calls", "list"], env={"RENCHI_ENV": "production"}
    )

    assert result.exit_code == 1
    for name in [
        "RENCHI_DATABASE_URL",
        "RENCHI_PUBLIC_URL",
        "RENCHI_TWILIO_AUTH_TOKEN",
    ]:
        assert name in result.stderr


def test_database_down_is_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["calls", "list"],
        env={
            "RENCHI_ENV": "development",
            "RENCHI_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
            "RENCHI_VAR_DIR": str(tmp_path),
            "RENCHI_DATABASE_TIMEOUT_SECONDS": "1",
        },
    )

    assert result.exit_code == 1
    assert "database is unavailable" in result.stderr
    assert "Traceback" not in result.stderr


def test_development_secrets_generated_once(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("spool", "status")
    secrets_file = tmp_path / "var" / "dev-secrets.env"
    first = secrets_file.read_text()
    run("spool", "status")

    assert "RENCHI_TWILIO_AUTH_TOKEN=" in first
    assert secrets_file.read_text() == first
    assert secrets_file.stat().st_mode & 0o777 == 0o600
