from __future__ import annotations

import asyncio
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import structlog
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url
from structlog.typing import EventDict

import renchi.runtime
import renchi.web.app
from renchi.cli import main
from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import head_revision, upgrade
from renchi.db.models import Call, Task
from renchi.runtime import build_runtime
from renchi.web.app import create_app
from tests.conftest import ADMIN_URL, make_settings
from tests.support.twilio import post_signed, status_params

SCHEMA_MISSING = "Error: The database has no Renchi schema; run `renchi migrate`.\n"


@pytest.fixture(autouse=True)
def restore_umask() -> Iterator[None]:
    """`renchi` sets a private umask for the whole process; put the suite's back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A PostgreSQL database that exists but was never migrated."""
    name = f"renchi_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(ADMIN_URL).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield request.getfixturevalue("empty_postgres_url")


def invoke_with_database(
    tmp_path: Path, database_url: str, *args: str, input: str | None = None
) -> Result:
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": database_url,
        "RENCHI_VAR_DIR": str(tmp_path / "var"),
        "RENCHI_LOG_LEVEL": "WARNING",
        "RENCHI_DATABASE_TIMEOUT_SECONDS": "2",
    }
    return CliRunner().invoke(main, list(args), env=env, input=input)


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


def test_database_missing_names_it(tmp_path: Path) -> None:
    url = make_url(ADMIN_URL).set(
        database=f"renchi_missing_{uuid.uuid4().hex[:12]}", password="hunter2-secret"
    )

    result = invoke_with_database(
        tmp_path, url.render_as_string(hide_password=False), "calls", "list"
    )

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f'database "{url.database}" does not exist' in result.stderr
    assert "Check RENCHI_DATABASE_URL" in result.stderr
    assert "hunter2-secret" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["calls", "list"],
        ["calls", "show", "00000000-0000-0000-0000-000000000000"],
        ["tasks", "list"],
        ["admin", "create-team", "--name", "Acme"],
        ["spool", "replay"],
    ],
)
def test_command_without_schema(
    tmp_path: Path, unmigrated_url: str, command: list[str]
) -> None:
    result = invoke_with_database(tmp_path, unmigrated_url, *command)

    assert result.exit_code == 1
    assert result.stderr == SCHEMA_MISSING
    assert result.stdout == ""


def test_command_with_schema_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"

    async def migrate_to_0002() -> None:
        database = create_database(Settings(), url=url)
        try:
            await upgrade(database, "0002")
        finally:
            await database.dispose()

    asyncio.run(migrate_to_0002())

    result = invoke_with_database(
        tmp_path,
        url,
        "admin",
        "create-user",
        "--email",
        "ana@example.com",
        input="a long enough passphrase\n",
    )

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: The database schema is behind (revision 0002, this version needs "
        f"{head_revision()}); run `renchi migrate`.\n"
    )


def test_created_files_are_private(tmp_path: Path) -> None:
    os.umask(0o022)

    result = invoke_with_database(
        tmp_path, f"sqlite:///{tmp_path / 'var' / 'renchi.db'}", "migrate"
    )

    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "var" / "renchi.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


def test_slug_not_derivable_asks_for_one(run) -> None:  # type: ignore[no-untyped-def]
    result = run("admin", "create-team", "--name", "日本語クリニック")

    assert result.exit_code == 1
    assert "Cannot derive a slug" in result.stderr
    assert "--slug" in result.stderr
    assert "Invalid slug ''" not in result.stderr


def test_slug_option_accepts_non_ascii_name(run) -> None:  # type: ignore[no-untyped-def]
    team = output_json(
        run("admin", "create-team", "--name", "日本語クリニック", "--slug", "tokyo")
    )

    assert team["slug"] == "tokyo"
    assert team["name"] == "日本語クリニック"


@pytest.mark.parametrize(
    "command",
    [
        ["admin", "create-team", "--name", "Acme", "--slug", "X" * 10_000],
        [
            "admin",
            "add-phone-number",
            "--team",
            "t" * 10_000,
            "--number",
            "+14155550100",
            "--agent-id",
            "agent_a",
        ],
        [
            "admin",
            "add-member",
            "--team",
            "t" * 10_000,
            "--email",
            "a@example.com",
            "--role",
            "member",
        ],
        ["calls", "show", "C" * 10_000],
    ],
)
def test_long_input_shortened_in_errors(run, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = run(*command)

    assert result.exit_code in {1, 2}
    assert len(result.stderr) < 400


def test_long_number_shortened(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme")

    result = run(
        "admin",
        "add-phone-number",
        "--team",
        "acme",
        "--number",
        "+1" + "5" * 10_000,
        "--agent-id",
        "agent_a",
    )

    assert result.exit_code == 1
    assert "Invalid phone number '+1555" in result.stderr
    assert len(result.stderr) < 400


def test_long_email_shortened(run) -> None:  # type: ignore[no-untyped-def]
    run("admin", "create-team", "--name", "Acme")

    result = run(
        "admin",
        "add-member",
        "--team",
        "acme",
        "--email",
        "a" * 10_000 + "@example.com",
        "--role",
        "member",
    )

    assert result.exit_code == 1
    assert "not found" in result.stderr
    assert len(result.stderr) < 400


@pytest.fixture
def app_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EventDict]]:
    """Capture what `renchi.web.app` logs, whatever logging an earlier test configured."""
    with structlog.testing.capture_logs() as entries:
        # A fresh proxy binds to the capturing configuration on first use.
        monkeypatch.setattr(
            renchi.web.app, "logger", structlog.get_logger("renchi.web.app")
        )
        yield entries


async def test_serve_starts_without_schema(
    tmp_path: Path, unmigrated_url: str, app_logs: list[EventDict]
) -> None:
    settings = make_settings(tmp_path, unmigrated_url)
    app = create_app(settings, background=False)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://internal:8000"
        ) as client,
    ):
        errors = [entry for entry in app_logs if entry["log_level"] == "error"]
        ready = await client.get("/readyz")
        webhook = await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status_params("CA-unmigrated", "completed", sequence=1, to="+14155550100"),
        )
        webhook_errors = [entry for entry in app_logs if entry["log_level"] == "error"][
            len(errors) :
        ]
        runtime = app.state.runtime
        for _ in range(6):
            await runtime.replayer.replay_once()
        pending = runtime.spool.pending()
        failed = runtime.spool.failed()

    assert [entry["event"] for entry in errors] == [
        "database schema not ready at start"
    ]
    assert errors[0]["problem"] == SCHEMA_MISSING.removeprefix("Error: ").strip()
    assert ready.json()["database"]["migrations"] == "pending"
    assert webhook.status_code == 200
    assert webhook.json() == {"status": "spooled"}
    assert webhook_errors == []
    assert len(pending) == 1
    assert failed == []


async def test_periodic_jobs_quiet_without_schema(
    tmp_path: Path, unmigrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = build_runtime(make_settings(tmp_path, unmigrated_url))
    with structlog.testing.capture_logs() as entries:
        monkeypatch.setattr(
            renchi.runtime, "logger", structlog.get_logger("renchi.runtime")
        )
        runtime.start_background(embedded_worker=False)
        try:
            for _ in range(500):
                skipped = {
                    entry["job"]
                    for entry in entries
                    if entry["event"] == "periodic job skipped: schema not migrated"
                }
                if skipped == {"route refresh", "task metrics"}:
                    break
                await asyncio.sleep(0.01)
        finally:
            await runtime.aclose()

    assert skipped == {"route refresh", "task metrics"}
    assert [entry for entry in entries if entry["log_level"] == "error"] == []
