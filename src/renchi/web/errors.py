"""The error format of every response: `{"error": "<words>", "code": "<CODE>"}`."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from renchi.db.engine import is_unavailable
from renchi.errors import InvalidInput, RenchiError

logger = structlog.get_logger(__name__)

STATUS_BY_CODE = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "RANGE_NOT_SATISFIABLE": 416,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "UNAVAILABLE": 503,
}
CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}
MESSAGE_BY_STATUS = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body is too large.",
}


class ApiError(Exception):
    """An error response raised from route code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = STATUS_BY_CODE[code]
        self.headers = dict(headers or {})
        self.field = field


class PayloadTooLarge(Exception):
    """The request body passed the limit while it was being read."""


def error_response(
    code: str,
    message: str,
    *,
    status_code: int | None = None,
    headers: Mapping[str, str] | None = None,
    field: str | None = None,
) -> JSONResponse:
    body: dict[str, str] = {"error": message, "code": code}
    if field:
        body["field"] = field
    return JSONResponse(
        body, status_code=status_code or STATUS_BY_CODE[code], headers=headers
    )


async def handle_api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(
        error.code, error.message, headers=error.headers, field=error.field
    )


async def handle_domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RenchiError)
    field = error.field if isinstance(error, InvalidInput) else None
    return error_response(error.code, error.message, field=field)


async def handle_http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = error.status_code
    code = CODE_BY_STATUS.get(status)
    if code is None:
        # 405 has no code of its own in the contract; it is a request the route cannot take.
        code = "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR"
    message = MESSAGE_BY_STATUS.get(status) or str(error.detail)
    return error_response(code, message, status_code=status, headers=error.headers)


async def handle_payload_too_large(request: Request, error: Exception) -> Response:
    return error_response("PAYLOAD_TOO_LARGE", str(error))


def unexpected_error_response(error: Exception, *, path: str) -> Response:
    """Log an error no handler took and return its response: 503 for the database, else 500."""
    if is_unavailable(error):
        logger.warning("database unavailable", path=path, error=type(error).__name__)
        return error_response(
            "UNAVAILABLE",
            "The service is temporarily unavailable; retry later.",
            headers={"Retry-After": "5"},
        )
    logger.error("unhandled error", path=path, exc_info=error)
    return error_response("INTERNAL_ERROR", "Internal server error.")


async def handle_unexpected(request: Request, error: Exception) -> Response:
    return unexpected_error_response(error, path=request.url.path)


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    RenchiError: handle_domain_error,
    HTTPException: handle_http_exception,
    PayloadTooLarge: handle_payload_too_large,
    Exception: handle_unexpected,
}
