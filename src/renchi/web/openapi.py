"""The OpenAPI 3.1 document of the HTTP API, served at `/api/openapi.json`.

Written by hand, so it states what each endpoint promises (authentication,
error responses, the cursor) rather than what a generator can infer. The test
suite runs schemathesis against it, which fails when the application returns
a status, content type, header or body that this document does not allow.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from renchi.calls import statuses
from renchi.web.openapi_common import ERROR_CODES, SESSION, SESSION_ERRORS
from renchi.web.openapi_common import errors as _errors
from renchi.web.openapi_common import json_response as _json
from renchi.web.openapi_common import nullable as _nullable
from renchi.web.openapi_common import ref as _ref
from renchi.web.openapi_teams import legal_hold_paths, team_paths, team_schemas


def _schemas() -> dict[str, Any]:
    timestamp = _nullable("string", format="date-time")
    summary_properties: dict[str, Any] = {
        "id": {"type": "string", "format": "uuid"},
        "team": _nullable("string", description="Slug of the call's team."),
        "agent_id": _nullable("string", description="The ElevenLabs agent id."),
        "call_sid": _nullable("string", description="Twilio's CallSid."),
        "conversation_id": _nullable(
            "string", description="ElevenLabs' conversation id."
        ),
        "direction": _nullable("string"),
        "from_number": _nullable("string"),
        "to_number": _nullable("string"),
        "mode": _nullable("string", description="register_call or native."),
        "status": _nullable(
            "string", description="Twilio's status of the telephone leg."
        ),
        "outcome": _nullable("string", description="success, failure or unknown."),
        "failure_reason": _nullable("string"),
        "summary": _nullable("string"),
        "started_at": timestamp,
        "answered_at": timestamp,
        "ended_at": timestamp,
        "duration_seconds": _nullable("integer"),
        "cost": _nullable("number"),
    }
    recording_properties: dict[str, Any] = {
        "id": {"type": "string", "format": "uuid"},
        "source": {"type": "string", "description": "twilio or elevenlabs."},
        "external_id": {"type": "string"},
        "status": _nullable("string"),
        "media_status": {
            "type": "string",
            "description": "pending, stored, rejected, failed or deleted.",
        },
        "media_error": _nullable("string"),
        "duration_seconds": _nullable("integer"),
        "channels": _nullable("integer"),
        "content_type": _nullable("string"),
        "size_bytes": _nullable("integer"),
        "started_at": timestamp,
        "stored_at": timestamp,
        "deleted_at": timestamp,
        "url": _nullable(
            "string", description="Path of the audio while it is stored, else null."
        ),
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "What went wrong, in words.",
                },
                "code": {"type": "string", "enum": ERROR_CODES},
                "field": {
                    "type": "string",
                    "description": "The parameter or body field that is invalid.",
                },
            },
        },
        "User": {
            "type": "object",
            "required": ["id", "email", "super_admin", "created_at", "last_login_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "email": {"type": "string"},
                "super_admin": {"type": "boolean"},
                "created_at": {"type": "string", "format": "date-time"},
                "last_login_at": timestamp,
            },
        },
        "LoginRequest": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": {"type": "string"},
                "password": {"type": "string"},
                "include_token": {
                    "type": "boolean",
                    "default": False,
                    "description": "Also return the session token in the body, "
                    "for scripts that send it as a bearer token.",
                },
            },
        },
        "LoginResponse": {
            "type": "object",
            "required": ["user", "expires_at"],
            "properties": {
                "user": _ref("User"),
                "expires_at": {"type": "string", "format": "date-time"},
                "token": {
                    "type": "string",
                    "description": "The session token; only with include_token.",
                },
            },
        },
        "Me": {
            "type": "object",
            "required": ["user", "teams", "session"],
            "properties": {
                "user": _ref("User"),
                "teams": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["slug", "name", "role"],
                        "properties": {
                            "slug": {"type": "string"},
                            "name": {"type": "string"},
                            "role": {
                                "type": "string",
                                "enum": ["member", "admin", "owner"],
                            },
                        },
                    },
                },
                "session": {
                    "type": "object",
                    "required": ["created_at", "expires_at", "idle_timeout_seconds"],
                    "properties": {
                        "created_at": {"type": "string", "format": "date-time"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "idle_timeout_seconds": {"type": "integer"},
                        "authenticated_with": {
                            "type": "string",
                            "enum": ["cookie", "bearer"],
                        },
                    },
                },
            },
        },
        "CallSummary": {
            "type": "object",
            "required": list(summary_properties),
            "properties": summary_properties,
        },
        "Recording": {
            "type": "object",
            "required": list(recording_properties),
            "properties": recording_properties,
        },
        "CallDocument": {
            "allOf": [
                _ref("CallSummary"),
                {
                    "type": "object",
                    "required": [
                        "team_id",
                        "analysis",
                        "dynamic_variables",
                        "details",
                        "recordings",
                        "legal_hold",
                        "events",
                        "created_at",
                        "updated_at",
                    ],
                    "properties": {
                        "team_id": _nullable("string", format="uuid"),
                        "termination_reason": _nullable("string"),
                        "analysis": {"type": "object"},
                        "dynamic_variables": {"type": "object"},
                        "error": _nullable("object"),
                        "details": {"type": "object"},
                        "recordings": {"type": "array", "items": _ref("Recording")},
                        "legal_hold": {
                            "anyOf": [_ref("LegalHold"), {"type": "null"}],
                            "description": "The active legal hold, or null.",
                        },
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": [
                                    "source",
                                    "type",
                                    "outcome",
                                    "received_at",
                                ],
                                "properties": {
                                    "source": {"type": "string"},
                                    "type": {"type": "string"},
                                    "outcome": {"type": "string"},
                                    "received_at": timestamp,
                                },
                            },
                        },
                        "created_at": timestamp,
                        "updated_at": timestamp,
                    },
                },
            ]
        },
        "CallList": {
            "type": "object",
            "required": ["calls", "next_cursor"],
            "properties": {
                "calls": {"type": "array", "items": _ref("CallSummary")},
                "next_cursor": _nullable(
                    "string",
                    description="Pass as `cursor` for the next page; null on the last page.",
                ),
            },
        },
        "NewAccount": {
            "type": "object",
            "required": ["email", "password"],
            "properties": {
                "email": {"type": "string"},
                "password": {
                    "type": "string",
                    "description": "At least 12 characters, and not a common password.",
                },
            },
        },
        "SetupRequest": {
            "oneOf": [
                _ref("NewAccount"),
                {
                    "type": "object",
                    "required": ["accounts"],
                    "properties": {
                        "accounts": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 20,
                            "items": _ref("NewAccount"),
                        }
                    },
                },
            ]
        },
        "WebhookAck": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {
                    "type": "string",
                    "description": "accepted, duplicate, spooled or ignored.",
                }
            },
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "renchi_session",
            "description": "Set by POST /api/auth/login. A request with it that changes "
            "state must carry an Origin (or Referer) of the service or of an origin "
            "in RENCHI_CORS_ORIGINS.",
        },
        "sessionBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The same session token, for scripts (login with include_token).",
        },
        "twilioSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Twilio-Signature",
            "description": "HMAC-SHA1 of the public URL and the sorted form fields, "
            "keyed with the Twilio auth token.",
        },
        "elevenlabsSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "ElevenLabs-Signature",
            "description": "t=TIMESTAMP,v0=HMAC-SHA256 of 't.body' with the webhook secret.",
        },
        "webhookSecret": {
            "type": "apiKey",
            "in": "header",
            "name": "x-webhook-secret",
            "description": "The personalization secret; `Authorization: Bearer` also works.",
        },
        "webhookBearer": {"type": "http", "scheme": "bearer"},
        "setupToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The value of RENCHI_SETUP_TOKEN.",
        },
    }


def _twilio_webhook(summary: str, *, twiml: bool) -> dict[str, Any]:
    success: dict[str, Any]
    if twiml:
        success = {
            "description": "TwiML for Twilio: connect to the agent, the team's fallback "
            "number, or a message that the line is unavailable.",
            "content": {"text/xml": {"schema": {"type": "string"}}},
        }
    else:
        success = _json("Event accepted, a repeat, or spooled.", _ref("WebhookAck"))
    return {
        "post": {
            "tags": ["webhooks"],
            "summary": summary,
            "security": [{"twilioSignature": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "CallSid": {"type": "string"},
                                "AccountSid": {"type": "string"},
                                "From": {"type": "string"},
                                "To": {"type": "string"},
                                "CallStatus": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {"200": success, **_errors(400, 401, 413, 500, 503)},
        }
    }


def _calls_paths() -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "description": description,
            "schema": schema,
        }

    call_id = {
        "name": "call_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    return {
        "/api/calls": {
            "get": {
                "tags": ["calls"],
                "summary": "List a team's calls, newest first",
                "security": SESSION,
                "parameters": [
                    query(
                        "team",
                        "Team slug; may be left out by a user with exactly one team.",
                        {"type": "string"},
                    ),
                    query(
                        "limit",
                        "Calls per page.",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 200,
                            "default": 50,
                        },
                    ),
                    query(
                        "cursor",
                        "next_cursor of the previous page.",
                        {"type": "string"},
                    ),
                    query(
                        "status",
                        "Only calls with this Twilio status.",
                        {"type": "string", "enum": sorted(statuses.KNOWN)},
                    ),
                    query(
                        "outcome",
                        "Only calls with this outcome.",
                        {"type": "string", "enum": ["success", "failure", "unknown"]},
                    ),
                    query(
                        "agent_id",
                        "Only calls of this ElevenLabs agent.",
                        {"type": "string"},
                    ),
                    query(
                        "phone_number",
                        "Only calls from or to this number (E.164).",
                        {"type": "string"},
                    ),
                    query(
                        "from",
                        "Only calls that started at or after this time (ISO 8601 with zone).",
                        {"type": "string", "format": "date-time"},
                    ),
                    query(
                        "to",
                        "Only calls that started before this time (ISO 8601 with zone).",
                        {"type": "string", "format": "date-time"},
                    ),
                ],
                "responses": {
                    "200": _json("A page of calls.", _ref("CallList")),
                    **_errors(400, *SESSION_ERRORS, 404),
                },
            }
        },
        "/api/calls/{call_id}": {
            "get": {
                "tags": ["calls"],
                "summary": "One call, with its analysis, recordings and events",
                "description": "The same document as `renchi calls show`. Members of the "
                "call's team only.",
                "security": SESSION,
                "parameters": [call_id],
                "responses": {
                    "200": _json("The call.", _ref("CallDocument")),
                    **_errors(*SESSION_ERRORS, 404),
                },
            }
        },
        "/api/calls/{call_id}/recordings/{recording_id}": {
            "get": {
                "tags": ["calls"],
                "summary": "A recording's audio",
                "description": "Supports one byte range in `Range` (`bytes=0-99`, "
                "`bytes=100-`, `bytes=-500`); other Range values get the whole file.",
                "security": SESSION,
                "parameters": [
                    call_id,
                    {
                        "name": "recording_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                    {"name": "Range", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The whole recording.",
                        "headers": {"Accept-Ranges": {"schema": {"type": "string"}}},
                        "content": {
                            "audio/*": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "206": {
                        "description": "The requested range.",
                        "headers": {
                            "Content-Range": {
                                "required": True,
                                "schema": {"type": "string"},
                            }
                        },
                        "content": {
                            "audio/*": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    **_errors(*SESSION_ERRORS, 404, 416),
                },
            }
        },
    }


def _auth_paths() -> dict[str, Any]:
    return {
        "/api/auth/login": {
            "post": {
                "tags": ["auth"],
                "summary": "Start a session",
                "description": "Sets the session cookie (HttpOnly, Secure, SameSite=Lax). "
                "Every failure gets the same message, whether the email exists or not.",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("LoginRequest")}},
                },
                "responses": {
                    "200": {
                        **_json("Signed in.", _ref("LoginResponse")),
                        "headers": {"Set-Cookie": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 401, 403, 413, 429, 500, 503),
                },
            }
        },
        "/api/auth/logout": {
            "post": {
                "tags": ["auth"],
                "summary": "End the session",
                "security": SESSION,
                "responses": {
                    "204": {"description": "Signed out; the cookie is cleared."},
                    **_errors(*SESSION_ERRORS),
                },
            }
        },
        "/api/auth/me": {
            "get": {
                "tags": ["auth"],
                "summary": "The signed-in user, their teams and roles",
                "security": SESSION,
                "responses": {
                    "200": _json("The user.", _ref("Me")),
                    **_errors(*SESSION_ERRORS),
                },
            }
        },
    }


def _admin_paths() -> dict[str, Any]:
    return {
        "/api/setup-super-admin": {
            "post": {
                "tags": ["admin"],
                "summary": "Create the first super admin accounts, once",
                "description": "Exists only while RENCHI_SETUP_TOKEN is set. Answers 409 "
                "once any super admin exists.",
                "security": [{"setupToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SetupRequest")}},
                },
                "responses": {
                    "201": _json(
                        "The accounts were created.",
                        {
                            "type": "object",
                            "required": ["users"],
                            "properties": {
                                "users": {"type": "array", "items": _ref("User")}
                            },
                        },
                    ),
                    **_errors(400, 401, 404, 409, 413, 429, 500, 503),
                },
            }
        },
        "/api/debug/db": {
            "get": {
                "tags": ["admin"],
                "summary": "Check the database",
                "description": "Exists only while RENCHI_DEBUG_ENDPOINTS is true; super "
                "admins only. Never shows the connection URL or credentials.",
                "security": SESSION,
                "responses": {
                    "200": _json(
                        "The state of the database.",
                        {
                            "type": "object",
                            "required": ["reachable", "dialect"],
                            "properties": {
                                "reachable": {"type": "boolean"},
                                "dialect": {"type": "string"},
                                "latency_ms": {"type": "number"},
                                "server_version": {"type": "string"},
                                "migration": {
                                    "type": "object",
                                    "properties": {
                                        "revision": _nullable("string"),
                                        "expected_revision": _nullable("string"),
                                        "status": {
                                            "type": "string",
                                            "enum": ["current", "pending", "ahead"],
                                        },
                                    },
                                },
                                "error": {"type": "string"},
                            },
                        },
                    ),
                    **_errors(*SESSION_ERRORS, 404),
                },
            }
        },
    }


def _operations_paths() -> dict[str, Any]:
    plain = {
        "description": "OK",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "/healthz": {
            "get": {
                "tags": ["operations"],
                "summary": "Liveness",
                "security": [],
                "responses": {"200": plain},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["operations"],
                "summary": "Readiness: the database or the spool can keep webhooks",
                "security": [],
                "responses": {
                    "200": _json("Ready.", _ref("Readiness")),
                    "503": _json("Not ready.", _ref("Readiness")),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Metrics in the Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "tags": ["operations"],
                "summary": "This document",
                "security": [],
                "responses": {"200": plain},
            }
        },
    }


def _webhook_paths() -> dict[str, Any]:
    return {
        "/api/webhooks/twilio/voice": _twilio_webhook("Incoming call", twiml=True),
        "/api/webhooks/twilio/status": _twilio_webhook(
            "Call status update", twiml=False
        ),
        "/api/webhooks/twilio/recording": _twilio_webhook(
            "Recording completed", twiml=False
        ),
        "/api/webhooks/elevenlabs": {
            "post": {
                "tags": ["webhooks"],
                "summary": "ElevenLabs post-call events",
                "description": "post_call_transcription, post_call_audio (base64 audio, "
                "up to RENCHI_MAX_AUDIO_BODY_BYTES) and call_initiation_failure.",
                "security": [{"elevenlabsSignature": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "data"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "event_timestamp": {"type": "integer"},
                                    "data": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        "Event accepted, a repeat, or spooled.", _ref("WebhookAck")
                    ),
                    **_errors(400, 401, 413, 500, 503),
                },
            }
        },
        "/api/webhooks/elevenlabs/personalize": {
            "post": {
                "tags": ["webhooks"],
                "summary": "Dynamic variables for a call that is starting",
                "security": [{"webhookSecret": []}, {"webhookBearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "caller_id": {"type": "string"},
                                    "agent_id": {"type": "string"},
                                    "called_number": {"type": "string"},
                                    "call_sid": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        "The conversation initiation data.",
                        {
                            "type": "object",
                            "required": ["type", "dynamic_variables"],
                            "properties": {
                                "type": {
                                    "type": "string",
                                    "const": "conversation_initiation_client_data",
                                },
                                "dynamic_variables": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "conversation_config_override": {"type": "object"},
                            },
                        },
                    ),
                    **_errors(400, 401, 413, 500, 503),
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of every endpoint."""
    schemas = {**_schemas(), **team_schemas()}
    schemas["Readiness"] = {
        "type": "object",
        "required": ["ready", "database", "spool"],
        "properties": {
            "ready": {"type": "boolean"},
            "database": {"type": "object"},
            "spool": {"type": "object"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Renchi",
            "version": "0.1.0",
            "description": "Backend of an AI phone-agent platform. Every error is "
            '`{"error": "<words>", "code": "<CODE>"}`. Endpoints without a team in '
            "their path take `?team=SLUG`.",
        },
        "paths": {
            **_operations_paths(),
            **_webhook_paths(),
            **_auth_paths(),
            **_calls_paths(),
            **legal_hold_paths(),
            **team_paths(),
            **_admin_paths(),
        },
        "components": {"schemas": schemas, "securitySchemes": _security_schemes()},
    }


async def serve_openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes = [Route("/api/openapi.json", serve_openapi, methods=["GET"])]
