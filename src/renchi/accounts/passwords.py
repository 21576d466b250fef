"""Password rules and argon2id hashing.

A password must have at least 12 characters and must not appear in the list of
common passwords shipped with the package (compared in lower case). Hashes use
argon2-cffi's default argon2id parameters, so a later change of the defaults
rehashes a password at the next successful login.
"""

from __future__ import annotations

import string
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from renchi.errors import InvalidInput

MIN_LENGTH = 12
# Far above any passphrase, and low enough that hashing cannot be used to burn CPU.
MAX_LENGTH = 256

_hasher = PasswordHasher()
_PADDING = string.digits + string.punctuation + " "


@cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords, in lower case."""
    text = (
        resources.files("renchi.accounts")
        .joinpath("common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def validate_password(password: str, *, email: str | None = None) -> None:
    """Raise InvalidInput, naming the rule it breaks, unless `password` is acceptable."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"Password is too short: use at least {MIN_LENGTH} characters.",
            field="password",
        )
    try:
        password.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(
            "Password contains characters that are not valid Unicode text.",
            field="password",
        ) from error
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"Password is too long: use at most {MAX_LENGTH} characters.",
            field="password",
        )
    lowered = password.lower()
    # "Password2024!" is as weak as "password": digits and punctuation around
    # a common password add little.
    core = lowered.strip(_PADDING)
    if lowered in common_passwords() or core in common_passwords():
        raise InvalidInput(
            "Password is too common: choose one that is not on lists of "
            "frequently used passwords.",
            field="password",
        )
    if _is_repetition(lowered):
        raise InvalidInput(
            "Password repeats a short sequence: choose one without repetition.",
            field="password",
        )
    if len(set(lowered)) < 4:
        raise InvalidInput(
            "Password uses too few different characters: use at least 4.",
            field="password",
        )
    if email and lowered == email.strip().lower():
        raise InvalidInput("Password must not be the email address.", field="password")


def _is_repetition(text: str) -> bool:
    """Tell whether `text` is one shorter sequence repeated, such as "abcabcabcabc"."""
    return any(
        len(text) % size == 0 and text == text[:size] * (len(text) // size)
        for size in range(1, len(text) // 2 + 1)
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether `password` matches `password_hash`; an unreadable hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, UnicodeEncodeError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """Return a hash to verify against when the user does not exist.

    Verifying costs the same time as for a real user, so the response time
    does not reveal whether an email is registered.
    """
    return _hasher.hash("not-a-password-of-any-user")
