from __future__ import annotations

import base64
import json
import os
import random
from typing import Any

import pytest

from renchi.webhooks.audio_body import (
    AudioBodyError,
    AudioBodyScanner,
    Base64StreamDecoder,
    SkeletonTooLarge,
)

# Fixed bytes, so that a failure repeats; they contain every base64 character.
AUDIO = random.Random(3001).randbytes(3001)
ENCODED = base64.b64encode(AUDIO).decode()
SPLITS = (1, 2, 3, 4, 5, 7, 64, 4096, 1 << 20)


def feed(
    body: bytes, *, step: int, limit: int = 1 << 20
) -> tuple[AudioBodyScanner, dict[str, bytearray]]:
    """Feed `body` to a scanner in pieces of `step` bytes; return it and its sinks."""
    sinks: dict[str, bytearray] = {}

    def open_sink(field: str) -> Any:
        return sinks.setdefault(field, bytearray()).extend

    scanner = AudioBodyScanner(open_sink=open_sink, max_skeleton_bytes=limit)
    for start in range(0, len(body), step):
        scanner.feed(body[start : start + step])
    return scanner, sinks


def scan(
    body: bytes, *, step: int, limit: int = 1 << 20
) -> tuple[Any, dict[str, bytes], AudioBodyScanner]:
    """Scan `body` in pieces of `step` bytes; return the parsed skeleton and the decoded values."""
    scanner, sinks = feed(body, step=step, limit=limit)
    skeleton = json.loads(scanner.finish())
    return skeleton, {field: bytes(data) for field, data in sinks.items()}, scanner


def body_with_audio(text: str, *, prefix: str = "", suffix: str = "") -> bytes:
    return (
        '{"type":"post_call_audio","data":{"agent_id":"agent_1",'
        f'"conversation_id":"conv_1",{prefix}"full_audio":"{text}"{suffix}}}}}'
    ).encode()


@pytest.mark.parametrize("step", SPLITS)
def test_audio_decoded_at_any_split(step: int) -> None:
    skeleton, audio, scanner = scan(body_with_audio(ENCODED), step=step)

    assert audio == {"full_audio": AUDIO}
    assert skeleton["data"] == {
        "agent_id": "agent_1",
        "conversation_id": "conv_1",
        "full_audio": None,
    }
    assert [(item.field, item.size_bytes) for item in scanner.extracted] == [
        ("full_audio", len(AUDIO))
    ]


@pytest.mark.parametrize("step", SPLITS)
def test_type_after_data_is_kept(step: int) -> None:
    body = (
        '{"data":{"full_audio":"' + ENCODED + '","conversation_id":"conv_9"},'
        '"event_timestamp":1796400000,"type":"post_call_audio"}'
    ).encode()

    skeleton, audio, _ = scan(body, step=step)

    assert audio == {"full_audio": AUDIO}
    assert skeleton == {
        "data": {"full_audio": None, "conversation_id": "conv_9"},
        "event_timestamp": 1796400000,
        "type": "post_call_audio",
    }


@pytest.mark.parametrize("step", SPLITS)
def test_escaped_slashes_and_line_breaks_decode(step: int) -> None:
    wrapped = "\\n".join(ENCODED[i : i + 76] for i in range(0, len(ENCODED), 76))
    escaped = wrapped.replace("/", "\\/")

    _, audio, _ = scan(body_with_audio(escaped), step=step)

    assert audio == {"full_audio": AUDIO}


@pytest.mark.parametrize("step", SPLITS)
def test_unicode_escapes_decode(step: int) -> None:
    text = ENCODED[:10] + "\\r\\n\\t\\u000a" + ENCODED[10:]
    text = text.replace("A", "\\u0041").replace("+", "\\u002B")

    _, audio, _ = scan(body_with_audio(text), step=step)

    assert audio == {"full_audio": AUDIO}


@pytest.mark.parametrize("step", SPLITS)
def test_older_field_name_decodes(step: int) -> None:
    body = json.dumps(
        {
            "type": "post_call_audio",
            "data": {"conversation_id": "c", "audio_base_64": ENCODED},
        }
    ).encode()

    skeleton, audio, _ = scan(body, step=step)

    assert audio == {"audio_base_64": AUDIO}
    assert skeleton["data"]["audio_base_64"] is None


@pytest.mark.parametrize("step", SPLITS)
def test_escaped_key_still_matches(step: int) -> None:
    body = ('{"data":{"full\\u005faudio":"' + ENCODED + '"}}').encode()

    _, audio, _ = scan(body, step=step)

    assert audio == {"full_audio": AUDIO}


@pytest.mark.parametrize(
    "document",
    [
        {"full_audio": ENCODED, "data": {}},
        {"data": {"nested": {"full_audio": ENCODED}}},
        {"data": {"items": ["full_audio", ENCODED]}},
        {"other": {"full_audio": ENCODED}},
        {"data": {"full_audio_note": ENCODED, "x": "full_audio"}},
        {"data": [{"full_audio": ENCODED}]},
        [{"data": {"full_audio": ENCODED}}],
        {"data": {"transcript": [{"message": 'says "full_audio": \\ here'}]}},
    ],
)
def test_other_places_are_copied_unchanged(document: Any) -> None:
    body = json.dumps(document).encode()

    for step in (1, 5, 1 << 20):
        skeleton, audio, scanner = scan(body, step=step)

        assert audio == {}
        assert skeleton == document
        assert scanner.extracted == []


def test_strings_with_quotes_and_braces_do_not_confuse_structure() -> None:
    document = {
        "type": "post_call_audio",
        "data": {
            "note": 'a "quoted" {brace} [bracket], comma: \\ backslash',
            "conversation_id": "c",
            "full_audio": ENCODED,
        },
    }

    for step in (1, 2, 3, 1 << 20):
        skeleton, audio, _ = scan(json.dumps(document).encode(), step=step)

        assert audio == {"full_audio": AUDIO}
        assert skeleton["data"]["note"] == document["data"]["note"]


