from __future__ import annotations

import pytest

from renchi.accounts.passwords import (
    common_passwords,
    hash_password,
    validate_password,
    verify_password,
)
from renchi.errors import InvalidInput


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too short"),
        ("elevenchars", "too short"),
        ("x" * 257, "too long"),
        ("LeaveMeAlone", "too common"),
        ("QWERTY123456", "too common"),
        ("Password2024!", "too common"),
        ("!!Sunshine123456", "too common"),
        ("abcabcabcabc", "repeats a short sequence"),
        ("aaaaaaaaaaaa", "repeats a short sequence"),
        ("abababababcb", "too few different characters"),
        ("ana@example.com", "must not be the email"),
        ("bad\ud800surrogate!", "not valid Unicode"),
    ],
)
def test_weak_password_rejected(password: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_password(password, email="ana@example.com")

    assert reason in raised.value.message
    assert raised.value.field == "password"


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3-xyz", "zq8#Lm2!vR7p"]
)
def test_strong_password_accepted(password: str) -> None:
    validate_password(password, email="ana@example.com")


def test_common_list_is_shipped() -> None:
    shipped = common_passwords()

    assert len(shipped) > 5000
    assert "password" in shipped
    assert all(entry == entry.lower() for entry in shipped)


def test_hash_verifies_only_its_password() -> None:
    hashed = hash_password("correct horse battery staple")

    assert "correct horse" not in hashed
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "correct horse battery stapler")
    assert not verify_password("not a hash", "anything at all")
