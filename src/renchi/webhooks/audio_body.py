"""Streaming a JSON webhook body while its base64 audio is decoded into a sink.

`AudioBodyScanner` takes a body chunk by chunk, in whatever pieces the client
sends. It copies every byte into a "skeleton" except the string values of
`data.full_audio` and `data.audio_base_64`, which it base64-decodes straight
into a sink and replaces with `null`. Memory stays at the size of the
skeleton plus one chunk, whatever the size of the audio.

The scanner tracks only as much of the JSON structure as it needs to know
where each string value sits, so it accepts fields in any order, including
`type` after `data`. It does not validate the rest of the document:
`json.loads` on the skeleton does that once the body is complete.

Inside the audio value the scanner accepts base64 text with the JSON escapes
that encoders may add (`\\/`, `\\uXXXX` for a base64 character, and `\\n`,
`\\r`, `\\t`, which are skipped like the line breaks of MIME base64). Any
other escape or character is an `AudioBodyError`.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

AUDIO_FIELDS = ("full_audio", "audio_base_64")

# Keys longer than this cannot be an audio field, so they are not kept.
_MAX_KEY_BYTES = 256
_STRUCTURAL = re.compile(rb'["{}\[\],]')
_QUOTE_OR_BACKSLASH = re.compile(rb'["\\]')
_BASE64_ALPHABET = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)
_SKIPPED_ESCAPES = frozenset(b"nrt")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")

AudioSink = Callable[[bytes], None]


class AudioBodyError(ValueError):
    """The audio value is not valid base64, or the body ended inside a string."""


class SkeletonTooLarge(Exception):
    """The body without its audio passed the limit of what is kept in memory."""


@dataclass(frozen=True)
class ExtractedAudio:
    """One audio value taken out of the body."""

    field: str
    size_bytes: int


class Base64StreamDecoder:
    """Decodes base64 text that arrives in pieces of any length.

    Whole 4-character groups are decoded as soon as they arrive and the
    remainder waits for the next piece. Missing padding at the very end is
    accepted; data after padding is not.
    """

    def __init__(self, sink: AudioSink) -> None:
        self._sink = sink
        self._pending = b""
        self._padded = False
        self.size_bytes = 0

    def feed(self, text: bytes) -> None:
        if not text:
            return
        if self._padded:
            raise AudioBodyError("Audio has base64 data after its padding.")
        data = self._pending + text if self._pending else text
        usable = len(data) - len(data) % 4
        self._pending = data[usable:]
        if usable:
            self._decode(data[:usable] if usable < len(data) else data)

    def finish(self) -> None:
        pending = self._pending
        self._pending = b""
        if not pending:
            return
        if len(pending) == 1:
            raise AudioBodyError("Audio base64 text ends with a partial group.")
        if self._padded:
            raise AudioBodyError("Audio has base64 data after its padding.")
        self._decode(pending + b"=" * (4 - len(pending)))

    def _decode(self, block: bytes) -> None:
        try:
            decoded = binascii.a2b_base64(block, strict_mode=True)
        except binascii.Error as error:
            raise AudioBodyError(f"Audio is not valid base64: {error}.") from error
        if block.endswith(b"="):
            self._padded = True
        self.size_bytes += len(decoded)
        self._sink(decoded)


@dataclass
class _Frame:
    is_object: bool
    key: str | None = None
    expecting_key: bool = True


class AudioBodyScanner:
    """Splits a streamed JSON body into a skeleton and its decoded audio values.

    `open_sink(field)` is called when an audio value begins and returns the
    function that receives its decoded bytes. An error stops the scan: later
    chunks are ignored and `finish` raises it, so the caller can keep reading
    the body for its signature before it responds.
    """

    def __init__(
        self, *, open_sink: Callable[[str], AudioSink], max_skeleton_bytes: int
    ) -> None:
        self._open_sink = open_sink
        self._max_skeleton_bytes = max_skeleton_bytes
        self._skeleton = bytearray()
        self._stack: list[_Frame] = []
        self._in_string = False
        self._string_is_key = False
        self._key_bytes: bytearray | None = None
        self._escape_pending = False
        self._audio_field: str | None = None
        self._audio_decoder: Base64StreamDecoder | None = None
        self._audio_carry = b""
        self._error: AudioBodyError | None = None
        self.extracted: list[ExtractedAudio] = []

    def feed(self, chunk: bytes) -> None:
        """Scan one chunk; raise SkeletonTooLarge as soon as the skeleton passes its limit."""
        if self._error is not None:
            return
        try:
            self._scan(chunk)
        except AudioBodyError as error:
            self._error = error
            self._audio_decoder = None

    def finish(self) -> bytes:
        """Return the skeleton; raise AudioBodyError for an invalid or unterminated value."""
        if self._error is not None:
            raise self._error
        if self._audio_decoder is not None or self._in_string:
            raise AudioBodyError("Request body ended inside a JSON string.")
        return bytes(self._skeleton)

    def _scan(self, chunk: bytes) -> None:
        position = 0
        copy_from = 0
        end = len(chunk)
        while position < end:
            if self._audio_decoder is not None:
                position = self._scan_audio(chunk, position)
                copy_from = position
                continue
            if self._in_string:
                position = self._scan_string(chunk, position)
                continue
            match = _STRUCTURAL.search(chunk, position)
            if match is None:
                break
            position = match.start()
            if chunk[position] == _QUOTE and self._at_audio_value():
                self._append(chunk[copy_from:position])
                self._append(b"null")
                self._begin_audio()
                position += 1
                copy_from = position
                continue
            self._on_structural(chunk[position])
            position += 1
        if self._audio_decoder is None:
            self._append(chunk[copy_from:])

    def _append(self, data: bytes) -> None:
        if not data:
            return
        if len(self._skeleton) + len(data) > self._max_skeleton_bytes:
            raise SkeletonTooLarge(
                f"Request body without its audio is larger than "
                f"{self._max_skeleton_bytes} bytes."
            )
        self._skeleton += data

    def _on_structural(self, byte: int) -> None:
        frame = self._stack[-1] if self._stack else None
        if byte == _QUOTE:
            self._in_string = True
            self._string_is_key = bool(
                frame and frame.is_object and frame.expecting_key
            )
            self._key_bytes = bytearray() if self._string_is_key else None
        elif byte in b"{[":
            self._stack.append(_Frame(is_object=byte == ord("{")))
        elif byte in b"}]":
            if self._stack:
                self._stack.pop()
        elif byte == ord(",") and frame is not None and frame.is_object:
            frame.expecting_key = True
            frame.key = None

    def _at_audio_value(self) -> bool:
        """Tell whether a string starting now is the value of `data.<audio field>`."""
        if len(self._stack) != 2:
            return False
        outer, inner = self._stack
        return (
            outer.is_object
            and inner.is_object
            and outer.key == "data"
            and not outer.expecting_key
            and not inner.expecting_key
            and inner.key in AUDIO_FIELDS
        )

    def _scan_string(self, chunk: bytes, position: int) -> int:
        """Skip through an ordinary string; return the position after its end or the chunk's."""
        end = len(chunk)
        if self._escape_pending:
            self._escape_pending = False
            self._keep_key_bytes(chunk[position : position + 1])
            position += 1
        while position < end:
            match = _QUOTE_OR_BACKSLASH.search(chunk, position)
            if match is None:
                self._keep_key_bytes(chunk[position:])
                return end
            found = match.start()
            if chunk[found] == _QUOTE:
                self._keep_key_bytes(chunk[position:found])
                self._end_string()
                return found + 1
            # A backslash: the byte after it never ends the string.
            self._keep_key_bytes(chunk[position : found + 2])
            if found + 1 >= end:
                self._escape_pending = True
                return end
            position = found + 2
        return position

    def _keep_key_bytes(self, data: bytes) -> None:
        if self._key_bytes is None:
            return
        if len(self._key_bytes) + len(data) > _MAX_KEY_BYTES:
            self._key_bytes = None
        else:
            self._key_bytes += data

    def _end_string(self) -> None:
        self._in_string = False
        if not self._string_is_key:
            return
        frame = self._stack[-1]
        frame.key = _decode_key(self._key_bytes)
        frame.expecting_key = False
        self._key_bytes = None

    def _begin_audio(self) -> None:
        field = self._stack[-1].key
        assert field is not None
        self._audio_field = field
        self._audio_decoder = Base64StreamDecoder(self._open_sink(field))

    def _scan_audio(self, chunk: bytes, position: int) -> int:
        """Decode audio text from `position`; return the position after the value or the chunk's end."""
        decoder = self._audio_decoder
        assert decoder is not None
        end = len(chunk)
        if self._audio_carry:
            combined = self._audio_carry + chunk[position : position + 6]
            resolved = _resolve_escape(combined)
            if resolved is None:
                self._audio_carry = combined
                return end
            used, text = resolved
            decoder.feed(text)
            position += used - len(self._audio_carry)
            self._audio_carry = b""

        quote = chunk.find(b'"', position)
        stop = end if quote == -1 else quote
        segment = chunk[position:stop]
        if b"\\" in segment:
            segment = self._unescape(segment, at_chunk_end=quote == -1)
        decoder.feed(segment)
        if quote == -1:
            return end
        decoder.finish()
        self.extracted.append(
            ExtractedAudio(field=self._audio_field or "", size_bytes=decoder.size_bytes)
        )
        self._audio_decoder = None
        self._audio_field = None
        return quote + 1

    def _unescape(self, segment: bytes, *, at_chunk_end: bool) -> bytes:
        """Resolve the escapes of an audio segment; keep an incomplete last escape for later."""
        if b"\\\\" in segment:
            raise AudioBodyError("Audio contains an escaped backslash.")
        # Without escaped backslashes every backslash starts an escape, so this is exact.
        segment = segment.replace(b"\\/", b"/")
        pieces: list[bytes] = []
        start = 0
        while (found := segment.find(b"\\", start)) != -1:
            pieces.append(segment[start:found])
            resolved = _resolve_escape(segment[found : found + 6])
            if resolved is None:
                if not at_chunk_end:
                    # The escape runs into the quote after it, as in `\"`.
                    raise AudioBodyError("Audio contains an incomplete escape.")
                self._audio_carry = segment[found:]
                return b"".join(pieces)
            used, text = resolved
            pieces.append(text)
            start = found + used
        pieces.append(segment[start:])
        return b"".join(pieces)


