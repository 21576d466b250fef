"""Settings of every Renchi process, read from `RENCHI_*` environment variables.

Development defaults make `renchi serve` work with nothing set: SQLite and files
under `./var`, and any missing signing secret generated once into
`./var/dev-secrets.env`. In production a missing required setting stops the start
with a message that names it. `load_settings` turns every invalid value into a
`ConfigError` whose one-line message names the environment variable and shows
the value, except for secrets, which it names only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from renchi.errors import shorten

MIB = 1024 * 1024

# Secrets a development run generates when they are missing. Credentials for
# outside services (an ElevenLabs API key, a Twilio account SID) are never
# generated, so a development run sends no traffic off the machine.
GENERATED_SECRETS = (
    "twilio_auth_token",
    "elevenlabs_webhook_secret",
    "personalization_secret",
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Plain schemes get an async driver from `async_database_url`; the two with a
# driver name are the async drivers Renchi installs.
DATABASE_SCHEMES = (
    "postgresql",
    "postgres",
    "postgresql+psycopg",
    "sqlite",
    "sqlite+aiosqlite",
)
REDIS_SCHEMES = ("redis", "rediss", "unix")

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
    database_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, allow_inf_nan=False
    )
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
    register_call_timeout_seconds: float = Field(
        default=5.0, gt=0, le=12, allow_inf_nan=False
    )

    recordings_dir: Path | None = None
    # Days a recording is kept before cleanup deletes it, unless its team sets
    # its own `recording_retention_days`.
    recording_retention_days: int = Field(default=90, ge=1, le=3650)
    spool_dir: Path | None = None
    spool_replay_interval_seconds: float = Field(
        default=2.0, gt=0, le=3600, allow_inf_nan=False
    )

    embedded_worker: bool | None = None
    worker_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=3600, allow_inf_nan=False
    )
    worker_concurrency: int = Field(default=4, ge=1)
    task_max_attempts: int = Field(default=8, ge=1)
    task_lease_seconds: float = Field(
        default=300.0, gt=0, le=86400, allow_inf_nan=False
    )
    outbound_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, allow_inf_nan=False
    )

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

    @field_validator(
        "database_url",
        "public_url",
        "redis_url",
        "twilio_account_sid",
        "twilio_auth_token",
        "elevenlabs_api_key",
        "elevenlabs_webhook_secret",
        "personalization_secret",
        "setup_token",
        mode="before",
    )
    @classmethod
    def _empty_as_unset(cls, value: object) -> object:
        # An empty variable, common in deployment manifests, means "not set";
        # production then reports the setting as missing.
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Twilio signs the full URL it calls, so RENCHI_PUBLIC_URL + path must
        # rebuild it exactly; a query or fragment here would end up mid-URL.
        return check_http_url(value, example="https://calls.example.com", base_url=True)

    @field_validator("twilio_api_url")
    @classmethod
    def _check_twilio_api_url(cls, value: str) -> str:
        return check_http_url(value, example="https://api.twilio.com")

    @field_validator("elevenlabs_api_url")
    @classmethod
    def _check_elevenlabs_api_url(cls, value: str) -> str:
        return check_http_url(value, example="https://api.elevenlabs.io")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_redis_url(value.get_secret_value())
        return value

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
                "write it as '10/minute' or '10/minute;100/hour'"
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
            f"{shorten(value)!r} is not an origin; write it as "
            "'https://app.example.com', without a path"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError(
            f"{shorten(value)!r} is not an origin because an origin has no path "
            "or query"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_http_url(value: str, *, example: str, base_url: bool = False) -> str:
    """Check that `value` is an http(s) URL with a host; return it without a trailing slash.

    With `base_url`, a query or fragment is invalid too. Raise ValueError with
    the fix, in the form pydantic validators expect.
    """
    if any(character.isspace() for character in value):
        raise ValueError(f"a URL has no spaces; write it as {example!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        raise ValueError(
            f"the URL cannot be parsed; check the host and port, such as {example!r}"
        ) from error
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"use an http:// or https:// URL with a host, such as {example!r}"
        )
    if base_url and (parts.query or parts.fragment or "?" in value or "#" in value):
        raise ValueError(f"remove the query and fragment; write it as {example!r}")
    return value.rstrip("/")


def check_database_url(value: str) -> None:
    """Check that `value` is a PostgreSQL or SQLite URL that SQLAlchemy can parse."""
    scheme, separator, _ = value.partition("://")
    if not separator or scheme not in DATABASE_SCHEMES:
        raise ValueError(
            "use a postgresql:// or sqlite:/// URL, such as "
            "'postgresql://renchi:PASSWORD@db.example.com/renchi' or "
            "'sqlite:///var/renchi.db'"
        )
    try:
        make_url(async_database_url(value))
    except (ArgumentError, ValueError) as error:
        # The parser's own message may quote the password, so it is left out.
        raise ValueError(
            "the URL cannot be parsed; check the port and percent-encode special "
            "characters in the user name and password"
        ) from error


def check_redis_url(value: str) -> None:
    """Check that `value` is a redis://, rediss:// or unix:// URL."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        # The parser's own message may quote the password, so it is left out.
        raise ValueError(
            "the URL cannot be parsed; check the host and port, such as "
            "'redis://127.0.0.1:6379/0'"
        ) from error
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(
            "use a redis://, rediss:// or unix:// URL, such as "
            "'redis://127.0.0.1:6379/0'"
        )


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
    """Read the settings from the environment and apply the rules of the mode.

    Raise ConfigError with a one-line message for an invalid value, a missing
    production setting, a SQLite file whose folder cannot be created, or, in
    development, a RENCHI_VAR_DIR that cannot be created or written.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from error
    except SettingsError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"Invalid configuration: {shorten(first_line)}.") from error
    if settings.is_development:
        _prepare_development(settings)
    else:
        _check_production(settings)
    _prepare_sqlite_folder(settings)
    return settings


def describe_validation_error(error: ValidationError) -> str:
    """Return one line naming each invalid variable, its value (never a secret's) and the fix."""
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        variable = "RENCHI_" + name.upper() if name else "RENCHI_* settings"
        detail = _sentence_tail(item["msg"].removeprefix("Value error, "))
        if _is_secret(name) or "input" not in item:
            problems.append(f"Invalid {variable}: {detail}")
        else:
            value_text = shorten(_without_credentials(str(item["input"])))
            problems.append(f"Invalid {variable} {value_text!r}: {detail}")
    return " ".join(problems)


def _sentence_tail(text: str) -> str:
    """Lower-case the first word of `text` unless it is an acronym, and end it with a period."""
    text = text.strip()
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text if text.endswith(".") else text + "."


def _is_secret(name: str) -> bool:
    field = Settings.model_fields.get(name)
    if field is None:
        return True
    annotation: Any = field.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _without_credentials(text: str) -> str:
    """Replace the user name and password of a URL in `text` with `***`."""
    scheme, separator, rest = text.partition("://")
    if not separator or "@" not in rest:
        return text
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def _prepare_sqlite_folder(settings: Settings) -> None:
    url = make_url(settings.resolved_database_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"Cannot create the folder {shorten(folder)!r} of the SQLite database in "
            f"RENCHI_DATABASE_URL ({reason}); point it at a folder this user can write."
        ) from error


def _prepare_development(settings: Settings) -> None:
    try:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        _fill_development_secrets(settings)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"Cannot create or write RENCHI_VAR_DIR {shorten(settings.var_dir)!r} "
            f"({reason}); set it to a folder this user can write."
        ) from error


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
