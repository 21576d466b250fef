"""Streaming a stored recording, with single-range `Range` requests.

Players seek in audio with `Range: bytes=...`. One range gets 206 with
`Content-Range`; a range that starts past the end gets 416. A header
that cannot be parsed, or one asking for several ranges, is ignored and the
whole file is sent, as RFC 9110 (section 14.2) allows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import BinaryIO

import structlog
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from renchi.adapters.storage import Storage, StorageError
from renchi.db.models import Recording
from renchi.errors import NotFound
from renchi.web.errors import error_response
from renchi.web.webhooks.pipeline import runtime_of

logger = structlog.get_logger(__name__)

CHUNK_BYTES = 64 * 1024
DEFAULT_CONTENT_TYPE = "audio/mpeg"
# Up to 18 digits, so positions stay far below any int limit; a longer number
# makes the header invalid, and an invalid Range header is ignored.
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


class RangeNotSatisfiable(Exception):
    """The requested range starts past the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte range that `header` requests, or None for the whole file.

    Raises RangeNotSatisfiable when the range lies outside the file.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        # A suffix range: the last N bytes.
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = min(int(last), size - 1) if last else size - 1
    return start, end


async def stream_recording(request: Request, recording: Recording) -> Response:
    """Respond with the recording's stored audio, whole or the requested range."""
    storage = runtime_of(request).storage
    key = recording.storage_key
    if recording.media_status != "stored" or key is None:
        raise NotFound(f"Recording {recording.id} has no stored audio.")
    try:
        size = await asyncio.to_thread(storage.size, key)
    except (OSError, StorageError) as error:
        logger.warning(
            "stored recording missing from storage",
            recording_id=str(recording.id),
            error=str(error),
        )
        raise NotFound(f"Recording {recording.id} has no stored audio.") from error

    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0",
        "Content-Disposition": f'inline; filename="{recording.id}"',
    }
    media_type = recording.content_type or DEFAULT_CONTENT_TYPE
    try:
        requested = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return error_response(
            "RANGE_NOT_SATISFIABLE",
            f"The range is outside the recording, which has {size} bytes.",
            headers={**headers, "Content-Range": f"bytes */{size}"},
        )
    if requested is None:
        start, end, status = 0, size - 1, 200
    else:
        start, end = requested
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        _read(storage, key, start, length),
        status_code=status,
        headers=headers,
        media_type=media_type,
    )


async def _read(
    storage: Storage, key: str, start: int, length: int
) -> AsyncIterator[bytes]:
    handle: BinaryIO = await asyncio.to_thread(storage.open, key)
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
