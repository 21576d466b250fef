"""The async engine, sessions, and the test for "the database is unavailable".

PostgreSQL runs through psycopg 3; SQLite, the embedded development default,
through aiosqlite with every transaction started as `BEGIN IMMEDIATE`, so two
writers queue on SQLite's lock instead of failing on a lock upgrade.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from renchi.config import Settings, async_database_url


class Database:
    """One engine and its session factory, shared by a process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Open a session in a transaction, committed on success and rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(settings: Settings, *, url: str | None = None) -> Database:
    """Create the engine for `url`, or for the configured database."""
    resolved = async_database_url(url) if url else settings.resolved_database_url
    parsed = make_url(resolved)
    timeout = settings.database_timeout_seconds
    options: dict[str, Any] = {}

    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": timeout}
    else:
        # No overflow: connections past the pool size would be closed on return,
        # and reconnecting under load costs more than waiting for a pooled one.
        options["pool_size"] = settings.database_pool_size
        options["max_overflow"] = 0
        options["pool_timeout"] = timeout
        options["pool_recycle"] = 1800
        # psycopg takes whole seconds and treats 0 as "wait forever".
        options["connect_args"] = {"connect_timeout": max(1, round(timeout))}

    # Error messages and logs never show bound values: they carry phone
    # numbers, transcripts and summaries.
    engine = create_async_engine(resolved, hide_parameters=True, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return Database(engine)


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_unavailable(error: BaseException) -> bool:
    """Tell whether `error` means the database cannot be reached right now.

    Connection failures, dropped connections, pool and statement time-outs
    count; constraint violations and programming errors do not.
    """
    if isinstance(error, asyncio.TimeoutError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, exc.TimeoutError | exc.InterfaceError):
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error, exc.OperationalError) and not _is_sqlite_schema_error(
            error
        )
    return isinstance(error, OSError)


# PostgreSQL SQLSTATE codes undefined_table and undefined_column.
_UNDEFINED_OBJECT_STATES = frozenset({"42P01", "42703"})


def is_schema_error(error: BaseException) -> bool:
    """Tell whether `error` is a table or column missing from the database.

    A database without migrations, or with migrations pending, raises it.
    `renchi.db.migrate.require_current_schema` finds out which of the two.
    """
    if isinstance(error, exc.OperationalError):
        return _is_sqlite_schema_error(error)
    if isinstance(error, exc.ProgrammingError):
        return getattr(error.orig, "sqlstate", None) in _UNDEFINED_OBJECT_STATES
    return False


def _is_sqlite_schema_error(error: exc.OperationalError) -> bool:
    # SQLite reports a missing table or column as an OperationalError.
    message = str(error.orig).lower()
    return "no such table" in message or "no such column" in message
