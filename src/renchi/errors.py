"""Errors the domain raises, each with the API error code a face maps it to.

The domain never imports the web layer; `code` is the shared vocabulary of
`{"error": ..., "code": ...}` responses and of the command line's messages.
"""

from __future__ import annotations

DEFAULT_SHORTEN_LIMIT = 80
_ELLIPSIS = "..."


class RenchiError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RenchiError):
    code = "NOT_FOUND"


class Conflict(RenchiError):
    code = "CONFLICT"


class InvalidInput(RenchiError):
    """A value that fails validation; `field` names it when there is one."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(RenchiError):
    code = "FORBIDDEN"


class Unauthorized(RenchiError):
    code = "UNAUTHORIZED"


def shorten(value: object, limit: int = DEFAULT_SHORTEN_LIMIT) -> str:
    """Return `value` as text of at most `limit` characters, cut with "..." when longer.

    Messages call it on input they echo back, so an error about a megabyte of
    input is not itself a megabyte long.
    """
    text = str(value)
    if len(text) <= limit:
        return text
    return text[: max(limit - len(_ELLIPSIS), 0)] + _ELLIPSIS


def brief(value: object, limit: int = DEFAULT_SHORTEN_LIMIT) -> str:
    """Return the repr of `value` cut to `limit` characters, for messages that show a value."""
    return shorten(repr(value), limit)
