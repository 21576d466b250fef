"""Requests signed exactly as Twilio signs them, with the twilio library."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-twilio-auth-token"
PUBLIC_URL = "https://public.example"


def sign(url: str, params: dict[str, str], *, token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


async def post_signed(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any],
    *,
    public_url: str = PUBLIC_URL,
    token: str = AUTH_TOKEN,
) -> httpx.Response:
    """POST `params` as a form to `path`, signed for `public_url` + `path`."""
    fields = {name: str(value) for name, value in params.items()}
    signature = sign(public_url + path, fields, token=token)
    return await client.post(
        path,
        content=urlencode(fields),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
    )


def voice_params(
    call_sid: str, *, to: str, caller: str = "+15550001111", **extra: Any
) -> dict[str, Any]:
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": caller,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "FromCity": "SAN FRANCISCO",
        "FromCountry": "US",
        **extra,
    }


def status_params(
    call_sid: str, status: str, *, sequence: int | None, to: str, **extra: Any
) -> dict[str, Any]:
    params = {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": "+15550001111",
        "To": to,
        "CallStatus": status,
        "Direction": "inbound",
        "CallbackSource": "call-progress-events",
        **extra,
    }
    if sequence is not None:
        params["SequenceNumber"] = sequence
    return params
