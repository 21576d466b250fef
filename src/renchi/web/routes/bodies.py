"""Reading JSON request bodies into checked values."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from renchi.errors import InvalidInput


async def json_object(request: Request) -> dict[str, Any]:
    """Return the body as a JSON object, or raise InvalidInput."""
    body = await request.body()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:
        # ValueError covers malformed JSON, bad UTF-8 and integers past
        # Python's digit limit; RecursionError covers absurd nesting.
        raise InvalidInput(f"Request body is not valid JSON: {error}.") from error
    if not isinstance(value, dict):
        raise InvalidInput("Request body must be a JSON object.")
    return value


def string_field(data: dict[str, Any], name: str, *, prefix: str = "") -> str:
    value = data.get(name)
    if value is None:
        raise InvalidInput(f"Missing field {name!r}.", field=prefix + name)
    if not isinstance(value, str):
        raise InvalidInput(f"Field {name!r} must be a string.", field=prefix + name)
    return value


def boolean_field(data: dict[str, Any], name: str, *, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"Field {name!r} must be true or false.", field=name)
    return value
