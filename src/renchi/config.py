"""Settings of every Renchi process, read from `RENCHI_*` environment variables.

Development defaults make `renchi serve` work with nothing set: SQLite and files
under `./var`, and any missing signing secret generated once into
`./var/dev-secrets.env`. In production a missing required setting stops the start
with a message that names it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024

# Secrets a development run generates when they are missing. Credentials for
# outside services (an ElevenLabs API key, a Twilio account SID) are never
# generated, so a development run sends no traffic off the machine.
GENERATED_SECRETS = (
    "twilio_auth_token",
    "elevenlabs_webhook_secret",
    "personalization_secret",
)

REQUIRED_IN_PRODUCTION = (
    "database_url",
    "public_url",
    "twilio_auth_token",
    "elevenlabs_webhook_secret",
    "personalization_secret",
)


class ConfigError(Exception):
    """Invalid or missing configuration; the message names the variable."""


class Settings(BaseSettings):
    """Configuration of the service, the worker and the command-line tools."""

    model_config = SettingsConfigDict(env_prefix="RENCHI_", extra="ignore")

    env: Literal["development", "production"] = "production"
    var_dir: Path = Path("var")
    log_level: str = "INFO"
    log_format: Literal["json", "console"] | None = None

    database_url: str | None = None
    database_timeout_seconds: float = Field(default=3.0, gt=0)
    database_pool_size: int = Field(default=10, ge=1)

    public_url: str | None = None
    max_body_bytes: int = Field(default=1 * MIB, ge=1024)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_url: str = "https://api.twilio.com"

    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_api_url: str = "https://api.elevenlabs.io"
    elevenlabs_webhook_secret: SecretStr | None = None
    # ElevenLabs' SDKs reject a signature timestamp older than 30 minutes.
    signature_tolerance_seconds: int = Field(default=1800, ge=1)
    # A one-hour call's audio is about 80 MB once base64-encoded.
    max_audio_body_bytes: int = Field(default=256 * MIB, ge=1024)
    # Post-call bodies read at once per process; more wait, then get 503.
    max_concurrent_audio_bodies: int = Field(default=8, ge=1)
    personalization_secret: SecretStr | None = None
    register_call_timeout_seconds: float = Field(default=5.0, gt=0, le=12)

    recordings_dir: Path | None = None
    # Days a recording is kept before cleanup deletes it, unless its team sets
    # its own `recording_retention_days`.
    recording_retention_days: int = Field(default=90, ge=1, le=3650)
    spool_dir: Path | None = None
    spool_replay_interval_seconds: float = Field(default=2.0, gt=0)

    embedded_worker: bool | None = None
    worker_poll_interval_seconds: float = Field(default=1.0, gt=0)
    worker_concurrency: int = Field(default=4, ge=1)
    task_max_attempts: int = Field(default=8, ge=1)
    task_lease_seconds: float = Field(default=300.0, gt=0)
    outbound_timeout_seconds: float = Field(default=30.0, gt=0)

    session_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    session_idle_seconds: int = Field(default=24 * 3600, ge=60)
    # Never generated: without it the setup endpoint does not exist.
    setup_token: SecretStr | None = None
    debug_endpoints: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    redis_url: SecretStr | None = None
    rate_limits_enabled: bool = True
    rate_limit_key_prefix: str = "renchi"
    # Limits in the notation of the `limits` library: "10/minute;100/hour".
    rate_limit_per_address: str = "600/minute"
    rate_limit_per_user: str = "300/minute"
    rate_limit_login_per_address: str = "20/minute;200/hour"
    rate_limit_login_per_email: str = "10/minute;50/hour"

    @field_validator("public_url", "twilio_api_url", "elevenlabs_api_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return [normalize_origin(str(part)) for part in value]
        return value

    @field_validator(
        "rate_limit_per_address",
        "rate_limit_per_user",
        "rate_limit_login_per_address",
        "rate_limit_login_per_email",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(
                f"Invalid rate limit {value!r}: write it as '10/minute' or "
                "'10/minute;100/hour'."
            ) from error
        return value

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def resolved_database_url(self) -> str:
        """Return the SQLAlchemy URL with an async driver for the configured database."""
        url = self.database_url or f"sqlite:///{self.var_dir / 'renchi.db'}"
        return async_database_url(url)

    @property
    def resolved_recordings_dir(self) -> Path:
        return self.recordings_dir or self.var_dir / "recordings"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or self.var_dir / "spool"

    @property
    def runs_embedded_worker(self) -> bool:
        if self.embedded_worker is None:
            return self.is_development
        return self.embedded_worker

    @property
    def resolved_log_format(self) -> str:
        return self.log_format or ("console" if self.is_development else "json")


def normalize_origin(value: str) -> str:
    """Return `value` as an origin, `scheme://host[:port]` in lower case."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(
            f"Invalid origin {value!r}: write it as https://app.example.com, "
            "without a path."
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError(f"Invalid origin {value!r}: an origin has no path or query.")
    return f"{parts.scheme}://{parts.netloc}".lower()


def async_database_url(url: str) -> str:
    """Rewrite a plain `postgresql://` or `sqlite://` URL to use an async driver."""
    for prefix, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and apply the rules of the mode."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.is_development:
        _fill_development_secrets(settings)
    else:
        _check_production(settings)
    return settings


def _check_production(settings: Settings) -> None:
    missing = [
        "RENCHI_" + name.upper()
        for name in REQUIRED_IN_PRODUCTION
        if getattr(settings, name) is None
    ]
    if missing:
        raise ConfigError(
            f"Missing required settings for production: {', '.join(missing)}. "
            "Set them, or set RENCHI_ENV=development for a local run."
        )


def dev_secrets_path(settings: Settings) -> Path:
    return settings.var_dir / "dev-secrets.env"


def _fill_development_secrets(settings: Settings) -> None:
    """Fill missing signing secrets from `dev-secrets.env`, generating it when absent."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return
    path = dev_secrets_path(settings)
    stored = _read_env_file(path)
    changed = False
    for name in missing:
        key = "RENCHI_" + name.upper()
        if key not in stored:
            stored[key] = secrets.token_urlsafe(32)
            changed = True
        setattr(settings, name, SecretStr(stored[key]))
    if changed:
        _write_env_file(path, stored)


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, separator, value = line.partition("=")
        if separator and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# Generated by renchi for development; keep it private.\n"
    body += "".join(f"{key}={value}\n" for key, value in sorted(values.items()))
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(body)
    os.replace(temporary, path)
