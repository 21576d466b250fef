"""Requests signed exactly as ElevenLabs signs them, and realistic event bodies.

The signature is computed here with `hmac` directly rather than with the code
under test: HMAC-SHA256 with the webhook secret over `"{t}.{raw body}"`, hex.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

WEBHOOK_SECRET = "test-elevenlabs-webhook-secret"
PERSONALIZATION_SECRET = "test-personalization-secret"
POST_CALL_PATH = "/api/webhooks/elevenlabs"
PERSONALIZE_PATH = "/api/webhooks/elevenlabs/personalize"
START_TIME = 1_796_400_000  # 2026-12-04 16:00:00 UTC


def signature(
    body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{moment}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={moment},v0={digest}"


def encode(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


async def post_event(
    client: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST an event signed with `secret`; `headers` replaces the signature header."""
    body = encode(payload)
    sent = headers
    if sent is None:
        sent = {
            "elevenlabs-signature": signature(body, secret=secret, timestamp=timestamp)
        }
    return await client.post(
        POST_CALL_PATH,
        content=body,
        headers={"content-type": "application/json", **sent},
    )


def turns(count: int) -> list[dict[str, Any]]:
    """Return `count` alternating turns, with a tool turn whose message is null every tenth."""
    result: list[dict[str, Any]] = []
    for index in range(count):
        if index % 10 == 9:
            result.append(
                {
                    "role": "agent",
                    "message": None,
                    "time_in_call_secs": index,
                    "tool_calls": [
                        {"tool_name": "lookup_booking", "params_as_json": "{}"}
                    ],
                    "tool_results": [{"result_value": "booked"}],
                }
            )
            continue
        result.append(
            {
                "role": "agent" if index % 2 == 0 else "user",
                "message": f"Turn {index}: the appointment is on Tuesday.",
                "time_in_call_secs": str(index),
                "tool_calls": [],
                "tool_results": [],
                "feedback": None,
                "llm_override": None,
            }
        )
    return result


def transcription(
    conversation_id: str,
    *,
    agent_id: str = "agent_acme",
    call_sid: str | None = None,
    agent_number: str = "+14155550100",
    caller: str = "+15550001111",
    transcript: list[dict[str, Any]] | None = None,
    outcome: str = "success",
    summary: str = "The caller booked a cleaning for Tuesday at 10:00.",
    duration: Any = 42,
    error: Any = None,
) -> dict[str, Any]:
    """Return a `post_call_transcription` body shaped like ElevenLabs' own."""
    metadata: dict[str, Any] = {
        "start_time_unix_secs": START_TIME,
        "call_duration_secs": duration,
        "cost": 512,
        "termination_reason": "Call ended by remote party",
        "feedback": {"overall_score": None, "likes": 0, "dislikes": 0},
        "authorization_method": "signed_url",
        "charging": {"dev_discount": False},
    }
    if error is not None:
        metadata["error"] = error
    if call_sid is not None:
        metadata["phone_call"] = {
            "direction": "inbound",
            "phone_number_id": "phnum_1",
            "agent_number": agent_number,
            "external_number": caller,
            "type": "twilio",
            "stream_sid": "MZ" + "0" * 32,
            "call_sid": call_sid,
        }
    return {
        "type": "post_call_transcription",
        "event_timestamp": START_TIME + 60,
        "data": {
            "agent_id": agent_id,
            "conversation_id": conversation_id,
            "status": "done",
            "user_id": None,
            "transcript": turns(4) if transcript is None else transcript,
            "metadata": metadata,
            "analysis": {
                "evaluation_criteria_results": {
                    "booked": {
                        "criteria_id": "booked",
                        "result": "success",
                        "rationale": "A slot was confirmed.",
                    }
                },
                "data_collection_results": {
                    "appointment_day": {
                        "data_collection_id": "appointment_day",
                        "value": "Tuesday",
                        "rationale": "The caller said Tuesday.",
                    }
                },
                "call_successful": outcome,
                "transcript_summary": summary,
            },
            "conversation_initiation_client_data": {
                "conversation_config_override": {"agent": {"language": "en"}},
                "dynamic_variables": {
                    "team_name": "Acme Dental",
                    "system__call_sid": call_sid,
                },
            },
            "has_audio": True,
            "has_user_audio": True,
            "has_response_audio": True,
        },
    }


def audio_event(
    conversation_id: str,
    audio_base64: str,
    *,
    agent_id: str = "agent_acme",
    field: str = "full_audio",
) -> dict[str, Any]:
    return {
        "type": "post_call_audio",
        "event_timestamp": START_TIME + 61,
        "data": {
            "agent_id": agent_id,
            "conversation_id": conversation_id,
            field: audio_base64,
        },
    }


def initiation_failure(
    conversation_id: str,
    *,
    reason: str = "busy",
    metadata: dict[str, Any] | None = None,
    agent_id: str = "agent_acme",
) -> dict[str, Any]:
    return {
        "type": "call_initiation_failure",
        "event_timestamp": START_TIME + 5,
        "data": {
            "agent_id": agent_id,
            "conversation_id": conversation_id,
            "failure_reason": reason,
            "metadata": metadata if metadata is not None else {},
        },
    }
