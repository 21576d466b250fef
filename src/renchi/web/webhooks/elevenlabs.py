"""ElevenLabs' post-call webhook: transcriptions, audio and call initiation failures.

The post-call endpoint never keeps a whole body in memory. Each chunk goes into the
signature's HMAC and into `AudioBodyScanner`, which decodes the base64 audio
of a `post_call_audio` event into a temporary file as it arrives. Only once
the whole body has arrived and its signature is valid is the file moved to its
storage key; otherwise it is removed and nothing else remains of the request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import TracebackType

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from renchi.adapters.elevenlabs_signature import (
    SIGNATURE_HEADER,
    InvalidSignature,
    SignatureCheck,
)
from renchi.adapters.storage import AtomicWriter, Storage
from renchi.calls.elevenlabs_events import (
    AUDIO,
    HANDLED_TYPES,
    SOURCE,
    AudioReference,
    InvalidEvent,
    audio_storage_key,
    build_event,
    parse_body,
)
from renchi.config import MIB
from renchi.observability import metrics
from renchi.runtime import Runtime
from renchi.web.errors import ApiError, PayloadTooLarge
from renchi.web.webhooks.pipeline import (
    acknowledge,
    invalid_event,
    reject_signature,
    runtime_of,
    unavailable,
)
from renchi.webhooks.audio_body import (
    AudioBodyError,
    AudioBodyScanner,
    AudioSink,
    SkeletonTooLarge,
)
from renchi.webhooks.intake import EventUnavailable, InboundEvent, Processed

logger = structlog.get_logger(__name__)

POST_CALL_PATH = "/api/webhooks/elevenlabs"
# Everything in a post-call body except its audio is parsed in memory. A
# 2,000-turn transcript takes about a megabyte.
MAX_EVENT_JSON_BYTES = 32 * MIB
# How long a post-call request waits for one of the body slots before a 503.
SLOT_WAIT_SECONDS = 10.0
_INCOMING_FOLDER = "incoming"


class _AudioUpload:
    """The file that receives a request's audio, kept only when `commit` is called."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._writer: AtomicWriter | None = None
        self.recording_id = uuid.uuid4()
        self.stored_key: str | None = None
        self.size_bytes = 0

    def __enter__(self) -> _AudioUpload:
        return self

    def open_sink(self, field: str) -> AudioSink:
        """Return where the decoded bytes of an audio value go; only the first is kept."""
        if self._writer is not None:
            return _discard
        key = f"{_INCOMING_FOLDER}/{self.recording_id}.mp3"
        writer = self._storage.writer(key)
        writer.__enter__()
        self._writer = writer
        return writer.write

    @property
    def has_audio(self) -> bool:
        return self._writer is not None and self._writer.size > 0

    def commit(self, key: str) -> None:
        """Move the audio to `key`; blocking, because it waits for the disk."""
        assert self._writer is not None
        self._writer.commit(self._storage.path_for(key))
        self.stored_key = key
        self.size_bytes = self._writer.size

    def delete_stored(self) -> None:
        if self.stored_key is not None:
            self._storage.delete(self.stored_key)
            self.stored_key = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Removes the temporary file unless `commit` moved it into place.
        if self._writer is not None:
            self._writer.__exit__(exc_type, exc, traceback)


def _discard(data: bytes) -> None:
    """Drop the bytes of a second audio value in one body."""


async def post_call_webhook(request: Request) -> Response:
    """Verify, store and apply one post-call event, streaming its audio to storage."""
    runtime = runtime_of(request)
    try:
        check = runtime.elevenlabs_signatures.begin(
            request.headers.get(SIGNATURE_HEADER)
        )
    except InvalidSignature as error:
        raise reject_signature(SOURCE, str(error)) from error

    # The signature covers the whole body, so a forged request is only known
    # as such at its end; bounding the bodies read at once bounds the disk and
    # memory that unverified requests can take.
    slots: asyncio.Semaphore = request.app.state.post_call_slots
    try:
        await asyncio.wait_for(slots.acquire(), SLOT_WAIT_SECONDS)
    except TimeoutError as error:
        metrics.webhook_events.labels(SOURCE, "unknown", "busy").inc()
        logger.warning("post-call body rejected: too many bodies in progress")
        raise unavailable() from error
    try:
        return await _receive(request, runtime, check)
    finally:
        slots.release()


