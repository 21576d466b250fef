"""The migrations create exactly the tables, columns and indexes the models declare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from renchi.config import Settings
from renchi.db.engine import Database, create_database
from renchi.db.migrate import upgrade
from renchi.db.models import Base


async def differences(database: Database) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        return await connection.run_sync(compare)


async def test_postgresql_matches_models(database: Database) -> None:
    assert await differences(database) == []


async def test_sqlite_matches_models(tmp_path: Path) -> None:
    sqlite = create_database(
        Settings(var_dir=tmp_path), url=f"sqlite:///{tmp_path / 'renchi.db'}"
    )
    try:
        await upgrade(sqlite)
        assert await differences(sqlite) == []
    finally:
        await sqlite.dispose()
