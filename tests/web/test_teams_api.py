"""The teams API: a team's document, its settings, and its phone numbers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from renchi.db.engine import Database
from renchi.db.models import PhoneNumber, Team
from renchi.teams.settings import list_setting_changes
from tests.conftest import AppFactory
from tests.support.accounts import bearer, login, make_user
from tests.support.factories import call_by_sid, team_with_number
from tests.support.fakes import AGENT_TWIML, FakeElevenLabs
from tests.support.servers import serve_app
from tests.support.twilio import post_signed, voice_params

NUMBER = "+14155550100"
NEW_NUMBER = "+14155550111"
BETA_NUMBER = "+14155550199"
VOICE_PATH = "/api/webhooks/twilio/voice"
UNAVAILABLE = "this line is not available"
ACME = "/api/teams/acme-dental"
BETA = "/api/teams/beta-clinic"


@pytest.fixture
async def acme(database: Database) -> Team:
    team = await team_with_number(database, number=NUMBER, agent_id="agent_acme")
    await make_user(database, "owner@example.com", team=team, role="owner")
    await make_user(database, "member@example.com", team=team, role="member")
    return team


@pytest.fixture
async def beta(database: Database) -> Team:
    team = await team_with_number(
        database, name="Beta Clinic", number=BETA_NUMBER, agent_id="agent_beta"
    )
    await make_user(database, "beta@example.com", team=team, role="owner")
    return team


@pytest.fixture
async def owner(client: httpx.AsyncClient, acme: Team) -> dict[str, str]:
    return bearer(await login(client, "owner@example.com"))


def encoded(number: str) -> str:
    return number.replace("+", "%2B")


async def team_numbers(database: Database, team: Team) -> list[str]:
    async with database.sessions() as session:
        numbers = await session.scalars(
            select(PhoneNumber.number)
            .where(PhoneNumber.team_id == team.id)
            .order_by(PhoneNumber.number)
        )
        return list(numbers)


async def test_team_document_for_member(client: httpx.AsyncClient, acme: Team) -> None:
    headers = bearer(await login(client, "member@example.com"))

    response = await client.get(ACME, headers=headers)

    assert response.status_code == 200, response.text
    document = response.json()
    assert document["id"] == str(acme.id)
    assert document["slug"] == "acme-dental"
    assert document["name"] == "Acme Dental"
    assert document["settings"] == {
        "timezone": "UTC",
        "recording_retention_days": 90,
        "fallback_number": None,
        "summary_recipients": None,
        "daily_summary_enabled": True,
        "weekly_report_enabled": True,
        "send_empty_summaries": False,
        "teams_channel": None,
        "calendar_id": "primary",
    }
    assert [
        (item["number"], item["agent_id"], item["mode"])
        for item in document["phone_numbers"]
    ] == [(NUMBER, "agent_acme", "register_call")]


async def test_retention_default_from_config(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    async with make_client(recording_retention_days=30) as (client, _):
        headers = bearer(await login(client, "member@example.com"))
        response = await client.get(ACME, headers=headers)

    assert response.json()["settings"]["recording_retention_days"] == 30


async def test_patch_returns_full_settings(
    client: httpx.AsyncClient, database: Database, acme: Team, owner: dict[str, str]
) -> None:
    first = await client.patch(
        f"{ACME}/settings",
        json={"timezone": "Europe/Berlin", "summary_recipients": ["Ops@Example.com"]},
        headers=owner,
    )
    second = await client.patch(
        f"{ACME}/settings", json={"send_empty_summaries": True}, headers=owner
    )
    shown = await client.get(ACME, headers=owner)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    settings = second.json()
    assert settings["timezone"] == "Europe/Berlin"
    assert settings["summary_recipients"] == ["ops@example.com"]
    assert settings["send_empty_summaries"] is True
    assert settings["calendar_id"] == "primary"
    assert shown.json()["settings"] == settings
    async with database.sessions() as session:
        changes = await list_setting_changes(session, acme.id)
    assert {change["field"] for change in changes} == {
        "timezone",
        "summary_recipients",
        "send_empty_summaries",
    }
    assert {change["user_email"] for change in changes} == {"owner@example.com"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Nowhere/Else"}, "timezone"),
        ({"recording_retention_days": 0}, "recording_retention_days"),
        ({"recording_retention_days": "30"}, "recording_retention_days"),
        ({"fallback_number": "555-0100"}, "fallback_number"),
        ({"fallback_number": NUMBER}, "fallback_number"),
        ({"summary_recipients": ["nobody"]}, "summary_recipients"),
        ({"daily_summary_enabled": "yes"}, "daily_summary_enabled"),
        ({"teams_channel": {"team_id": "t"}}, "teams_channel"),
        ({"calendar_id": ""}, "calendar_id"),
        ({"retention_days": 30}, "retention_days"),
        ({"timezone": "UTC", "colour": "blue"}, "colour"),
    ],
)
async def test_patch_invalid_names_field(
    client: httpx.AsyncClient,
    owner: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.patch(f"{ACME}/settings", json=body, headers=owner)

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert response.json()["field"] == field


@pytest.mark.parametrize("content", [b"{}", b"[]", b'"UTC"', b"null", b"{not json"])
async def test_patch_needs_object(
    client: httpx.AsyncClient, owner: dict[str, str], content: bytes
) -> None:
    response = await client.patch(
        f"{ACME}/settings",
        content=content,
        headers={**owner, "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"


async def test_list_numbers(
    client: httpx.AsyncClient, acme: Team, owner: dict[str, str]
) -> None:
    await client.post(
        f"{ACME}/phone-numbers",
        json={"number": NEW_NUMBER, "agent_id": "agent_acme", "mode": "native"},
        headers=owner,
    )

    response = await client.get(f"{ACME}/phone-numbers", headers=owner)

    assert response.status_code == 200
    numbers = response.json()["phone_numbers"]
    assert [item["number"] for item in numbers] == [NUMBER, NEW_NUMBER]
    assert [item["mode"] for item in numbers] == ["register_call", "native"]


async def test_add_then_update_number(
    client: httpx.AsyncClient, database: Database, acme: Team, owner: dict[str, str]
) -> None:
    created = await client.post(
        f"{ACME}/phone-numbers",
        json={"number": NEW_NUMBER, "agent_id": "agent_new"},
        headers=owner,
    )
    updated = await client.post(
        f"{ACME}/phone-numbers",
        json={"number": NEW_NUMBER, "agent_id": "agent_acme", "mode": "native"},
        headers=owner,
    )

    assert created.status_code == 201, created.text
    assert created.json()["number"] == NEW_NUMBER
    assert created.json()["agent_id"] == "agent_new"
    assert created.json()["mode"] == "register_call"
    assert created.json()["updated_at"] is None
    assert updated.status_code == 200, updated.text
    assert updated.json()["agent_id"] == "agent_acme"
    assert updated.json()["mode"] == "native"
    assert updated.json()["updated_at"] is not None
    assert await team_numbers(database, acme) == [NUMBER, NEW_NUMBER]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent_id": "agent_acme"}, "number"),
        ({"number": NEW_NUMBER}, "agent_id"),
        ({"number": "14155550111", "agent_id": "agent_acme"}, "number"),
        ({"number": NEW_NUMBER, "agent_id": "agent acme"}, "agent_id"),
        ({"number": NEW_NUMBER, "agent_id": "agent_acme", "mode": "sip"}, "mode"),
        ({"number": NEW_NUMBER, "agent_id": "agent_acme", "mode": 1}, "mode"),
        ({"number": NEW_NUMBER, "agent_id": "agent_acme", "team": "x"}, "team"),
    ],
)
async def test_add_number_invalid(
    client: httpx.AsyncClient,
    owner: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(f"{ACME}/phone-numbers", json=body, headers=owner)

    assert response.status_code == 400
    assert response.json()["field"] == field


async def test_number_of_other_team_conflicts(
    client: httpx.AsyncClient, database: Database, beta: Team, owner: dict[str, str]
) -> None:
    number_taken = await client.post(
        f"{ACME}/phone-numbers",
        json={"number": BETA_NUMBER, "agent_id": "agent_acme"},
        headers=owner,
    )
    agent_taken = await client.post(
        f"{ACME}/phone-numbers",
        json={"number": NEW_NUMBER, "agent_id": "agent_beta"},
        headers=owner,
    )

    assert number_taken.status_code == 409
    assert number_taken.json()["code"] == "CONFLICT"
    assert agent_taken.status_code == 409
    assert await team_numbers(database, beta) == [BETA_NUMBER]


async def test_release_number(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    async with make_client() as (client, runtime):
        owner = bearer(await login(client, "owner@example.com"))
        assert runtime.routes.get(NUMBER) is not None
        released = await client.delete(
            f"{ACME}/phone-numbers/{encoded(NUMBER)}", headers=owner
        )
        again = await client.delete(
            f"{ACME}/phone-numbers/{encoded(NUMBER)}", headers=owner
        )
        cached = runtime.routes.get(NUMBER)

    assert released.status_code == 204
    assert released.content == b""
    assert again.status_code == 404
    assert again.json()["code"] == "NOT_FOUND"
    assert cached is None
    assert await team_numbers(database, acme) == []


async def test_release_accepts_plain_plus(
    client: httpx.AsyncClient, database: Database, acme: Team, owner: dict[str, str]
) -> None:
    response = await client.delete(f"{ACME}/phone-numbers/{NUMBER}", headers=owner)

    assert response.status_code == 204
    assert await team_numbers(database, acme) == []


async def test_release_invalid_number(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    response = await client.delete(f"{ACME}/phone-numbers/555-0100", headers=owner)

    assert response.status_code == 400
    assert response.json()["field"] == "number"


async def test_cannot_release_other_teams_number(
    client: httpx.AsyncClient, database: Database, beta: Team, owner: dict[str, str]
) -> None:
    response = await client.delete(
        f"{ACME}/phone-numbers/{encoded(BETA_NUMBER)}", headers=owner
    )

    assert response.status_code == 404
    assert await team_numbers(database, beta) == [BETA_NUMBER]


async def test_number_moves_to_another_team(
    make_client: AppFactory, database: Database, acme: Team, beta: Team
) -> None:
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            _,
        ),
    ):
        acme_owner = bearer(await login(client, "owner@example.com"))
        beta_owner = bearer(await login(client, "beta@example.com"))
        while_held = await client.post(
            f"{BETA}/phone-numbers",
            json={"number": NUMBER, "agent_id": "agent_beta"},
            headers=beta_owner,
        )
        released = await client.delete(
            f"{ACME}/phone-numbers/{encoded(NUMBER)}", headers=acme_owner
        )
        added = await client.post(
            f"{BETA}/phone-numbers",
            json={"number": NUMBER, "agent_id": "agent_beta"},
            headers=beta_owner,
        )
        call = await post_signed(client, VOICE_PATH, voice_params("CA1", to=NUMBER))

    assert while_held.status_code == 409
    assert released.status_code == 204
    assert added.status_code == 201, added.text
    assert await team_numbers(database, acme) == []
    assert await team_numbers(database, beta) == [NUMBER, BETA_NUMBER]
    assert call.text == AGENT_TWIML
    assert fake.requests[0]["body"]["agent_id"] == "agent_beta"
    variables = fake.requests[0]["body"]["conversation_initiation_client_data"]
    assert variables["dynamic_variables"]["team_name"] == "Beta Clinic"
    stored = await call_by_sid(database, "CA1")
    assert stored is not None
    assert stored.team_id == beta.id


async def test_added_number_answers_at_once(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            client,
            runtime,
        ),
    ):
        owner = bearer(await login(client, "owner@example.com"))
        before = await post_signed(
            client, VOICE_PATH, voice_params("CA1", to=NEW_NUMBER)
        )
        added = await client.post(
            f"{ACME}/phone-numbers",
            json={"number": NEW_NUMBER, "agent_id": "agent_sales"},
            headers=owner,
        )
        cached = runtime.routes.get(NEW_NUMBER)
        after = await post_signed(
            client, VOICE_PATH, voice_params("CA2", to=NEW_NUMBER)
        )

    assert UNAVAILABLE in before.text
    assert added.status_code == 201
    assert cached is not None
    assert cached.elevenlabs_agent_id == "agent_sales"
    assert after.text == AGENT_TWIML
    assert [request["body"]["agent_id"] for request in fake.requests] == ["agent_sales"]
    call = await call_by_sid(database, "CA2")
    assert call is not None
    assert call.team_id == acme.id


async def test_release_on_other_replica_stops_routing(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    fake = FakeElevenLabs()
    async with (
        serve_app(fake.app()) as url,
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            first_replica,
            first_runtime,
        ),
        make_client(elevenlabs_api_url=url, elevenlabs_api_key="xi-test") as (
            second_replica,
            _,
        ),
    ):
        answered = await post_signed(
            first_replica, VOICE_PATH, voice_params("CA1", to=NUMBER)
        )
        owner = bearer(await login(second_replica, "owner@example.com"))
        released = await second_replica.delete(
            f"{ACME}/phone-numbers/{encoded(NUMBER)}", headers=owner
        )
        stale = first_runtime.routes.get(NUMBER)
        after = await post_signed(
            first_replica, VOICE_PATH, voice_params("CA2", to=NUMBER)
        )
        cached_after = first_runtime.routes.get(NUMBER)

    assert answered.text == AGENT_TWIML
    assert released.status_code == 204
    # The first replica's copy still has the number, but a call reads the database.
    assert stale is not None
    assert UNAVAILABLE in after.text
    assert cached_after is None
    assert len(fake.requests) == 1


async def test_team_endpoints_rate_limited(
    make_client: AppFactory, database: Database, acme: Team
) -> None:
    async with make_client(rate_limit_per_user="2/minute") as (client, _):
        headers = bearer(await login(client, "member@example.com"))
        responses = [await client.get(ACME, headers=headers) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 429]
    assert responses[2].json()["code"] == "RATE_LIMITED"
    assert "retry-after" in responses[2].headers


async def test_cookie_patch_needs_origin(client: httpx.AsyncClient, acme: Team) -> None:
    cookie = {"cookie": f"renchi_session={await login(client, 'owner@example.com')}"}

    blocked = await client.patch(
        f"{ACME}/settings", json={"timezone": "Asia/Tokyo"}, headers=cookie
    )
    allowed = await client.patch(
        f"{ACME}/settings",
        json={"timezone": "Asia/Tokyo"},
        headers={**cookie, "origin": "https://public.example"},
    )

    assert blocked.status_code == 403
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["timezone"] == "Asia/Tokyo"


async def test_fallback_of_a_team_cannot_be_added(
    client: httpx.AsyncClient, acme: Team, beta: Team, owner: dict[str, str]
) -> None:
    beta_owner = bearer(await login(client, "beta@example.com"))
    patched = await client.patch(
        f"{BETA}/settings", json={"fallback_number": NEW_NUMBER}, headers=beta_owner
    )

    added = await client.post(
        f"{ACME}/phone-numbers",
        json={"number": NEW_NUMBER, "agent_id": "agent_acme"},
        headers=owner,
    )

    assert patched.status_code == 200
    assert added.status_code == 409
    assert added.json()["code"] == "CONFLICT"
    assert "fallback" in added.json()["error"]


async def test_concurrent_adds_share_new_agent(
    client: httpx.AsyncClient, database: Database, acme: Team, owner: dict[str, str]
) -> None:
    numbers = [f"+1415555012{index}" for index in range(4)]

    responses = await asyncio.gather(
        *(
            client.post(
                f"{ACME}/phone-numbers",
                json={"number": number, "agent_id": "agent_brand_new"},
                headers=owner,
            )
            for number in numbers
        )
    )

    assert [response.status_code for response in responses] == [201] * 4
    assert set(await team_numbers(database, acme)) == {NUMBER, *numbers}
