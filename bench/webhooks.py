"""Benchmark the signed Twilio status webhook against a bare Starlette endpoint.

Both servers run under uvicorn on 127.0.0.1, one at a time, against a
PostgreSQL database this script creates and drops. Every request is a
distinct, correctly signed status callback for one of a set of existing
calls, so each one does real work: form parse, signature check,
deduplication insert and call update in one transaction.

Figures: throughput and p50/p99 under full load (closed loop), and p50/p99 at
a steady 200 requests/s (open loop, latency from each scheduled start).
Floors: Renchi reaches half the bare endpoint's throughput, and its p99 at
200 requests/s stays under 50 ms.

Usage: .venv/bin/python bench/webhooks.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import elevenlabs
from harness import postgres_database, run_server
from loadgen import Result, run_closed, run_open

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
AUTH_TOKEN = "bench-auth-token"
PUBLIC_URL = "https://bench.example"
PATH = "/api/webhooks/twilio/status"
NUMBER = "+14155550100"
CALLS = 2000
STEADY_RATE = 200.0


def signed_requests(port: int, prefix: str) -> Iterator[bytes]:
    """Yield distinct signed status callbacks: each call's statuses with rising sequence numbers."""
    validator = RequestValidator(AUTH_TOKEN)
    statuses = ["ringing", "in-progress", "completed"]
    for sequence in itertools.count():
        for call in range(CALLS):
            params = {
                "AccountSid": "AC" + "0" * 32,
                "CallSid": f"{prefix}{call}",
                "CallStatus": statuses[sequence % 3],
                "SequenceNumber": str(sequence),
                "From": "+15550001111",
                "To": NUMBER,
                "Direction": "inbound",
                "CallbackSource": "call-progress-events",
            }
            body = urlencode(params).encode()
            signature = validator.compute_signature(PUBLIC_URL + PATH, params)
            yield (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def prepare(url: str, workdir: Path) -> None:
    """Migrate Renchi's schema, add its team and calls, and the bare endpoint's tables."""
    env = renchi_env(url, workdir)
    subprocess.run(
        [VENV_BIN / "renchi", "migrate"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [VENV_BIN / "renchi", "admin", "create-team", "--name", "Bench"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            VENV_BIN / "renchi",
            "admin",
            "add-phone-number",
            "--team",
            "bench",
            "--number",
            NUMBER,
            "--agent-id",
            "agent_bench",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    with psycopg.connect(url, autocommit=True) as connection:
        team_id, agent_id = connection.execute(
            "SELECT team_id, agent_id FROM phone_numbers"
        ).fetchone()  # type: ignore[misc]
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO calls (id, team_id, agent_id, call_sid, from_number, to_number, direction, "
                "status, started_at, analysis, dynamic_variables, details, created_at, updated_at) "
                "VALUES (gen_random_uuid(), %s, %s, %s, '+15550001111', %s, 'inbound', 'queued', now(), "
                "'{}', '{}', '{}', now(), now())",
                [(team_id, agent_id, f"CR{call}", NUMBER) for call in range(CALLS)],
            )
        connection.execute(
            "CREATE TABLE bare_calls (call_sid text PRIMARY KEY, status text)"
        )
        connection.execute("CREATE TABLE bare_events (key text PRIMARY KEY)")
        connection.execute(
            "INSERT INTO bare_calls SELECT 'CB' || n, 'queued' FROM generate_series(0, %s) AS n",
            (CALLS - 1,),
        )
        connection.execute("VACUUM ANALYZE")


def renchi_env(url: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RENCHI_ENV": "production",
        "RENCHI_DATABASE_URL": url,
        "RENCHI_PUBLIC_URL": PUBLIC_URL,
        "RENCHI_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RENCHI_ELEVENLABS_WEBHOOK_SECRET": "bench-elevenlabs-secret",
        "RENCHI_PERSONALIZATION_SECRET": "bench-personalization-secret",
        "RENCHI_VAR_DIR": str(workdir / "var"),
    }


async def measure(
    port: int, prefix: str, *, seconds: float, connections: int
) -> tuple[Result, Result]:
    # Sign every request before the clock starts, so the generator measures the server.
    count = int(5000 * (seconds + 2) + STEADY_RATE * seconds)
    requests = iter(list(itertools.islice(signed_requests(port, prefix), count)))
    await run_closed(
        "127.0.0.1", port, requests, connections=connections, seconds=2
    )  # warm-up
    full = await run_closed(
        "127.0.0.1", port, requests, connections=connections, seconds=seconds
    )
    await asyncio.sleep(1)
    steady = await run_open(
        "127.0.0.1", port, requests, rate=STEADY_RATE, seconds=seconds
    )
    return full, steady


def bench_target(
    name: str,
    *,
    command: list[str],
    env: dict[str, str],
    prefix: str,
    workdir: Path,
    args: argparse.Namespace,
) -> tuple[Result, Result]:
    with run_server(command, env, workdir / f"{name}.log") as (base_url, _):
        port = int(base_url.rsplit(":", 1)[1])
        return asyncio.run(
            measure(port, prefix, seconds=args.seconds, connections=args.connections)
        )


def row(label: str, result: Result) -> str:
    errors = sum(count for status, count in result.statuses.items() if status != 200)
    return (
        f"  {label:<28} {result.throughput:8.0f} req/s   p50 {result.percentile(0.5):6.2f} ms   "
        f"p99 {result.percentile(0.99):6.2f} ms   non-200: {errors}"
    )


def run_twilio(args: argparse.Namespace) -> None:
    """Measure the status webhook and the bare endpoint, and print the comparison."""
    with (
        postgres_database() as url,
        tempfile.TemporaryDirectory(prefix="renchi-bench-") as folder,
    ):
        workdir = Path(folder)
        prepare(url, workdir)
        bare_env = {
            **os.environ,
            "BARE_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://"),
            "BARE_AUTH_TOKEN": AUTH_TOKEN,
            "BARE_PUBLIC_URL": PUBLIC_URL,
        }
        bare_command = [
            str(VENV_BIN / "uvicorn"),
            "--app-dir",
            str(ROOT / "bench"),
            "bare_app:app",
            "--host",
            "127.0.0.1",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        renchi_command = [str(VENV_BIN / "renchi"), "serve", "--host", "127.0.0.1"]
        bare_full, bare_steady = bench_target(
            "bare",
            command=bare_command,
            env=bare_env,
            prefix="CB",
            workdir=workdir,
            args=args,
        )
        renchi_full, renchi_steady = bench_target(
            "renchi",
            command=renchi_command,
            env=renchi_env(url, workdir),
            prefix="CR",
            workdir=workdir,
            args=args,
        )

    ratio = (
        renchi_full.throughput / bare_full.throughput if bare_full.throughput else 0.0
    )
    p99 = renchi_steady.percentile(0.99)
    print(
        f"Signed Twilio status webhook, {args.seconds:.0f} s per phase, "
        f"{os.cpu_count()} CPUs, PostgreSQL on loopback"
    )
    print(f"Full load ({args.connections} connections, closed loop):")
    print(row("bare Starlette endpoint", bare_full))
    print(row("Renchi /api/webhooks/twilio/status", renchi_full))
    print(f"Steady {STEADY_RATE:.0f} requests/s (open loop):")
    print(row("bare Starlette endpoint", bare_steady))
    print(row("Renchi /api/webhooks/twilio/status", renchi_steady))
    print("Floors:")
    verdict = "PASS" if ratio >= 0.5 else "FAIL"
    print(f"  throughput ratio {ratio:.2f} (floor 0.50): {verdict}")
    verdict = "PASS" if p99 < 50 else "FAIL"
    print(f"  p99 at {STEADY_RATE:.0f} req/s {p99:.2f} ms (floor 50 ms): {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="Length of each measured phase, in seconds.",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="Connections of the closed-loop phase.",
    )
    parser.add_argument(
        "--only",
        choices=["twilio", "elevenlabs"],
        default=None,
        help="Run one part only; both run by default.",
    )
    args = parser.parse_args()

    if args.only in (None, "twilio"):
        run_twilio(args)
    if args.only in (None, "elevenlabs"):
        print()
        asyncio.run(elevenlabs.run(elevenlabs.default_arguments(postgres=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
