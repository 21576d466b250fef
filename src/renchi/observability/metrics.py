"""Every Prometheus metric of Renchi, declared in one place on one registry.

Label values are bounded: route templates, never raw paths or ids. Tests read
values from `registry` with `get_sample_value`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    15,
)

http_requests = Counter(
    "renchi_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=registry,
)
http_request_duration = Histogram(
    "renchi_http_request_duration_seconds",
    "Time from receiving a request to sending the end of its answer.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=registry,
)

webhook_events = Counter(
    "renchi_webhook_events_total",
    "Webhook events by source, event type and outcome "
    "(accepted, duplicate, spooled, replayed, rejected, invalid, incomplete, "
    "unattributed, ignored).",
    ["source", "type", "outcome"],
    registry=registry,
)
webhook_signature_failures = Counter(
    "renchi_webhook_signature_failures_total",
    "Webhook requests rejected because their signature or secret was missing or wrong.",
    ["source"],
    registry=registry,
)
webhook_duplicates = Counter(
    "renchi_webhook_duplicates_total",
    "Repeated webhook events that changed nothing.",
    ["source", "type"],
    registry=registry,
)

spool_events = Counter(
    "renchi_spool_events_total",
    "Verified webhook events written to the local spool, by reason "
    "(database_unavailable, schema_not_ready, error).",
    ["source", "reason"],
    registry=registry,
)
spool_replayed = Counter(
    "renchi_spool_replayed_total",
    "Spooled events replayed into the database, by result (applied, duplicate, failed).",
    ["source", "result"],
    registry=registry,
)
spool_pending = Gauge(
    "renchi_spool_pending_events",
    "Events in the local spool waiting to be replayed.",
    registry=registry,
)
spool_dead_letters = Gauge(
    "renchi_spool_dead_letter_events",
    "Spooled events set aside after repeated replay failures.",
    registry=registry,
)
database_up = Gauge(
    "renchi_database_up",
    "1 when the last database check succeeded, else 0.",
    registry=registry,
)
spool_writable = Gauge(
    "renchi_spool_writable",
    "1 when the local spool accepted a test write, else 0.",
    registry=registry,
)

register_call_requests = Counter(
    "renchi_elevenlabs_register_call_total",
    "Calls registered with ElevenLabs by result (ok, timeout, error, rejected, skipped).",
    ["result"],
    registry=registry,
)
register_call_duration = Histogram(
    "renchi_elevenlabs_register_call_duration_seconds",
    "Time ElevenLabs took to register a call.",
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
voice_answers = Counter(
    "renchi_voice_answers_total",
    "TwiML answers of the voice webhook by kind (agent, fallback, unavailable).",
    ["answer"],
    registry=registry,
)

tasks_finished = Counter(
    "renchi_tasks_total",
    "Background task attempts by kind and resulting state (succeeded, retry, dead).",
    ["kind", "state"],
    registry=registry,
)
tasks_queued = Gauge(
    "renchi_tasks_by_state",
    "Background tasks by kind and state at the last count.",
    ["kind", "state"],
    registry=registry,
)
tasks_oldest_pending_age = Gauge(
    "renchi_tasks_oldest_pending_age_seconds",
    "Age of the oldest task that is due and not yet claimed.",
    registry=registry,
)
task_duration = Histogram(
    "renchi_task_duration_seconds",
    "Time one attempt of a background task took.",
    ["kind"],
    buckets=LATENCY_BUCKETS,
    registry=registry,
)

recording_media_bytes = Counter(
    "renchi_recording_media_bytes_total",
    "Bytes of recording media written to storage, by source.",
    ["source"],
    registry=registry,
)
recording_urls_rejected = Counter(
    "renchi_recording_urls_rejected_total",
    "Recording callbacks whose media URL pointed outside the Twilio API host.",
    registry=registry,
)

rate_limited = Counter(
    "renchi_rate_limited_total",
    "Requests rejected with 429 because a rate limit was reached, by scope.",
    ["scope"],
    registry=registry,
)
rate_limit_errors = Counter(
    "renchi_rate_limit_errors_total",
    "Rate limit checks skipped because the limit storage failed, by backend.",
    ["backend"],
    registry=registry,
)
login_attempts = Counter(
    "renchi_login_attempts_total",
    "Password logins by result (success, failure).",
    ["result"],
    registry=registry,
)

personalization_requests = Counter(
    "renchi_personalization_requests_total",
    "Personalization webhook requests by result (number, agent, unknown, "
    "database_unavailable, rejected, invalid).",
    ["result"],
    registry=registry,
)
personalization_duration = Histogram(
    "renchi_personalization_duration_seconds",
    "Time the personalization webhook took to compute the variables of a call.",
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
audio_bodies = Counter(
    "renchi_elevenlabs_audio_bodies_total",
    "ElevenLabs webhook bodies that carried audio, by result (stored, duplicate, "
    "discarded, invalid, incomplete).",
    ["result"],
    registry=registry,
)
