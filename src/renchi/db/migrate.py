"""Apply the Alembic migrations and read the revision a database is at."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from renchi.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str | None:
    """Return the newest revision among this code's migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


@dataclass(frozen=True)
class MigrationState:
    current: str | None
    head: str | None

    @property
    def status(self) -> str:
        """Return `current`, `pending` (the database is behind) or `ahead` (newer code migrated it)."""
        if self.current == self.head:
            return "current"
        if self.current is None or self.current in known_revisions():
            return "pending"
        return "ahead"

    @property
    def usable(self) -> bool:
        return self.status != "pending"


class SchemaNotReady(Exception):
    """A database schema missing or older than this code, with a message that names the fix."""


def schema_problem(state: MigrationState) -> str | None:
    """Return a one-line description of what keeps `state` from serving this code, or None."""
    if state.current is None:
        return "The database has no Renchi schema; run `renchi migrate`."
    if not state.usable:
        return (
            f"The database schema is behind (revision {state.current}, this "
            f"version needs {state.head}); run `renchi migrate`."
        )
    return None


async def require_current_schema(database: Database) -> MigrationState:
    """Return the migration state; raise SchemaNotReady when migrations are pending."""
    state = await migration_state(database)
    problem = schema_problem(state)
    if problem is not None:
        raise SchemaNotReady(problem)
    return state


async def upgrade(database: Database, revision: str = "head") -> MigrationState:
    """Upgrade the database to `revision` and return where it ends."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(run)
    return await migration_state(database)


async def migration_state(database: Database) -> MigrationState:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        current = await connection.run_sync(read)
    return MigrationState(current=current, head=head_revision())
