from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from renchi.calls.variables import VARIABLE_NAMES
from renchi.db.engine import Database
from renchi.db.models import Call, Team
from tests.conftest import metric
from tests.support.elevenlabs import PERSONALIZATION_SECRET, PERSONALIZE_PATH
from tests.support.factories import team_with_number
from tests.support.servers import TcpProxy

NUMBER = "+14155550100"
CALLER = "+15550001111"


def request_body(**overrides: Any) -> dict[str, Any]:
    return {
        "caller_id": CALLER,
        "agent_id": "agent_acme",
        "called_number": NUMBER,
        "call_sid": "CA" + "9" * 32,
        **overrides,
    }


async def personalize(
    client: httpx.AsyncClient,
    body: dict[str, Any] | bytes,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"x-webhook-secret": PERSONALIZATION_SECRET} if headers is None else headers
    if isinstance(body, bytes):
        return await client.post(PERSONALIZE_PATH, content=body, headers=sent)
    return await client.post(PERSONALIZE_PATH, json=body, headers=sent)


async def add_past_call(
    database: Database,
    team: Team,
    *,
    started: datetime,
    summary: str,
    caller: str = CALLER,
    call_sid: str | None = None,
) -> None:
    async with database.transaction() as session:
        session.add(
            Call(
                team_id=team.id,
                from_number=caller,
                to_number=NUMBER,
                started_at=started,
                summary=summary,
                call_sid=call_sid,
            )
        )


async def count_calls(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Call)) or 0)


async def test_variables_of_known_caller(
    client: httpx.AsyncClient, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER, mode="native")
    await add_past_call(
        database,
        team,
        started=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        summary="Asked about prices.",
    )
    await add_past_call(
        database,
        team,
        started=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        summary="Booked a cleaning.",
    )
    await add_past_call(
        database,
        team,
        started=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
        summary="Another caller.",
        caller="+15550002222",
    )
    before = metric("renchi_personalization_requests_total", result="number")
    calls_before = await count_calls(database)

    response = await personalize(client, request_body())

    assert response.status_code == 200
    assert response.json() == {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {
            "team_name": "Acme Dental",
            "caller_number": CALLER,
            "called_number": NUMBER,
            "caller_known": "true",
            "caller_call_count": "2",
            "last_call_at": "2026-11-20T15:00:00+00:00",
            "last_call_summary": "Booked a cleaning.",
        },
    }
    assert metric("renchi_personalization_requests_total", result="number") == (
        before + 1
    )
    assert await count_calls(database) == calls_before


async def test_current_call_is_not_history(
    client: httpx.AsyncClient, database: Database
) -> None:
    team = await team_with_number(database, number=NUMBER, mode="native")
    current_sid = "CA" + "9" * 32
    await add_past_call(
        database,
        team,
        started=datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
        summary="This very call.",
        call_sid=current_sid,
    )

    response = await personalize(client, request_body(call_sid=current_sid))

    variables = response.json()["dynamic_variables"]
    assert variables["caller_known"] == "false"
    assert variables["caller_call_count"] == "0"


async def test_team_found_by_agent_when_number_unknown(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    before = metric("renchi_personalization_requests_total", result="agent")

    response = await personalize(
        client, request_body(called_number="+14155559999", agent_id="agent_acme")
    )

    variables = response.json()["dynamic_variables"]
    assert variables["team_name"] == "Acme Dental"
    assert variables["called_number"] == "+14155559999"
    assert metric("renchi_personalization_requests_total", result="agent") == (
        before + 1
    )


async def test_unknown_number_and_agent_get_empty_variables(
    client: httpx.AsyncClient,
) -> None:
    response = await personalize(
        client, request_body(called_number="+14155559999", agent_id="agent_nobody")
    )

    assert response.status_code == 200
    variables = response.json()["dynamic_variables"]
    assert set(variables) == set(VARIABLE_NAMES)
    assert variables == {
        "team_name": "",
        "caller_number": CALLER,
        "called_number": "+14155559999",
        "caller_known": "false",
        "caller_call_count": "0",
        "last_call_at": "",
        "last_call_summary": "",
    }


async def test_numbers_sent_as_numbers_are_read(
    client: httpx.AsyncClient, database: Database
) -> None:
    await team_with_number(database, number="+14155550100")

    response = await personalize(
        client,
        {"caller_id": 15550001111, "called_number": 14155550100, "agent_id": 7},
    )

    variables = response.json()["dynamic_variables"]
    assert variables["caller_number"] == "15550001111"
    assert variables["called_number"] == "14155550100"
    # The number table stores E.164, so only the agent could have matched.
    assert variables["team_name"] == ""


async def test_missing_fields_give_empty_variables(client: httpx.AsyncClient) -> None:
    response = await personalize(client, {})

    assert response.status_code == 200
    assert set(response.json()["dynamic_variables"]) == set(VARIABLE_NAMES)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-webhook-secret": PERSONALIZATION_SECRET},
        {"authorization": f"Bearer {PERSONALIZATION_SECRET}"},
        {"authorization": f"bearer {PERSONALIZATION_SECRET}"},
        {
            "x-webhook-secret": "wrong",
            "authorization": f"Bearer {PERSONALIZATION_SECRET}",
        },
    ],
)
async def test_secret_accepted(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await personalize(client, request_body(), headers=headers)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-webhook-secret": ""},
        {"x-webhook-secret": "wrong"},
        {"x-webhook-secret": PERSONALIZATION_SECRET + "x"},
        {"authorization": f"Basic {PERSONALIZATION_SECRET}"},
        {"authorization": "Bearer "},
        {"authorization": PERSONALIZATION_SECRET},
    ],
)
async def test_wrong_secret_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    before = metric("renchi_personalization_requests_total", result="rejected")

    response = await personalize(client, request_body(), headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
    assert metric("renchi_personalization_requests_total", result="rejected") == (
        before + 1
    )


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await personalize(client, b"{not json")

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_latency_is_recorded(client: httpx.AsyncClient) -> None:
    before = metric("renchi_personalization_duration_seconds_count")

    await personalize(client, request_body())

    assert metric("renchi_personalization_duration_seconds_count") == before + 1


async def test_database_down_gives_empty_history(
    make_client: Any,
    database: Database,
    proxy: TcpProxy,
    proxied_database: Database,
) -> None:
    team = await team_with_number(database, number=NUMBER, mode="native")
    await add_past_call(
        database,
        team,
        started=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        summary="Booked a cleaning.",
    )
    before = metric(
        "renchi_personalization_requests_total", result="database_unavailable"
    )
    async with make_client(runtime_database=proxied_database) as (client, _):
        proxy.cut()
        response = await personalize(client, request_body())
        proxy.restore()

    assert response.status_code == 200
    assert response.json()["dynamic_variables"] == {
        "team_name": "Acme Dental",
        "caller_number": CALLER,
        "called_number": NUMBER,
        "caller_known": "false",
        "caller_call_count": "0",
        "last_call_at": "",
        "last_call_summary": "",
    }
    after = metric(
        "renchi_personalization_requests_total", result="database_unavailable"
    )
    assert after == before + 1


async def test_lone_surrogates_get_variables(client: httpx.AsyncClient) -> None:
    body = b'{"caller_id": "\\udfff", "agent_id": "agent_\\ud800", "called_number": "\\udfff", "call_sid": "CA\\u0000"}'

    response = await client.post(
        "/api/webhooks/elevenlabs/personalize",
        content=body,
        headers={
            "x-webhook-secret": "test-personalization-secret",
            "content-type": "application/json",
        },
    )

    assert response.status_code == 200
    assert response.json()["type"] == "conversation_initiation_client_data"
