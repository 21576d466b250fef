"""Twilio: webhook signatures, TwiML answers and recording media downloads.

Errors raised by `TwilioClient`:

- `TwilioError`: the base of all of them.
- `TwilioNotConfigured`: no account SID or auth token, so nothing was sent.
- `ForeignMediaUrl`: a media URL outside the configured API host; nothing was sent.
- `TwilioUnavailable`: time-out, network failure, 5xx or 429 (`retry_after` in seconds).
- `TwilioNotFound`: 404, which Twilio also answers while a recording is being processed.
- `TwilioRejected`: any other 4xx, such as wrong credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from renchi.adapters.http import origin_of, parse_retry_after

SIGNATURE_HEADER = "x-twilio-signature"
UNAVAILABLE_MESSAGE = (
    "We are sorry, this line is not available right now. Please try again later."
)


class TwilioError(Exception):
    """A request to Twilio failed or was not made."""


class TwilioNotConfigured(TwilioError):
    pass


class ForeignMediaUrl(TwilioError):
    pass


class TwilioUnavailable(TwilioError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TwilioNotFound(TwilioError):
    pass


class TwilioRejected(TwilioError):
    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def signed_url(
    *, public_url: str | None, request_url: str, path: str, query: str
) -> str:
    """Rebuild the URL Twilio signed.

    Behind a TLS-terminating proxy the service sees `http://internal:8000/...`
    while Twilio signed `https://public.example/...`, so the configured public
    base URL replaces the scheme, host and port the service saw.
    """
    if not public_url:
        return request_url
    url = public_url + path
    return f"{url}?{query}" if query else url


class SignatureVerifier:
    """Check `X-Twilio-Signature` with the twilio library's own algorithm."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def verify(
        self, *, url: str, params: Iterable[tuple[str, str]], signature: str | None
    ) -> bool:
        # RequestValidator raises on a missing signature instead of returning False.
        if not signature:
            return False
        return bool(self._validator.validate(url, _MultiDict(params), signature))

    def sign(self, *, url: str, params: Iterable[tuple[str, str]]) -> str:
        """Compute the signature Twilio would send; used by tests and benchmarks."""
        return str(self._validator.compute_signature(url, _MultiDict(params)))


class _MultiDict:
    """Repeated form fields, in the `getall` shape RequestValidator reads."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def getall(self, name: str) -> list[str]:
        return self._values[name]


def unavailable_twiml() -> str:
    response = VoiceResponse()
    response.say(UNAVAILABLE_MESSAGE)
    response.hangup()
    return str(response)


def dial_twiml(number: str) -> str:
    response = VoiceResponse()
    response.dial(number)
    return str(response)


class TwilioClient:
    """Calls the Twilio REST API with the account's credentials."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        api_url: str,
        account_sid: str | None,
        auth_token: str | None,
        timeout: float,
    ) -> None:
        self._http = http
        self.api_url = httpx.URL(api_url)
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self._account_sid and self._auth_token)

    def is_api_url(self, url: str) -> bool:
        """Tell whether `url` is on the Twilio API host, the only place credentials go."""
        try:
            candidate = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return False
        if candidate.scheme not in {"http", "https"} or not candidate.host:
            return False
        if candidate.userinfo:
            return False
        if origin_of(candidate) != origin_of(self.api_url):
            return False
        base_path = self.api_url.path.rstrip("/")
        return candidate.path == base_path or candidate.path.startswith(base_path + "/")

    async def download_recording(
        self, url: str, *, write: Callable[[bytes], None]
    ) -> str | None:
        """Stream the MP3 of the recording at `url` into `write`; return its content type."""
        if not self.is_api_url(url):
            raise ForeignMediaUrl(
                f"Recording URL {_describe(url)!r} is not on the Twilio API host."
            )
        if not self.configured:
            raise TwilioNotConfigured(
                "Twilio account SID and auth token are not configured; set "
                "RENCHI_TWILIO_ACCOUNT_SID and RENCHI_TWILIO_AUTH_TOKEN."
            )
        media_url = url if url.endswith(".mp3") else url + ".mp3"
        auth = (self._account_sid or "", self._auth_token or "")
        try:
            async with self._http.stream(
                "GET",
                media_url,
                auth=auth,
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                _raise_for_status(response)
                async for chunk in response.aiter_bytes(64 * 1024):
                    write(chunk)
                content_type: str | None = response.headers.get("content-type")
                return content_type
        except httpx.TimeoutException as error:
            raise TwilioUnavailable(
                f"Timed out downloading {_describe(url)!r}."
            ) from error
        except httpx.TransportError as error:
            raise TwilioUnavailable(
                f"Failed to download {_describe(url)!r}: {error}."
            ) from error


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise TwilioNotFound("Twilio returned HTTP 404 for the recording media.")
    if status == 429 or status >= 500:
        raise TwilioUnavailable(
            f"Twilio returned HTTP {status}.", retry_after=parse_retry_after(response)
        )
    raise TwilioRejected(f"Twilio returned HTTP {status}.", status_code=status)


def _describe(url: str) -> str:
    """Return `url` without any credentials or query, for messages and logs."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
