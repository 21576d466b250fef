"""Downloading a recording's media from Twilio into storage, as a background task."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from renchi.adapters.storage import Storage
from renchi.adapters.twilio import (
    ForeignMediaUrl,
    TwilioClient,
    TwilioNotConfigured,
    TwilioNotFound,
    TwilioRejected,
    TwilioUnavailable,
)
from renchi.db.engine import Database
from renchi.db.models import Recording
from renchi.db.models.base import utcnow
from renchi.observability import metrics
from renchi.tasks.worker import PermanentTaskError, RetryableTaskError

logger = structlog.get_logger(__name__)


def recording_key(
    call_id: uuid.UUID, recording_id: uuid.UUID, extension: str = "mp3"
) -> str:
    return f"{call_id}/{recording_id}.{extension}"


class RecordingFetcher:
    """The `fetch_recording` task: Twilio media to storage, then the row updated."""

    def __init__(
        self, *, database: Database, storage: Storage, twilio: TwilioClient
    ) -> None:
        self._database = database
        self._storage = storage
        self._twilio = twilio

    async def __call__(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        try:
            recording_id = uuid.UUID(str(payload["recording_id"]))
        except (KeyError, ValueError) as error:
            raise PermanentTaskError(f"Invalid task payload {payload!r}.") from error

        async with self._database.sessions() as session:
            recording = await session.get(Recording, recording_id)
        if recording is None:
            raise PermanentTaskError(f"Recording {recording_id} no longer exists.")
        if recording.media_status == "stored" and recording.storage_key:
            return {"storage_key": recording.storage_key, "skipped": "already stored"}
        if recording.media_status == "deleted":
            return {"skipped": "recording was deleted"}
        log = logger.bind(
            recording_sid=recording.external_id, call_id=str(recording.call_id)
        )

        key = recording_key(recording.call_id, recording.id)
        try:
            with self._storage.writer(key) as writer:
                content_type = await self._twilio.download_recording(
                    recording.source_url or "", write=writer.write
                )
                writer.commit()
                size = writer.size
        except (ForeignMediaUrl, TwilioNotConfigured, TwilioRejected) as error:
            await self._mark(
                recording_id, media_status="failed", media_error=str(error)
            )
            raise PermanentTaskError(str(error)) from error
        except TwilioNotFound as error:
            # Twilio answers 404 for a short while after the callback; try again later.
            raise RetryableTaskError(str(error)) from error
        except TwilioUnavailable as error:
            raise RetryableTaskError(
                str(error), retry_after=error.retry_after
            ) from error

        await self._mark(
            recording_id,
            media_status="stored",
            media_error=None,
            storage_key=key,
            content_type=content_type or "audio/mpeg",
            size_bytes=size,
            stored_at=utcnow(),
        )
        metrics.recording_media_bytes.labels("twilio").inc(size)
        log.info("recording media stored", size_bytes=size)
        return {"storage_key": key, "size_bytes": size}

    async def _mark(self, recording_id: uuid.UUID, **values: Any) -> None:
        async with self._database.transaction() as session:
            recording = await session.get(Recording, recording_id, with_for_update=True)
            if recording is not None:
                for name, value in values.items():
                    setattr(recording, name, value)
