from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from renchi.db.migrate import MigrationState, head_revision
from renchi.web import errors as web_errors
from tests.conftest import AppFactory
from tests.support.twilio import post_signed, status_params


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(response.headers["x-request-id"]) == 32


async def test_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "trace-123"})
    unsafe = await client.get(
        "/healthz", headers={"x-request-id": "bad id\twith spaces"}
    )

    assert response.headers["x-request-id"] == "trace-123"
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found.", "code": "NOT_FOUND"}


async def test_wrong_method_is_json_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/webhooks/twilio/status")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "Method not allowed."


async def test_declared_oversize_body_is_413(make_client: AppFactory) -> None:
    async with make_client(max_body_bytes=2048) as (client, _):
        response = await client.post("/api/webhooks/twilio/status", content=b"x" * 4096)

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_streamed_oversize_body_is_413(make_client: AppFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    async with make_client(max_body_bytes=2048) as (client, _):
        response = await client.post(
            "/api/webhooks/twilio/status",
            content=chunks(),
            headers={"x-twilio-signature": "AAAA"},
        )

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_invalid_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/webhooks/twilio/status", content=b"a=1", headers={"content-length": "abc"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_non_utf8_body_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/webhooks/twilio/status",
        content=b"CallSid=\xff\xfe",
        headers={"x-twilio-signature": "AAAA"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_metrics_use_route_templates(client: httpx.AsyncClient) -> None:
    await post_signed(
        client,
        "/api/webhooks/twilio/status",
        status_params("CA-metrics-1", "ringing", sequence=0, to="+14155550100"),
    )
    await client.get("/api/calls/CA-metrics-1/unknown")

    response = await client.get("/metrics")

    text = response.text
    assert response.status_code == 200
    assert 'route="/api/webhooks/twilio/status"' in text
    assert 'route="unmatched"' in text
    assert "CA-metrics-1" not in text
    assert "renchi_webhook_events_total" in text
    assert "renchi_http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize(
    ("current", "expected"),
    [(None, "pending"), ("0000-unknown-newer", "ahead")],
)
def test_migration_state_status(current: str | None, expected: str) -> None:
    state = MigrationState(current=current, head=head_revision())

    assert state.status == expected
    assert state.usable == (expected != "pending")


def test_migration_state_current() -> None:
    assert (
        MigrationState(current=head_revision(), head=head_revision()).status
        == "current"
    )


async def test_trailing_slash_is_404_not_redirect(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/calls/", headers={"host": "evil.example"})

    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["code"] == "NOT_FOUND"


async def test_unhandled_error_is_logged_once(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ASGITransport raises whatever the application re-raises, so getting a
    # response at all shows the error stops at the middleware.
    logged: list[str] = []

    class Recorder:
        def error(self, event: str, **fields: object) -> None:
            logged.append(event)

        def warning(self, event: str, **fields: object) -> None:
            logged.append(event)

    monkeypatch.setattr(web_errors, "logger", Recorder())
    async with make_client() as (client, runtime):

        async def explode(event):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

        runtime.processor.process = explode  # type: ignore[method-assign]
        response = await post_signed(
            client,
            "/api/webhooks/twilio/status",
            status_params("CA-boom", "ringing", sequence=0, to="+14155550100"),
        )

    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal server error.",
        "code": "INTERNAL_ERROR",
    }
    assert "boom" not in response.text
    assert logged == ["unhandled error"]
