"""The `renchi` command: the service, the worker, migrations and admin tools.

Output meant for scripts is JSON on stdout, and messages for people go to
stderr. Every failure exits non-zero: 2 for invalid usage or configuration, 1
for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TextIO, TypeVar

import click
import structlog

from renchi.config import ConfigError, Settings, dev_secrets_path, load_settings
from renchi.db.engine import Database, create_database, is_schema_error, is_unavailable
from renchi.db.migrate import SchemaNotReady, require_current_schema
from renchi.errors import RenchiError, shorten
from renchi.observability.logging import configure_logging

T = TypeVar("T")
logger = structlog.get_logger("renchi.cli")

# Files the service creates (the SQLite database, recordings, spooled webhook
# payloads, development secrets) hold call data, so only their owner may read them.
PRIVATE_UMASK = 0o077
_DRIVER_MESSAGE_LIMIT = 200


class ConfigurationProblem(click.ClickException):
    """An invalid or missing setting; exits with 2, like a usage error."""

    exit_code = 2


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as error:
        raise ConfigurationProblem(str(error)) from error
    configure_logging(level=settings.log_level, format=settings.resolved_log_format)
    return settings


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning domain and database errors into messages."""
    try:
        return asyncio.run(coroutine)
    except RenchiError as error:
        raise click.ClickException(error.message) from error
    except SchemaNotReady as error:
        raise click.ClickException(str(error)) from error
    except Exception as error:
        if is_unavailable(error):
            raise click.ClickException(
                f"The database is unavailable: {_driver_message(error)}. Check "
                "RENCHI_DATABASE_URL and that the server is running."
            ) from error
        raise


def _driver_message(error: BaseException) -> str:
    """Return the first line of the database driver's message, without credentials.

    libpq names the host, port, database and role it failed on, which is what
    tells a missing database from a server that is down.
    """
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    if not lines:
        return type(cause).__name__
    text = " ".join(lines[0].split()).rstrip(".")
    # Drivers do not quote passwords in these messages; this also covers one that does.
    text = re.sub(r"://[^\s/@]*@", "://***@", text)
    text = re.sub(r"(?i)(password\s*=\s*)\S+", r"\1***", text)
    return shorten(text, _DRIVER_MESSAGE_LIMIT)


async def _with_database(
    settings: Settings, action: Callable[[Database], Awaitable[T]]
) -> T:
    """Run `action` on a new engine; a missing table becomes SchemaNotReady."""
    database = create_database(settings)
    try:
        return await action(database)
    except Exception as error:
        if is_schema_error(error):
            # Raises SchemaNotReady unless the migrations are all applied.
            await require_current_schema(database)
        raise
    finally:
        await database.dispose()


@click.group()
def main() -> None:
    """Renchi: the backend of an AI phone-agent platform."""
    os.umask(PRIVATE_UMASK)


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port.",
)
def serve(host: str, port: int) -> None:
    """Start the HTTP service (and the worker, when RENCHI_EMBEDDED_WORKER is true)."""
    import uvicorn

    from renchi.web.app import create_app

    settings = _settings()
    if settings.is_development and dev_secrets_path(settings).exists():
        logger.info("development secrets loaded", path=str(dev_secrets_path(settings)))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


@main.command()
def migrate() -> None:
    """Apply the database migrations."""
    from renchi.db.migrate import upgrade

    settings = _settings()
    logging.getLogger("alembic").setLevel(logging.INFO)
    state = _run(_with_database(settings, upgrade))
    click.echo(f"Database is at revision {state.current}.", err=True)


@main.command()
def worker() -> None:
    """Run the background tasks until interrupted."""
    from renchi.runtime import build_runtime

    settings = _settings()

    async def run() -> None:
        runtime = build_runtime(settings)
        worker = runtime.worker()
        try:
            await worker.run()
        finally:
            await runtime.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@main.group()
def admin() -> None:
    """Provision teams, phone numbers, users and memberships."""


@admin.command("create-team")
@click.option("--name", required=True, help="Display name, such as 'Acme Dental'.")
@click.option(
    "--slug",
    default=None,
    help="URL name; defaults to the name in lower case with hyphens.",
)
def create_team(name: str, slug: str | None) -> None:
    """Create a team and print its id and slug."""
    from renchi.teams.provisioning import create_team as create

    async def action(database: Database) -> dict[str, str]:
        async with database.transaction() as session:
            team = await create(session, name=name, slug=slug)
            return {"id": str(team.id), "slug": team.slug, "name": team.name}

    _print_json(_run(_with_database(_settings(), action)))


