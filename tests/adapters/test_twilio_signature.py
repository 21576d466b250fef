from __future__ import annotations

import pytest

from renchi.adapters.twilio import SignatureVerifier, signed_url

# Twilio's published example request and the signature it documents.
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_TOKEN = "12345"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_published_vector_verifies() -> None:
    verifier = SignatureVerifier(VECTOR_TOKEN)

    assert verifier.verify(
        url=VECTOR_URL, params=VECTOR_PARAMS.items(), signature=VECTOR_SIGNATURE
    )


def test_published_vector_signs() -> None:
    assert (
        SignatureVerifier(VECTOR_TOKEN).sign(
            url=VECTOR_URL, params=VECTOR_PARAMS.items()
        )
        == VECTOR_SIGNATURE
    )


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (VECTOR_URL, {**VECTOR_PARAMS, "Digits": "9999"}, VECTOR_SIGNATURE),
        (
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            VECTOR_PARAMS,
            VECTOR_SIGNATURE,
        ),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS, VECTOR_SIGNATURE),
        (VECTOR_URL, VECTOR_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ"),
        (VECTOR_URL, VECTOR_PARAMS, ""),
        (VECTOR_URL, VECTOR_PARAMS, None),
    ],
    ids=[
        "changed-param",
        "changed-query",
        "changed-scheme",
        "truncated",
        "empty",
        "missing",
    ],
)
def test_tampered_request_fails(
    url: str, params: dict[str, str], signature: str | None
) -> None:
    verifier = SignatureVerifier(VECTOR_TOKEN)

    assert not verifier.verify(url=url, params=params.items(), signature=signature)


def test_repeated_fields_all_count() -> None:
    verifier = SignatureVerifier(VECTOR_TOKEN)
    pairs = [("To", "+1"), ("Tag", "b"), ("Tag", "a")]
    signature = verifier.sign(url="https://x.example/hook", params=pairs)

    assert verifier.verify(
        url="https://x.example/hook", params=pairs, signature=signature
    )
    assert not verifier.verify(
        url="https://x.example/hook", params=dict(pairs).items(), signature=signature
    )


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://public.example", "https://public.example/api/hook?a=1"),
        ("https://public.example:8443", "https://public.example:8443/api/hook?a=1"),
        ("https://public.example/renchi", "https://public.example/renchi/api/hook?a=1"),
        (None, "http://internal:8000/api/hook?a=1"),
    ],
)
def test_signed_url_uses_public_base(public_url: str | None, expected: str) -> None:
    url = signed_url(
        public_url=public_url,
        request_url="http://internal:8000/api/hook?a=1",
        path="/api/hook",
        query="a=1",
    )

    assert url == expected