async def _receive(
    request: Request, runtime: Runtime, check: SignatureCheck
) -> Response:
    with _AudioUpload(runtime.storage) as upload:
        scanner = AudioBodyScanner(
            open_sink=upload.open_sink, max_skeleton_bytes=MAX_EVENT_JSON_BYTES
        )
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                check.update(chunk)
                scanner.feed(chunk)
        except ClientDisconnect as error:
            _count_audio(upload, "incomplete")
            metrics.webhook_events.labels(SOURCE, "unknown", "incomplete").inc()
            logger.warning(
                "webhook body cut off by the client", received_bytes=received
            )
            raise ApiError(
                "VALIDATION_ERROR", "Request body ended before it was complete."
            ) from error
        except SkeletonTooLarge as error:
            raise PayloadTooLarge(str(error)) from error
        except OSError as error:
            logger.error("writing webhook audio to storage failed", error=str(error))
            raise unavailable() from error

        try:
            check.verify()
        except InvalidSignature as error:
            _count_audio(upload, "discarded")
            raise reject_signature(SOURCE, str(error)) from error
        event = _parse_event(scanner, upload)
        await _keep_audio(event, scanner, upload)

    try:
        processed = await runtime.processor.process(event)
    except EventUnavailable as error:
        await asyncio.to_thread(upload.delete_stored)
        raise unavailable() from error
    await _settle_audio(processed, upload)
    return acknowledge(processed)


def _parse_event(scanner: AudioBodyScanner, upload: _AudioUpload) -> InboundEvent:
    """Parse the skeleton of a verified body; 400 when it is not an event."""
    event_type = "unknown"
    try:
        skeleton = scanner.finish()
        payload = parse_body(skeleton)
        raw_type = payload.get("type")
        if raw_type in HANDLED_TYPES:
            event_type = str(raw_type)
        event = build_event(payload, body=skeleton, received_at=datetime.now(UTC))
    except (AudioBodyError, InvalidEvent) as error:
        _count_audio(upload, "invalid")
        raise invalid_event(SOURCE, event_type, str(error)) from error
    data = event.payload.get("data")
    structlog.contextvars.bind_contextvars(
        conversation_id=data.get("conversation_id") if isinstance(data, dict) else None
    )
    return event


async def _keep_audio(
    event: InboundEvent, scanner: AudioBodyScanner, upload: _AudioUpload
) -> None:
    """Store the audio of an audio event and put its reference where the audio was."""
    data = event.payload.get("data")
    if not scanner.extracted or not isinstance(data, dict):
        # A repeated "data" key can leave the audio outside the parsed payload.
        return
    first, *others = scanner.extracted
    conversation_id = str(data.get("conversation_id") or "")
    if event.type == AUDIO and upload.has_audio and conversation_id:
        key = audio_storage_key(conversation_id, upload.recording_id)
        try:
            await asyncio.to_thread(upload.commit, key)
        except OSError as error:
            logger.error("storing webhook audio failed", key=key, error=str(error))
            raise unavailable() from error
        reference = AudioReference(
            recording_id=upload.recording_id,
            storage_key=key,
            size_bytes=first.size_bytes,
        )
        data[first.field] = reference.to_payload()
    else:
        _count_audio(upload, "discarded")
        data[first.field] = {"discarded": True, "size_bytes": first.size_bytes}
        logger.warning("audio discarded: not an audio event or empty", type=event.type)
    for extra in others:
        # NOTE: one body with both audio fields keeps only the first one's audio.
        data[extra.field] = {"discarded": True, "size_bytes": extra.size_bytes}


async def _settle_audio(processed: Processed, upload: _AudioUpload) -> None:
    """Remove the audio of a repeated event, or count the bytes kept."""
    if upload.stored_key is None:
        return
    if processed.status == "duplicate":
        await asyncio.to_thread(upload.delete_stored)
        _count_audio(upload, "duplicate")
        return
    # NOTE: a spooled event that turns out to be a repeat when replayed leaves
    # its audio file in storage with no recording pointing at it.
    metrics.recording_media_bytes.labels(SOURCE).inc(upload.size_bytes)
    _count_audio(upload, "stored")


def _count_audio(upload: _AudioUpload, result: str) -> None:
    if upload.has_audio or upload.stored_key is not None:
        metrics.audio_bodies.labels(result).inc()


routes = [Route(POST_CALL_PATH, post_call_webhook, methods=["POST"])]
