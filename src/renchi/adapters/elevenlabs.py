"""ElevenLabs conversational agents: registering a Twilio call.

Errors raised by `ElevenLabsClient`:

- `ElevenLabsError`: the base of all of them.
- `ElevenLabsNotConfigured`: no API key, so nothing was sent.
- `ElevenLabsUnavailable`: network failure, 5xx or 429; `ElevenLabsTimeout` for a time-out.
- `ElevenLabsRejected`: any other 4xx, or a response that is not TwiML.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from renchi.adapters.http import parse_retry_after

# A register-call response is a short TwiML document; anything far larger is not one.
MAX_TWIML_BYTES = 64 * 1024


class ElevenLabsError(Exception):
    """A request to ElevenLabs failed or was not made."""


class ElevenLabsNotConfigured(ElevenLabsError):
    pass


class ElevenLabsUnavailable(ElevenLabsError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ElevenLabsTimeout(ElevenLabsUnavailable):
    pass


class ElevenLabsRejected(ElevenLabsError):
    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ElevenLabsClient:
    """Calls the ElevenLabs API with the account's API key."""

    def __init__(
        self, *, http: httpx.AsyncClient, api_url: str, api_key: str | None
    ) -> None:
        self._http = http
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key

    @property
    def configured(self) -> bool:
        return bool(self._api_key)

    async def register_call(
        self,
        *,
        agent_id: str,
        from_number: str,
        to_number: str,
        direction: str,
        dynamic_variables: dict[str, str],
        timeout: float,
    ) -> str:
        """Register a Twilio call with an agent and return the TwiML that connects it."""
        if not self._api_key:
            raise ElevenLabsNotConfigured(
                "ElevenLabs API key is not configured; set RENCHI_ELEVENLABS_API_KEY."
            )
        body = {
            "agent_id": agent_id,
            "from_number": from_number,
            "to_number": to_number,
            "direction": direction,
            "conversation_initiation_client_data": {
                "dynamic_variables": dynamic_variables
            },
        }
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange,
            # so a slowly dripping response cannot hold the caller past Twilio's limit.
            async with asyncio.timeout(timeout):
                response, text = await self._post_register_call(body, timeout)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise ElevenLabsTimeout(
                f"ElevenLabs did not register the call within {timeout} s."
            ) from error
        except httpx.TransportError as error:
            raise ElevenLabsUnavailable(
                f"Failed to reach ElevenLabs: {error}."
            ) from error

        status = response.status_code
        if status == 429 or status >= 500:
            raise ElevenLabsUnavailable(
                f"ElevenLabs returned HTTP {status}.",
                retry_after=parse_retry_after(response),
            )
        if status >= 300:
            raise ElevenLabsRejected(
                f"ElevenLabs returned HTTP {status}.", status_code=status
            )
        return _extract_twiml(text, status_code=status)

    async def _post_register_call(
        self, body: dict[str, Any], timeout: float
    ) -> tuple[httpx.Response, str]:
        """Send the registration and read at most MAX_TWIML_BYTES of the response."""
        async with self._http.stream(
            "POST",
            f"{self.api_url}/v1/convai/twilio/register-call",
            json=body,
            headers={"xi-api-key": self._api_key or ""},
            timeout=timeout,
        ) as response:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > MAX_TWIML_BYTES:
                    raise ElevenLabsRejected(
                        f"ElevenLabs returned a register-call response of more than "
                        f"{MAX_TWIML_BYTES} bytes.",
                        status_code=response.status_code,
                    )
            return response, received.decode(response.encoding or "utf-8", "replace")


def _extract_twiml(text: str, *, status_code: int) -> str:
    """Return the TwiML of a register-call response, sent as XML or as a JSON string."""
    text = text.strip()
    if text.startswith('"'):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, str):
            text = decoded.strip()
    if "<Response" not in text:
        raise ElevenLabsRejected(
            "ElevenLabs returned a register-call response without TwiML.",
            status_code=status_code,
        )
    return text
