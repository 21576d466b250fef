"""The OpenAPI schemas and paths of teams, their settings and numbers, and legal holds."""

from __future__ import annotations

from typing import Any

from renchi.calls.legal_holds import MAX_REASON_LENGTH
from renchi.teams.provisioning import AGENT_ID, E164
from renchi.teams.settings import (
    MAX_CALENDAR_ID_LENGTH,
    MAX_CHANNEL_ID_LENGTH,
    MAX_RETENTION_DAYS,
    MAX_SUMMARY_RECIPIENTS,
    MIN_RETENTION_DAYS,
)
from renchi.web.openapi_common import (
    SESSION,
    SESSION_ERRORS,
    errors,
    json_response,
    nullable,
    ref,
)

E164_PATTERN = E164.pattern


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _settings_properties(*, for_patch: bool) -> dict[str, Any]:
    retention: dict[str, Any] = {
        "type": "integer",
        "minimum": MIN_RETENTION_DAYS,
        "maximum": MAX_RETENTION_DAYS,
        "description": "Days a recording is kept before cleanup deletes it. "
        "Defaults to RENCHI_RECORDING_RETENTION_DAYS; null in a change returns "
        "to that default.",
    }
    recipients = {
        "type": "array",
        "items": {"type": "string", "description": "An email address."},
        "minItems": 1,
        "maxItems": MAX_SUMMARY_RECIPIENTS,
    }
    return {
        "timezone": {
            "type": "string",
            "description": "IANA time zone of summaries, reports and calendar "
            "events, such as Europe/Berlin. Default UTC.",
        },
        "recording_retention_days": _or_null(retention) if for_patch else retention,
        "fallback_number": nullable(
            "string",
            pattern=E164_PATTERN,
            description="E.164 number that callers are sent to when the agent "
            "cannot take the call; it may not be a number that Renchi answers.",
        ),
        "summary_recipients": {
            **_or_null(recipients),
            "description": "Who gets the daily summary and weekly report; null "
            "means the team's owners and admins. Stored in lower case, without "
            "duplicates.",
        },
        "daily_summary_enabled": {"type": "boolean", "description": "Default true."},
        "weekly_report_enabled": {"type": "boolean", "description": "Default true."},
        "send_empty_summaries": {
            "type": "boolean",
            "description": "Send a summary for a day or week without calls. "
            "Default false.",
        },
        "teams_channel": {
            **_or_null(ref("TeamsChannel")),
            "description": "Microsoft Teams channel for post-call messages.",
        },
        "calendar_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_CALENDAR_ID_LENGTH,
            "description": "Google Calendar that receives follow-up events. "
            "Default primary.",
        },
    }


def _hold_user() -> dict[str, Any]:
    return _or_null(
        {
            "type": "object",
            "required": ["id", "email"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "email": {"type": "string"},
            },
        }
    )


def team_schemas() -> dict[str, Any]:
    """Return the component schemas of teams, settings, numbers and legal holds."""
    settings = _settings_properties(for_patch=False)
    channel_id = {"type": "string", "minLength": 1, "maxLength": MAX_CHANNEL_ID_LENGTH}
    number_properties: dict[str, Any] = {
        "number": {"type": "string", "pattern": E164_PATTERN},
        "agent_id": {"type": "string", "description": "The ElevenLabs agent id."},
        "mode": {"type": "string", "enum": ["register_call", "native"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": nullable("string", format="date-time"),
    }
    return {
        "TeamsChannel": {
            "type": "object",
            "required": ["team_id", "channel_id"],
            "additionalProperties": False,
            "properties": {"team_id": channel_id, "channel_id": channel_id},
        },
        "TeamSettings": {
            "type": "object",
            "required": list(settings),
            "properties": settings,
        },
        "TeamSettingsPatch": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": _settings_properties(for_patch=True),
        },
        "PhoneNumber": {
            "type": "object",
            "required": list(number_properties),
            "properties": number_properties,
        },
        "NewPhoneNumber": {
            "type": "object",
            "required": ["number", "agent_id"],
            "additionalProperties": False,
            "properties": {
                "number": {"type": "string", "pattern": E164_PATTERN},
                "agent_id": {
                    "type": "string",
                    "pattern": AGENT_ID.pattern,
                    "description": "The ElevenLabs agent id; it may not belong "
                    "to another team.",
                },
                "mode": {
                    "type": "string",
                    "enum": ["register_call", "native"],
                    "default": "register_call",
                },
            },
        },
        "Team": {
            "type": "object",
            "required": [
                "id",
                "slug",
                "name",
                "created_at",
                "settings",
                "phone_numbers",
            ],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "settings": ref("TeamSettings"),
                "phone_numbers": {"type": "array", "items": ref("PhoneNumber")},
            },
        },
        "LegalHold": {
            "type": "object",
            "required": [
                "id",
                "call_id",
                "reason",
                "active",
                "set_by",
                "set_at",
                "released_by",
                "released_at",
            ],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "call_id": {"type": "string", "format": "uuid"},
                "reason": {"type": "string"},
                "active": {"type": "boolean"},
                "set_by": _hold_user(),
                "set_at": {"type": "string", "format": "date-time"},
                "released_by": _hold_user(),
                "released_at": nullable("string", format="date-time"),
            },
        },
    }


