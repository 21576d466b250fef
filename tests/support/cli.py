"""Running the `renchi` command line against the test database."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from renchi.cli import main


def _invoke(arguments: list[str], env: dict[str, str]) -> Any:
    # The command configures logging for itself; the suite's handlers come back after.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(main, arguments, env=env, catch_exceptions=False)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def show_call(
    call_id: uuid.UUID, *, database_url: str, var_dir: Path
) -> dict[str, Any]:
    """Return the JSON that `renchi calls show CALL_ID` prints."""
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": database_url,
        "RENCHI_VAR_DIR": str(var_dir),
        "RENCHI_LOG_LEVEL": "WARNING",
    }
    # The command runs its own event loop, so it cannot run on the test's.
    result = await asyncio.to_thread(_invoke, ["calls", "show", str(call_id)], env)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def run_command(
    arguments: list[str], *, database_url: str, var_dir: Path, **extra_env: str
) -> Any:
    """Run `renchi ARGUMENTS` in a thread, so an async test can call it; return the result."""
    env = {
        "RENCHI_ENV": "development",
        "RENCHI_DATABASE_URL": database_url,
        "RENCHI_VAR_DIR": str(var_dir),
        "RENCHI_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    return await asyncio.to_thread(_invoke, arguments, env)
