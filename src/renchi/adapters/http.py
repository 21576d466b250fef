"""Helpers shared by the HTTP clients of outside services."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx


def parse_retry_after(
    response: httpx.Response, *, max_seconds: float = 3600
) -> float | None:
    """Read `Retry-After` as seconds, whether it holds a delay or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), max_seconds)


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    """Return scheme, host and effective port, so `https://h` and `https://h:443` match."""
    default_port = {"https": 443, "http": 80}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default_port
