"""Settings: validation, normalization, and how `renchi` reports a bad value."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr, ValidationError

from renchi.cli import main
from renchi.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def restore_umask() -> Iterator[None]:
    """`renchi` sets a private umask for the whole process; put the suite's back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def run_with(tmp_path: Path, **env: str) -> Result:
    """Run `renchi spool status`, which needs settings but no database."""
    base = {"RENCHI_ENV": "development", "RENCHI_VAR_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, ["spool", "status"], env={**base, **env})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RENCHI_DATABASE_URL", "mysql://x/y"),
        ("RENCHI_DATABASE_URL", "garbage"),
        ("RENCHI_DATABASE_URL", "postgresql://db:port/renchi"),
        ("RENCHI_LOG_LEVEL", "LOUD"),
        ("RENCHI_PUBLIC_URL", "not a url"),
        ("RENCHI_PUBLIC_URL", "calls.example.com"),
        ("RENCHI_PUBLIC_URL", "ftp://calls.example.com"),
        ("RENCHI_PUBLIC_URL", "https://calls.example.com/?tenant=1"),
        ("RENCHI_PUBLIC_URL", "https://calls.example.com/#top"),
        ("RENCHI_PUBLIC_URL", "https://"),
        ("RENCHI_TWILIO_API_URL", "api.twilio.com"),
        ("RENCHI_ELEVENLABS_API_URL", "http://"),
        ("RENCHI_CORS_ORIGINS", "https://app.example.com,foo"),
        ("RENCHI_DATABASE_POOL_SIZE", "0"),
        ("RENCHI_RATE_LIMIT_PER_USER", "lots"),
        ("RENCHI_ENV", "staging"),
    ],
)
def test_invalid_setting_is_one_line(tmp_path: Path, variable: str, value: str) -> None:
    result = run_with(tmp_path, **{variable: value})

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: Invalid {variable} ")
    assert repr(value) in result.stderr
    assert "Traceback" not in result.stderr


def test_field_names_not_shown(tmp_path: Path) -> None:
    result = run_with(tmp_path, RENCHI_CORS_ORIGINS="foo")

    assert "RENCHI_CORS_ORIGINS" in result.stderr
    assert "cors_origins" not in result.stderr


@pytest.mark.parametrize(
    "value", ["notaurl", "http://cache:6379", "redis://:hunter2@cache:port/0"]
)
def test_invalid_secret_shows_only_name(tmp_path: Path, value: str) -> None:
    result = run_with(tmp_path, RENCHI_REDIS_URL=value)

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Invalid RENCHI_REDIS_URL: ")
    assert value not in result.stderr
    assert "hunter2" not in result.stderr


def test_database_password_not_shown(tmp_path: Path) -> None:
    result = run_with(tmp_path, RENCHI_DATABASE_URL="mysql://renchi:hunter2@db/renchi")

    assert result.exit_code == 2
    assert "RENCHI_DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr
    assert "'mysql://***@db/renchi'" in result.stderr


def test_long_value_shortened(tmp_path: Path) -> None:
    result = run_with(tmp_path, RENCHI_LOG_LEVEL="LOUD" * 5000)

    assert result.exit_code == 2
    assert "RENCHI_LOG_LEVEL" in result.stderr
    assert len(result.stderr) < 300


def test_several_problems_on_one_line(tmp_path: Path) -> None:
    result = run_with(tmp_path, RENCHI_LOG_LEVEL="LOUD", RENCHI_PUBLIC_URL="nowhere")

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "RENCHI_LOG_LEVEL" in result.stderr
    assert "RENCHI_PUBLIC_URL" in result.stderr


def test_var_dir_not_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = run_with(tmp_path, RENCHI_VAR_DIR=str(blocker / "var"))

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "RENCHI_VAR_DIR" in result.stderr
    assert str(blocker / "var") in result.stderr
    assert "Traceback" not in result.stderr


def test_sqlite_folder_not_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = run_with(tmp_path, RENCHI_DATABASE_URL=f"sqlite:///{blocker}/db/x.db")

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "RENCHI_DATABASE_URL" in result.stderr
    assert str(blocker / "db") in result.stderr


def test_production_requires_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["calls", "list"], env={"RENCHI_ENV": "production"}
    )

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    for name in [
        "RENCHI_DATABASE_URL",
        "RENCHI_PUBLIC_URL",
        "RENCHI_TWILIO_AUTH_TOKEN",
    ]:
        assert name in result.stderr


def test_empty_url_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="RENCHI_DATABASE_URL, RENCHI_PUBLIC_URL"):
        load_settings(
            env="production",
            database_url="",
            public_url="",
            twilio_auth_token=SecretStr("t"),
            elevenlabs_webhook_secret=SecretStr("e"),
            personalization_secret=SecretStr("p"),
        )


@pytest.mark.parametrize(
    ("given", "expected"),
    [("debug", "DEBUG"), (" Warning ", "WARNING"), ("CRITICAL", "CRITICAL")],
)
def test_log_level_case_insensitive(given: str, expected: str) -> None:
    assert Settings(log_level=given).log_level == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://calls.example.com/", "https://calls.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://example.com/renchi/", "https://example.com/renchi"),
    ],
)
def test_public_url_normalized(given: str, expected: str) -> None:
    assert Settings(public_url=given).public_url == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@db/renchi", "postgresql+psycopg://u@db/renchi"),
        ("postgresql://u@db/renchi", "postgresql+psycopg://u@db/renchi"),
        ("postgresql+psycopg://u@db/renchi", "postgresql+psycopg://u@db/renchi"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
    ],
)
def test_database_url_schemes(given: str, expected: str) -> None:
    assert Settings(database_url=given).resolved_database_url == expected


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache:6380", "unix:///run/r.sock"]
)
def test_redis_url_schemes(url: str) -> None:
    settings = Settings(redis_url=SecretStr(url))

    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == url


def test_api_urls_lose_trailing_slash() -> None:
    settings = Settings(
        twilio_api_url="http://127.0.0.1:9000/",
        elevenlabs_api_url="https://api.elevenlabs.io/",
    )

    assert settings.twilio_api_url == "http://127.0.0.1:9000"
    assert settings.elevenlabs_api_url == "https://api.elevenlabs.io"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RENCHI_DATABASE_TIMEOUT_SECONDS", "1e999"),
        ("RENCHI_DATABASE_TIMEOUT_SECONDS", "inf"),
        ("RENCHI_WORKER_POLL_INTERVAL_SECONDS", "nan"),
        ("RENCHI_TASK_LEASE_SECONDS", "1e300"),
    ],
)
def test_unbounded_durations_are_rejected(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name.removeprefix("RENCHI_").lower(): value})


def test_empty_secrets_count_as_missing() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(
            env="production",
            database_url="postgresql://db/renchi",
            public_url="https://calls.example",
            twilio_auth_token="",
            elevenlabs_webhook_secret="",
            personalization_secret="",
        )

    message = str(raised.value)
    assert "RENCHI_TWILIO_AUTH_TOKEN" in message
    assert "RENCHI_ELEVENLABS_WEBHOOK_SECRET" in message
    assert "RENCHI_PERSONALIZATION_SECRET" in message
