"""INSERT ... ON CONFLICT for the dialect a session is bound to."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(dialect: str, table: Any) -> Any:
    """Return an INSERT for `table` that supports `on_conflict_do_nothing`."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_for(session: AsyncSession, table: Any) -> Any:
    """Return the `dialect_insert` for the database `session` is bound to."""
    return dialect_insert(session.get_bind().dialect.name, table)