def _slug() -> dict[str, Any]:
    return {
        "name": "slug",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }


def team_paths() -> dict[str, Any]:
    """Return the paths of `/api/teams/{slug}/...`."""
    number = {
        "name": "number",
        "in": "path",
        "required": True,
        "description": "The number in E.164, with its + percent-encoded as %2B.",
        "schema": {"type": "string", "pattern": E164_PATTERN},
    }
    return {
        "/api/teams/{slug}": {
            "get": {
                "tags": ["teams"],
                "summary": "A team, its settings and its phone numbers",
                "description": "Members of the team may read it.",
                "security": SESSION,
                "parameters": [_slug()],
                "responses": {
                    "200": json_response("The team.", ref("Team")),
                    **errors(*SESSION_ERRORS, 404),
                },
            }
        },
        "/api/teams/{slug}/settings": {
            "patch": {
                "tags": ["teams"],
                "summary": "Change settings",
                "description": "Owners and admins. Only the settings in the body "
                "change; each change is recorded with who made it and when.",
                "security": SESSION,
                "parameters": [_slug()],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref("TeamSettingsPatch")}
                    },
                },
                "responses": {
                    "200": json_response(
                        "Every setting after the change.", ref("TeamSettings")
                    ),
                    **errors(400, *SESSION_ERRORS, 404, 413),
                },
            }
        },
        "/api/teams/{slug}/phone-numbers": {
            "get": {
                "tags": ["teams"],
                "summary": "The team's numbers, with their agent and mode",
                "security": SESSION,
                "parameters": [_slug()],
                "responses": {
                    "200": json_response(
                        "The numbers, ordered by number.",
                        {
                            "type": "object",
                            "required": ["phone_numbers"],
                            "properties": {
                                "phone_numbers": {
                                    "type": "array",
                                    "items": ref("PhoneNumber"),
                                }
                            },
                        },
                    ),
                    **errors(*SESSION_ERRORS, 404),
                },
            },
            "post": {
                "tags": ["teams"],
                "summary": "Add a number, or change the agent and mode of one",
                "description": "Owners and admins. The number answers calls at once. "
                "A number of another team is a conflict until that team releases it.",
                "security": SESSION,
                "parameters": [_slug()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewPhoneNumber")}},
                },
                "responses": {
                    "200": json_response(
                        "The team already held the number; its agent and mode "
                        "are updated.",
                        ref("PhoneNumber"),
                    ),
                    "201": json_response("The number was added.", ref("PhoneNumber")),
                    **errors(400, *SESSION_ERRORS, 404, 409, 413),
                },
            },
        },
        "/api/teams/{slug}/phone-numbers/{number}": {
            "delete": {
                "tags": ["teams"],
                "summary": "Release a number",
                "description": "Owners and admins. Calls to the number stop reaching "
                "the team at once, and another team may add it.",
                "security": SESSION,
                "parameters": [_slug(), number],
                "responses": {
                    "204": {"description": "Released."},
                    **errors(400, *SESSION_ERRORS, 404),
                },
            }
        },
    }


def legal_hold_paths() -> dict[str, Any]:
    """Return the path of `/api/calls/{call_id}/legal-hold`."""
    call_id = {
        "name": "call_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    return {
        "/api/calls/{call_id}/legal-hold": {
            "post": {
                "tags": ["calls"],
                "summary": "Keep the call's recordings past their retention",
                "description": "Owners and admins of the call's team. A call has at "
                "most one active hold: release it to set a new reason.",
                "security": SESSION,
                "parameters": [call_id],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["reason"],
                                "additionalProperties": False,
                                "properties": {
                                    "reason": {
                                        "type": "string",
                                        "minLength": 1,
                                        "maxLength": MAX_REASON_LENGTH,
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": json_response("The hold.", ref("LegalHold")),
                    **errors(400, *SESSION_ERRORS, 404, 409, 413),
                },
            },
            "delete": {
                "tags": ["calls"],
                "summary": "Release the call's legal hold",
                "description": "Owners and admins of the call's team. The released "
                "hold stays in the call's history.",
                "security": SESSION,
                "parameters": [call_id],
                "responses": {
                    "200": json_response("The released hold.", ref("LegalHold")),
                    **errors(*SESSION_ERRORS, 404),
                },
            },
        }
    }
