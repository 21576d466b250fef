"""Building blocks of the OpenAPI document: error responses, references and security."""

from __future__ import annotations

from typing import Any

ERROR_CODES = [
    "VALIDATION_ERROR",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "PAYLOAD_TOO_LARGE",
    "RANGE_NOT_SATISFIABLE",
    "RATE_LIMITED",
    "INTERNAL_ERROR",
    "UNAVAILABLE",
]

_ERROR_DESCRIPTIONS = {
    400: "Invalid request parameters or body (`VALIDATION_ERROR`); `field` names the value.",
    401: "Missing or invalid authentication (`UNAUTHORIZED`).",
    403: "Authenticated, but not allowed (`FORBIDDEN`).",
    404: "No such resource, or one the caller may not see (`NOT_FOUND`).",
    409: "The request conflicts with the current state (`CONFLICT`).",
    413: "The request body is larger than the limit (`PAYLOAD_TOO_LARGE`).",
    416: "The requested range lies outside the file (`RANGE_NOT_SATISFIABLE`).",
    429: "Too many requests (`RATE_LIMITED`); retry after `Retry-After` seconds.",
    500: "Server error (`INTERNAL_ERROR`); no details are shown.",
    503: "A backing service is unavailable (`UNAVAILABLE`); retry later.",
}

_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


def error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


def errors(*statuses_: int) -> dict[str, Any]:
    return {str(status): error_response(status) for status in statuses_}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


SESSION: list[dict[str, list[str]]] = [{"sessionCookie": []}, {"sessionBearer": []}]
# Error statuses that every endpoint behind a user session can return.
SESSION_ERRORS = (401, 403, 429, 500, 503)