def _resolve_escape(data: bytes) -> tuple[int, bytes] | None:
    """Resolve the escape at the start of `data` to base64 text.

    Return the number of bytes it takes and its text, or None when `data`
    ends before the escape does.
    """
    if len(data) < 2:
        return None
    kind = data[1]
    if kind == ord("/"):
        return 2, b"/"
    if kind in _SKIPPED_ESCAPES:
        return 2, b""
    if kind != ord("u"):
        raise AudioBodyError(f"Audio contains the escape {data[:2]!r}.")
    if len(data) < 6:
        return None
    try:
        code_point = int(data[2:6], 16)
    except ValueError as error:
        raise AudioBodyError(f"Audio contains the escape {data[:6]!r}.") from error
    if code_point in _BASE64_ALPHABET:
        return 6, bytes([code_point])
    if chr(code_point) in "\n\r\t ":
        return 6, b""
    raise AudioBodyError(f"Audio contains the escape {data[:6]!r}.")


def _decode_key(raw: bytearray | None) -> str | None:
    """Return the text of an object key, or None when it is too long or invalid."""
    if raw is None:
        return None
    try:
        if b"\\" not in raw:
            return raw.decode("utf-8")
        decoded = json.loads(b'"' + raw + b'"')
    except ValueError:
        return None
    return decoded if isinstance(decoded, str) else None