def test_non_string_audio_is_copied() -> None:
    skeleton, audio, _ = scan(b'{"data":{"full_audio":null,"x":1}}', step=3)

    assert audio == {}
    assert skeleton == {"data": {"full_audio": None, "x": 1}}


def test_unpadded_audio_decodes() -> None:
    data = os.urandom(3002)
    text = base64.b64encode(data).decode().rstrip("=")

    _, audio, _ = scan(body_with_audio(text), step=5)

    assert audio == {"full_audio": data}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENCODED[:-4] + "QQ==" + "QUFB", "padding"),
        (ENCODED[:100] + "*" + ENCODED[100:], "not valid base64"),
        (ENCODED[:100] + " " + ENCODED[100:], "not valid base64"),
        (ENCODED[:100] + "\\\\" + ENCODED[100:], "escape"),
        (ENCODED[:100] + '\\"' + ENCODED[100:], "escape"),
        (ENCODED[:100] + "\\b" + ENCODED[100:], "escape"),
        (ENCODED[:100] + "\\u0022" + ENCODED[100:], "escape"),
        (ENCODED[:100] + "\\u00zz" + ENCODED[100:], "escape"),
        ("QUFBQ", "partial group"),
    ],
)
def test_invalid_audio_is_an_error(text: str, message: str) -> None:
    for step in (1, 3, 1 << 20):
        scanner, _ = feed(body_with_audio(text), step=step)

        with pytest.raises(AudioBodyError, match=message):
            scanner.finish()


@pytest.mark.parametrize(
    "body",
    [
        body_with_audio(ENCODED)[:-10],
        b'{"data":{"full_audio":"QUFB',
        b'{"data":{"note":"unterminated',
        b'{"data":{"full_audio":"QUFB\\',
        b'{"data":{"full_audio":"QUFB\\u00',
    ],
)
def test_body_ending_inside_string_is_an_error(body: bytes) -> None:
    scanner = AudioBodyScanner(
        open_sink=lambda field: lambda data: None, max_skeleton_bytes=1 << 20
    )
    scanner.feed(body)

    with pytest.raises(AudioBodyError):
        scanner.finish()


def test_truncated_structure_fails_to_parse() -> None:
    scanner = AudioBodyScanner(
        open_sink=lambda field: lambda data: None, max_skeleton_bytes=1 << 20
    )
    scanner.feed(body_with_audio(ENCODED)[:-2])

    with pytest.raises(json.JSONDecodeError):
        json.loads(scanner.finish())


def test_skeleton_limit_excludes_audio() -> None:
    # The audio alone is four times the limit, and the rest fits.
    body = body_with_audio(ENCODED)
    _, audio, _ = scan(body, step=64, limit=1000)

    assert audio == {"full_audio": AUDIO}


def test_skeleton_over_limit_raises() -> None:
    body = json.dumps({"data": {"note": "x" * 2000}}).encode()

    with pytest.raises(SkeletonTooLarge):
        feed(body, step=100, limit=1000)


def test_both_audio_fields_open_two_sinks() -> None:
    body = json.dumps(
        {"data": {"full_audio": ENCODED, "audio_base_64": ENCODED[:8]}}
    ).encode()

    skeleton, audio, scanner = scan(body, step=11)

    assert audio == {"full_audio": AUDIO, "audio_base_64": AUDIO[:6]}
    assert skeleton == {"data": {"full_audio": None, "audio_base_64": None}}
    assert [item.field for item in scanner.extracted] == [
        "full_audio",
        "audio_base_64",
    ]


def test_decoder_carries_remainder_between_pieces() -> None:
    output = bytearray()
    decoder = Base64StreamDecoder(output.extend)
    for index in range(0, len(ENCODED), 3):
        decoder.feed(ENCODED[index : index + 3].encode())
    decoder.finish()

    assert bytes(output) == AUDIO
    assert decoder.size_bytes == len(AUDIO)


def random_value(generator: random.Random, depth: int) -> Any:
    """Return a random JSON value with escapes, non-ASCII text and nesting."""
    kind = generator.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return generator.choice([None, True, False])
    if kind == 1:
        return generator.choice([0, -7, 3.25, 1e21, 12345678901234567890])
    if kind in (2, 3):
        alphabet = 'ab"\\/{}[],: \n\té€😀'
        return "".join(
            generator.choice(alphabet) for _ in range(generator.randrange(12))
        )
    if kind == 4:
        return [
            random_value(generator, depth + 1) for _ in range(generator.randrange(4))
        ]
    keys = ["data", "full_audio", "audio_base_64", "type", 'k"ey', "ключ"]
    return {
        generator.choice(keys): random_value(generator, depth + 1)
        for _ in range(generator.randrange(5))
    }


@pytest.mark.parametrize("seed", range(40))
def test_random_documents_match_json_loads(seed: int) -> None:
    generator = random.Random(seed)
    document = {"type": "t", "data": {"x": random_value(generator, 1)}}
    if seed % 2:
        document["data"]["full_audio"] = ENCODED
    for key in range(generator.randrange(4)):
        document[f"extra{key}"] = random_value(generator, 1)
    body = json.dumps(document, ensure_ascii=bool(seed % 3)).encode()
    expected = json.loads(body)
    if seed % 2:
        expected["data"]["full_audio"] = None

    for step in (1, generator.randrange(2, 50), 1 << 20):
        skeleton, audio, _ = scan(body, step=step)

        assert skeleton == expected
        assert audio == ({"full_audio": AUDIO} if seed % 2 else {})