@admin.command("add-phone-number")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
@click.option(
    "--number", required=True, help="The Twilio number in E.164, such as +14155550100."
)
@click.option(
    "--agent-id", required=True, help="The ElevenLabs agent id that answers it."
)
@click.option(
    "--mode",
    type=click.Choice(["register_call", "native"]),
    default="register_call",
    show_default=True,
    help="register_call: Renchi answers Twilio; native: the number is imported into ElevenLabs.",
)
def add_phone_number(team_slug: str, number: str, agent_id: str, mode: str) -> None:
    """Route a Twilio number to an ElevenLabs agent of a team."""
    from renchi.teams.provisioning import assign_phone_number, get_team

    async def action(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            team = await get_team(session, team_slug)
            assignment = await assign_phone_number(
                session,
                team=team,
                number=number,
                elevenlabs_agent_id=agent_id,
                mode=mode,
            )
            return {
                "number": assignment.phone_number.number,
                "team": team.slug,
                "agent_id": assignment.agent.elevenlabs_agent_id,
                "mode": assignment.phone_number.mode,
                "created": assignment.created,
                "agent_created": assignment.agent_created,
            }

    _print_json(_run(_with_database(_settings(), action)))


@admin.command("release-phone-number")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
@click.option("--number", required=True, help="The Twilio number in E.164.")
def release_phone_number(team_slug: str, number: str) -> None:
    """Stop routing a number to the team, so another team can add it."""
    from renchi.teams.provisioning import get_team
    from renchi.teams.provisioning import release_phone_number as release

    async def action(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            team = await get_team(session, team_slug)
            released = await release(session, team=team, number=number)
            return {"number": released.number, "team": team.slug, "released": True}

    _print_json(_run(_with_database(_settings(), action)))


@admin.command("show-team")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
def show_team(team_slug: str) -> None:
    """Print a team, its settings and its phone numbers as JSON."""
    from renchi.teams.documents import team_document
    from renchi.teams.provisioning import get_team

    settings = _settings()

    async def action(database: Database) -> dict[str, Any]:
        async with database.sessions() as session:
            team = await get_team(session, team_slug)
            return await team_document(
                session,
                team,
                default_retention_days=settings.recording_retention_days,
            )

    _print_json(_run(_with_database(settings, action)))


@admin.command("set-setting")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
@click.argument("name")
@click.argument("value")
def set_setting(team_slug: str, name: str, value: str) -> None:
    """Set one team setting and print all of the team's settings as JSON.

    VALUE is plain text for timezone, fallback_number and calendar_id, and
    JSON for the others (30, true, '["ana@example.com"]'). `null` unsets a
    setting: no fallback number, owners and admins as summary recipients, or
    RENCHI_RECORDING_RETENTION_DAYS as the retention.
    """
    from renchi.teams.provisioning import get_team
    from renchi.teams.settings import parse_setting_text, update_settings

    settings = _settings()

    async def action(database: Database) -> dict[str, Any]:
        changes = {name: parse_setting_text(name, value)}
        async with database.transaction() as session:
            team = await get_team(session, team_slug)
            updated = await update_settings(
                session,
                team,
                changes,
                None,
                default_retention_days=settings.recording_retention_days,
            )
            return updated.document()

    _print_json(_run(_with_database(settings, action)))


@admin.command("setting-changes")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def setting_changes(team_slug: str, limit: int) -> None:
    """Print the team's recorded setting changes as JSON, newest first."""
    from renchi.teams.provisioning import get_team
    from renchi.teams.settings import list_setting_changes

    async def action(database: Database) -> list[dict[str, Any]]:
        async with database.sessions() as session:
            team = await get_team(session, team_slug)
            return await list_setting_changes(session, team.id, limit=limit)

    _print_json(_run(_with_database(_settings(), action)))


def _password_from_input() -> str:
    """Read a password: hidden and confirmed on a terminal, else the first line of stdin."""
    stdin: TextIO = sys.stdin
    if stdin.isatty():
        password: str = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
        return password
    line: str = stdin.readline()
    return line.rstrip("\r\n")


@admin.command("create-user")
@click.option("--email", required=True, help="Email address the user signs in with.")
@click.option(
    "--password",
    default=None,
    help="The password; without it, read from standard input (prompted on a "
    "terminal). Prefer standard input: arguments show up in process lists.",
)
@click.option("--super-admin", is_flag=True, help="Let the user act on every team.")
def create_user(email: str, password: str | None, super_admin: bool) -> None:
    """Create a user and print its id and email."""
    from renchi.accounts.users import create_user as create

    secret = password if password is not None else _password_from_input()

    async def action(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            user = await create(
                session, email=email, password=secret, super_admin=super_admin
            )
            return {
                "id": str(user.id),
                "email": user.email,
                "super_admin": user.super_admin,
            }

    _print_json(_run(_with_database(_settings(), action)))


@admin.command("add-member")
@click.option("--team", "team_slug", required=True, help="Slug of the team.")
@click.option("--email", required=True, help="Email of an existing user.")
@click.option(
    "--role",
    type=click.Choice(["member", "admin", "owner"]),
    required=True,
    help="member reads calls; admin also manages integrations; owner also the team.",
)
def add_member(team_slug: str, email: str, role: str) -> None:
    """Give a user a role on a team, or change the role they have."""
    from renchi.accounts.roles import add_member as add
    from renchi.accounts.users import get_user_by_email
    from renchi.errors import NotFound
    from renchi.teams.provisioning import get_team

    async def action(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            team = await get_team(session, team_slug)
            user = await get_user_by_email(session, email)
            if user is None:
                raise NotFound(
                    f"User {shorten(email)!r} not found; create it with "
                    "`renchi admin create-user` first."
                )
            membership, created = await add(session, team=team, user=user, role=role)
            return {
                "team": team.slug,
                "email": user.email,
                "role": membership.role,
                "created": created,
            }

    _print_json(_run(_with_database(_settings(), action)))


@main.group()
def calls() -> None:
    """Read call records."""


@calls.command("list")
@click.option("--team", "team_slug", default=None, help="Only this team's calls.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def list_calls(team_slug: str | None, limit: int) -> None:
    """Print the newest calls as JSON."""
    from renchi.calls.documents import list_call_summaries
    from renchi.teams.provisioning import get_team

    async def action(database: Database) -> list[dict[str, Any]]:
        async with database.sessions() as session:
            team_id = (await get_team(session, team_slug)).id if team_slug else None
            return await list_call_summaries(session, team_id=team_id, limit=limit)

    _print_json(_run(_with_database(_settings(), action)))


@calls.command("show")
@click.argument("call_id")
def show_call(call_id: str) -> None:
    """Print everything known about one call as JSON."""
    from renchi.calls.documents import call_document

    try:
        parsed = uuid.UUID(call_id)
    except ValueError as error:
        raise click.BadParameter(
            f"{shorten(call_id)!r} is not a call id (a UUID)."
        ) from error

    async def action(database: Database) -> dict[str, Any] | None:
        async with database.sessions() as session:
            return await call_document(session, parsed)

    document = _run(_with_database(_settings(), action))
    if document is None:
        raise click.ClickException(f"Call {call_id} not found.")
    _print_json(document)


@main.group()
def tasks() -> None:
    """Inspect and retry background tasks."""


@tasks.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "running", "succeeded", "dead"]),
    default=None,
)
@click.option(
    "--kind", default=None, help="Only tasks of this kind, such as fetch_recording."
)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
def list_tasks(state: str | None, kind: str | None, limit: int) -> None:
    """Print tasks as JSON, newest first."""
    from renchi.tasks import queue

    async def action(database: Database) -> list[dict[str, Any]]:
        found = await queue.list_tasks(database, state=state, kind=kind, limit=limit)
        return [queue.describe(task) for task in found]

    _print_json(_run(_with_database(_settings(), action)))


@tasks.command("retry")
@click.argument("task_id", type=int)
def retry_task(task_id: int) -> None:
    """Run a dead task again from its first attempt."""
    from renchi.tasks import queue

    async def action(database: Database) -> dict[str, Any]:
        try:
            return queue.describe(await queue.retry(database, task_id))
        except (queue.TaskNotFound, queue.TaskStateError) as error:
            raise click.ClickException(str(error)) from error

    _print_json(_run(_with_database(_settings(), action)))


@main.group()
def spool() -> None:
    """Inspect and replay the local spool of webhook events."""


@spool.command("status")
def spool_status() -> None:
    """Print how many events wait in the spool and how many were set aside."""
    from renchi.webhooks.spool import Spool

    settings = _settings()
    local = Spool(settings.resolved_spool_dir)
    _print_json(
        {
            "directory": str(local.directory),
            "pending": len(local.pending()),
            "failed": [path.name for path in local.failed()],
        }
    )


@spool.command("replay")
@click.option(
    "--include-failed",
    is_flag=True,
    help="Move the events set aside in failed/ back first, with fresh attempts.",
)
def spool_replay(include_failed: bool) -> None:
    """Replay the spool into the database now and print the counts."""
    from renchi.runtime import build_runtime

    settings = _settings()

    async def run() -> dict[str, int]:
        runtime = build_runtime(settings)
        try:
            # A replay into missing tables would count against each event.
            await require_current_schema(runtime.database)
            if include_failed:
                runtime.spool.requeue_failed()
            result = await runtime.replayer.replay_once()
        finally:
            await runtime.aclose()
        return vars(result)

    _print_json(_run(run()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
