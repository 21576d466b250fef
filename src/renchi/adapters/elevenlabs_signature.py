"""Verifying the `ElevenLabs-Signature` header of post-call webhooks.

ElevenLabs signs each webhook as `ElevenLabs-Signature: t=<unix seconds>,v0=<hex>`,
where the hex digest is HMAC-SHA256 with the webhook secret over `"{t}.{raw body}"`.
The header is parsed strictly: exactly one `t` of digits and one `v0` of 64 hex
digits, `name=value` parts separated by single commas, and no whitespace.
Other well-formed parts are ignored, so a signature version added beside `v0`
does not break verification. A `t` older than the tolerance is rejected and a
`t` in the future is accepted, as ElevenLabs' official SDKs do.

The digest is computed incrementally, so a streamed body is never held whole,
and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

SIGNATURE_HEADER = "elevenlabs-signature"
MAX_HEADER_LENGTH = 512

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_PART_NAME = re.compile(r"[A-Za-z0-9_]{1,16}")
_WHITESPACE = re.compile(r"\s")


class InvalidSignature(Exception):
    """The signature header is missing, malformed or stale, or the digest does not match."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    digest: bytes


def parse_signature_header(value: str | None) -> SignatureHeader:
    """Parse `t=<unix seconds>,v0=<hex>`; raise InvalidSignature on any deviation."""
    if not value:
        raise InvalidSignature("missing ElevenLabs-Signature header")
    if len(value) > MAX_HEADER_LENGTH:
        raise InvalidSignature("ElevenLabs-Signature header is too long")
    if _WHITESPACE.search(value):
        raise InvalidSignature("ElevenLabs-Signature header contains whitespace")

    parts: dict[str, str] = {}
    for part in value.split(","):
        name, separator, part_value = part.partition("=")
        if not separator or not _PART_NAME.fullmatch(name) or not part_value:
            raise InvalidSignature("ElevenLabs-Signature header is malformed")
        if name in parts:
            raise InvalidSignature(f"ElevenLabs-Signature header repeats {name!r}")
        parts[name] = part_value

    timestamp = parts.get("t")
    digest = parts.get("v0")
    if timestamp is None or digest is None:
        raise InvalidSignature("ElevenLabs-Signature header lacks 't' or 'v0'")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise InvalidSignature("ElevenLabs-Signature timestamp is not a number")
    if not _DIGEST.fullmatch(digest):
        raise InvalidSignature("ElevenLabs-Signature digest is not 64 hex digits")
    return SignatureHeader(timestamp=int(timestamp), digest=bytes.fromhex(digest))


class SignatureCheck:
    """The HMAC of one request, fed with the body as it arrives."""

    def __init__(self, secret: bytes, header: SignatureHeader) -> None:
        self._expected = header.digest
        self._mac = hmac.new(secret, f"{header.timestamp}.".encode(), hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verify(self) -> None:
        """Raise InvalidSignature unless the body fed so far matches the header's digest."""
        if not hmac.compare_digest(self._mac.digest(), self._expected):
            raise InvalidSignature("signature does not match")


class WebhookSignatureVerifier:
    """Starts a `SignatureCheck` for each request signed with the webhook secret."""

    def __init__(
        self,
        secret: str | None,
        *,
        tolerance_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret.encode() if secret else None
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock

    def begin(self, header_value: str | None) -> SignatureCheck:
        """Check the header and its age; raise InvalidSignature before any body is read."""
        if self._secret is None:
            raise InvalidSignature(
                "no webhook secret configured; set RENCHI_ELEVENLABS_WEBHOOK_SECRET"
            )
        header = parse_signature_header(header_value)
        age = self._clock() - header.timestamp
        if age > self._tolerance_seconds:
            raise InvalidSignature(
                f"signature timestamp is {int(age)} s old, more than the "
                f"{int(self._tolerance_seconds)} s allowed"
            )
        return SignatureCheck(self._secret, header)


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """Return the `ElevenLabs-Signature` value ElevenLabs would send; for tests and benchmarks."""
    digest = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v0={digest}"
