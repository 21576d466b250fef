from __future__ import annotations

import hashlib
import hmac

import pytest

from renchi.adapters.elevenlabs_signature import (
    InvalidSignature,
    WebhookSignatureVerifier,
    parse_signature_header,
    sign,
)
from tests.support.elevenlabs import signature

SECRET = "wsec_test"
NOW = 1_796_400_000
BODY = b'{"type":"post_call_transcription","data":{"conversation_id":"conv_1"}}'
DIGEST = hmac.new(
    SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256
).hexdigest()


def verifier(tolerance: float = 1800) -> WebhookSignatureVerifier:
    return WebhookSignatureVerifier(
        SECRET, tolerance_seconds=tolerance, clock=lambda: float(NOW)
    )


def verify(header: str | None, body: bytes = BODY, *, chunk: int = 7) -> None:
    check = verifier().begin(header)
    for start in range(0, len(body), chunk):
        check.update(body[start : start + chunk])
    check.verify()


def test_valid_signature_verifies() -> None:
    verify(f"t={NOW},v0={DIGEST}")


def test_upper_case_digest_verifies() -> None:
    verify(f"t={NOW},v0={DIGEST.upper()}")


def test_parts_in_either_order_verify() -> None:
    verify(f"v0={DIGEST},t={NOW}")


def test_unknown_signature_version_is_ignored() -> None:
    verify(f"t={NOW},v0={DIGEST},v1=abcdef")


def test_chunking_does_not_change_digest() -> None:
    for size in (1, 3, 64, len(BODY)):
        verify(f"t={NOW},v0={DIGEST}", chunk=size)


def test_sign_matches_independent_hmac() -> None:
    assert sign(SECRET, BODY, timestamp=NOW) == f"t={NOW},v0={DIGEST}"
    assert signature(BODY, secret=SECRET, timestamp=NOW) == f"t={NOW},v0={DIGEST}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"t={NOW}",
        f"v0={DIGEST}",
        f"t=,v0={DIGEST}",
        f"t={NOW},v0=",
        f"t=abc,v0={DIGEST}",
        f"t=-{NOW},v0={DIGEST}",
        f"t=+{NOW},v0={DIGEST}",
        f"t={NOW}.5,v0={DIGEST}",
        f"t=١٢٣,v0={DIGEST}",
        f"t={NOW}, v0={DIGEST}",
        f" t={NOW},v0={DIGEST}",
        f"t={NOW},v0={DIGEST} ",
        f"t = {NOW},v0={DIGEST}",
        f"t={NOW};v0={DIGEST}",
        f"t={NOW},,v0={DIGEST}",
        f"t={NOW},v0={DIGEST},",
        f"t={NOW},t={NOW},v0={DIGEST}",
        f"t={NOW},v0={DIGEST},v0={DIGEST}",
        f"t={NOW},v0={DIGEST[:-1]}g",
        f"t={NOW},v0={DIGEST[:-2]}",
        f"t={NOW},v0={DIGEST}00",
        f"t={NOW},v0=sha256={DIGEST}",
        f"t={NOW},v0={DIGEST}=",
        f"t={NOW},v0",
        f"t={NOW},v0={DIGEST},x",
        "t=" + "1" * 600 + f",v0={DIGEST}",
        "garbage",
    ],
)
def test_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify(header)


def test_tampered_body_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(f"t={NOW},v0={DIGEST}", BODY.replace(b"conv_1", b"conv_2"))


def test_other_timestamp_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(f"t={NOW - 1},v0={DIGEST}")


def test_wrong_secret_is_rejected() -> None:
    header = signature(BODY, secret="another", timestamp=NOW)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(header)


def test_old_timestamp_is_rejected() -> None:
    old = NOW - 1801
    header = signature(BODY, secret=SECRET, timestamp=old)

    with pytest.raises(InvalidSignature, match="old"):
        verifier().begin(header)


def test_timestamp_at_tolerance_is_accepted() -> None:
    edge = NOW - 1800
    header = signature(BODY, secret=SECRET, timestamp=edge)

    check = verifier().begin(header)
    check.update(BODY)
    check.verify()


def test_future_timestamp_is_accepted() -> None:
    future = NOW + 86_400
    header = signature(BODY, secret=SECRET, timestamp=future)

    check = verifier().begin(header)
    check.update(BODY)
    check.verify()


def test_missing_secret_rejects_everything() -> None:
    unconfigured = WebhookSignatureVerifier(None, tolerance_seconds=1800)

    with pytest.raises(InvalidSignature, match="RENCHI_ELEVENLABS_WEBHOOK_SECRET"):
        unconfigured.begin(f"t={NOW},v0={DIGEST}")


def test_parsed_header_holds_raw_digest() -> None:
    parsed = parse_signature_header(f"t={NOW},v0={DIGEST}")

    assert parsed.timestamp == NOW
    assert parsed.digest == bytes.fromhex(DIGEST)
