"""Benchmark the ElevenLabs webhooks against the real service under uvicorn.

Run it alone with `.venv/bin/python bench/elevenlabs.py` (add `--postgres` to
use a PostgreSQL database created and dropped for the run instead of SQLite).
It starts `renchi serve` on 127.0.0.1 in a subprocess and measures:

1. Peak extra memory and time of the server while it accepts one signed
   `post_call_audio` body of 20 MiB, sent with chunked transfer encoding.
   Peak memory is VmHWM from /proc/PID/status, reset by writing 5 to
   /proc/PID/clear_refs just before the request, minus VmRSS at that moment.
   The same request goes to a bare Starlette endpoint that parses the body
   whole (`request.json()` and `base64.b64decode`), for comparison, and both
   are compared with the floor of 1.5 times the body size.
2. Latency of the personalization webhook at a steady rate (50 requests/s
   for 20 s by default), from an open-loop generator that measures each
   request from its scheduled start, so a slow response delays no later
   request. `/healthz` runs through the same loop as the floor that the
   service's own stack costs.

`measure_audio_memory` and `measure_personalization_latency` take the URL and
process id of any running server, so other benchmarks can call them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import postgres_database, run_server

MIB = 1024 * 1024
WEBHOOK_SECRET = "bench-elevenlabs-webhook-secret"
PERSONALIZATION_SECRET = "bench-personalization-secret"
POST_CALL_PATH = "/api/webhooks/elevenlabs"
PERSONALIZE_PATH = "/api/webhooks/elevenlabs/personalize"
NUMBER = "+14155550100"
AGENT_ID = "agent_bench"
CALLERS = [f"+1555000{index:04d}" for index in range(200)]
FLOOR_RATIO = 1.5


@dataclass(frozen=True)
class MemoryResult:
    body_bytes: int
    audio_bytes: int
    baseline_rss_bytes: int
    peak_extra_bytes: int
    seconds: float
    status_code: int

    @property
    def ratio(self) -> float:
        return self.peak_extra_bytes / self.body_bytes


@dataclass(frozen=True)
class LatencyResult:
    sent: int
    errors: int
    seconds: float
    latencies: list[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
        return ordered[index]

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds


def _proc_status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"No {field} in /proc/{pid}/status.")


def _reset_peak_memory(pid: int) -> int:
    """Reset the process's VmHWM to its current RSS and return that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _proc_status_bytes(pid, "VmRSS")


def _signature(body_parts: list[bytes], secret: str) -> str:
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)
    for part in body_parts:
        mac.update(part)
    return f"t={timestamp},v0={mac.hexdigest()}"


def audio_body_parts(body_bytes: int, conversation_id: str) -> tuple[list[bytes], int]:
    """Return a `post_call_audio` body of about `body_bytes` in three parts, and its audio size."""
    prefix = (
        f'{{"type":"post_call_audio","event_timestamp":{int(time.time())},'
        f'"data":{{"agent_id":"{AGENT_ID}","conversation_id":"{conversation_id}",'
        '"full_audio":"'
    ).encode()
    suffix = b'"}}'
    audio_bytes = (body_bytes - len(prefix) - len(suffix)) // 4 * 3
    audio = random.Random(audio_bytes).randbytes(audio_bytes)
    return [prefix, base64.b64encode(audio), suffix], audio_bytes


async def _stream(parts: list[bytes], chunk_bytes: int) -> AsyncIterator[bytes]:
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), chunk_bytes):
            yield bytes(view[start : start + chunk_bytes])


async def measure_audio_memory(
    base_url: str,
    pid: int,
    *,
    secret: str = WEBHOOK_SECRET,
    body_bytes: int = 20 * MIB,
    chunk_bytes: int = 64 * 1024,
    path: str = POST_CALL_PATH,
) -> MemoryResult:
    """Send one signed audio body and return the server's peak extra memory and the time."""
    parts, audio_bytes = audio_body_parts(body_bytes, f"conv_{uuid.uuid4().hex}")
    total = sum(len(part) for part in parts)
    headers = {
        "content-type": "application/json",
        "elevenlabs-signature": _signature(parts, secret),
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        baseline = _reset_peak_memory(pid)
        started = time.perf_counter()
        response = await client.post(
            path, content=_stream(parts, chunk_bytes), headers=headers
        )
        seconds = time.perf_counter() - started
    peak = _proc_status_bytes(pid, "VmHWM")
    if response.status_code != 200:
        raise RuntimeError(
            f"Audio request failed: {response.status_code} {response.text}"
        )
    return MemoryResult(
        body_bytes=total,
        audio_bytes=audio_bytes,
        baseline_rss_bytes=baseline,
        peak_extra_bytes=max(0, peak - baseline),
        seconds=seconds,
        status_code=response.status_code,
    )


def personalization_bodies(count: int) -> list[dict[str, str]]:
    """Return request bodies from known and unknown callers, as ElevenLabs sends them."""
    generator = random.Random(count)
    bodies = []
    for index in range(count):
        caller = generator.choice([*CALLERS, f"+1666{index:07d}"])
        bodies.append(
            {
                "caller_id": caller,
                "agent_id": AGENT_ID,
                "called_number": NUMBER,
                "call_sid": f"CA{uuid.uuid4().hex}",
            }
        )
    return bodies


async def measure_personalization_latency(
    base_url: str,
    *,
    secret: str = PERSONALIZATION_SECRET,
    rate: float = 50.0,
    seconds: float = 20.0,
    path: str = PERSONALIZE_PATH,
) -> LatencyResult:
    """Send requests at a steady `rate` and return each latency from its scheduled start."""
    count = int(rate * seconds)
    bodies = personalization_bodies(count)
    latencies: list[float] = []
    errors = 0
    headers = {"x-webhook-secret": secret}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, limits=limits
    ) as client:
        # Open the connections first, so the measured run does not pay for them.
        await asyncio.gather(*(client.get("/healthz") for _ in range(20)))

        async def send(scheduled: float, body: dict[str, str]) -> None:
            nonlocal errors
            try:
                if path == PERSONALIZE_PATH:
                    response = await client.post(path, json=body, headers=headers)
                else:
                    response = await client.get(path)
            except httpx.HTTPError:
                errors += 1
                return
            if response.status_code != 200:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        loop_start = time.perf_counter() + 0.1
        tasks = []
        for index, body in enumerate(bodies):
            scheduled = loop_start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(scheduled, body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - loop_start
    return LatencyResult(
        sent=count, errors=errors, seconds=elapsed, latencies=latencies
    )


def renchi_env(database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RENCHI_ENV": "development",
        "RENCHI_VAR_DIR": str(var_dir),
        "RENCHI_DATABASE_URL": database_url,
        "RENCHI_ELEVENLABS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RENCHI_PERSONALIZATION_SECRET": PERSONALIZATION_SECRET,
        "RENCHI_EMBEDDED_WORKER": "false",
        "RENCHI_LOG_FORMAT": "json",
    }


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "renchi.cli", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )


async def seed(database_url: str) -> None:
    """Create the team, its native number and a history of earlier calls."""
    from renchi.config import Settings
    from renchi.db.engine import create_database
    from renchi.db.models import Call
    from renchi.teams.provisioning import assign_phone_number, create_team

    database = create_database(Settings(), url=database_url)
    try:
        async with database.transaction() as session:
            team = await create_team(session, name="Bench Dental")
            await assign_phone_number(
                session,
                team=team,
                number=NUMBER,
                elevenlabs_agent_id=AGENT_ID,
                mode="native",
            )
            started = datetime(2026, 1, 1, tzinfo=UTC)
            for index in range(5000):
                session.add(
                    Call(
                        team_id=team.id,
                        from_number=CALLERS[index % len(CALLERS)],
                        to_number=NUMBER,
                        started_at=started + timedelta(minutes=index),
                        summary=f"Earlier call {index}.",
                        status="completed",
                    )
                )
    finally:
        await database.dispose()


@contextlib.contextmanager
def database_url_for(use_postgres: bool, var_dir: Path) -> Iterator[str]:
    """Yield a database URL: a PostgreSQL database made for the run, or an SQLite file."""
    if not use_postgres:
        yield f"sqlite:///{var_dir / 'bench.db'}"
        return
    with postgres_database() as url:
        yield url


def serve_naive(port: int) -> None:
    """Serve the comparison endpoint that parses the whole body, as a plain handler would."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    storage = Path(tempfile.mkdtemp(prefix="renchi-bench-naive-"))

    async def audio(request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("elevenlabs-signature", "")
        timestamp, _, digest = header.removeprefix("t=").partition(",v0=")
        expected = hmac.new(
            WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, digest):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        payload = json.loads(body)
        decoded = base64.b64decode(payload["data"]["full_audio"])
        (storage / f"{uuid.uuid4().hex}.mp3").write_bytes(decoded)
        return JSONResponse({"status": "accepted"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route(POST_CALL_PATH, audio, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def print_memory(label: str, result: MemoryResult) -> None:
    print(
        f"  {label:<30} peak extra {_mib(result.peak_extra_bytes):>9} "
        f"({result.ratio:.2f}x body), {result.seconds:.2f} s, "
        f"RSS before {_mib(result.baseline_rss_bytes)}"
    )


def print_latency(label: str, result: LatencyResult) -> None:
    print(
        f"  {label:<14} n={result.sent} errors={result.errors} "
        f"rate={result.achieved_rate:.1f}/s p50 {_ms(result.percentile(0.5))} "
        f"p90 {_ms(result.percentile(0.9))} p99 {_ms(result.percentile(0.99))} "
        f"max {_ms(max(result.latencies, default=float('nan')))}"
    )


async def run(arguments: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="renchi-bench-"))
    python = sys.executable
    try:
        with database_url_for(arguments.postgres, work) as database_url:
            env = renchi_env(database_url, work / "var")
            migrate(env)
            await seed(database_url)
            backend = "postgresql" if arguments.postgres else "sqlite"
            print(
                f"Renchi ElevenLabs webhooks: {backend}, Python {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, {platform.machine()}"
            )

            server_command = [python, "-m", "renchi.cli", "serve"]
            naive_command = [python, __file__, "--serve-naive"]
            body_bytes = int(arguments.body_mib * MIB)
            print(
                f"post_call_audio of {_mib(body_bytes)} (base64 audio of "
                f"{_mib(body_bytes * 3 // 4)}), chunked in 64 KiB pieces, "
                f"{arguments.repeat} runs, the largest peak shown"
            )
            renchi_runs: list[MemoryResult] = []
            with run_server(server_command, env, work / "renchi.log") as (url, pid):
                await measure_audio_memory(url, pid, body_bytes=256 * 1024)
                for _ in range(arguments.repeat):
                    renchi_runs.append(
                        await measure_audio_memory(url, pid, body_bytes=body_bytes)
                    )

                print(
                    f"personalization at {arguments.rate:.0f} requests/s for "
                    f"{arguments.seconds:.0f} s, open loop, latency from the scheduled start"
                )
                personalize = await measure_personalization_latency(
                    url, rate=arguments.rate, seconds=arguments.seconds
                )
                health = await measure_personalization_latency(
                    url, rate=arguments.rate, seconds=arguments.seconds, path="/healthz"
                )

            naive_runs: list[MemoryResult] = []
            with run_server(naive_command, env, work / "naive.log") as (url, pid):
                await measure_audio_memory(url, pid, body_bytes=256 * 1024)
                for _ in range(arguments.repeat):
                    naive_runs.append(
                        await measure_audio_memory(url, pid, body_bytes=body_bytes)
                    )

        renchi = max(renchi_runs, key=lambda result: result.peak_extra_bytes)
        naive = max(naive_runs, key=lambda result: result.peak_extra_bytes)
        print("audio memory")
        print_memory("renchi (streamed to disk)", renchi)
        print_memory("whole body (json + b64decode)", naive)
        floor = FLOOR_RATIO * renchi.body_bytes
        verdict = "under" if renchi.peak_extra_bytes < floor else "OVER"
        print(
            f"  floor {FLOOR_RATIO}x body = {_mib(floor)}: renchi is {verdict} it; "
            f"whole-body parsing needs {naive.peak_extra_bytes / max(renchi.peak_extra_bytes, 1):.0f}x "
            "the memory of streaming"
        )
        print(
            f"  median time: renchi {statistics.median(r.seconds for r in renchi_runs):.2f} s, "
            f"whole body {statistics.median(r.seconds for r in naive_runs):.2f} s"
        )
        print("latency")
        print_latency("personalize", personalize)
        print_latency("/healthz", health)
        ratio = personalize.percentile(0.99) / health.percentile(0.99)
        print(f"  p99 personalize / p99 /healthz: {ratio:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def default_arguments(*, postgres: bool) -> argparse.Namespace:
    """Return the arguments `run` takes, at their defaults."""
    return _parser().parse_args(["--postgres"] if postgres else [])


def main() -> None:
    arguments = _parser().parse_args()
    if arguments.serve_naive:
        serve_naive(arguments.port)
        return
    asyncio.run(run(arguments))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="Use a PostgreSQL database created for the run (RENCHI_BENCH_ADMIN_URL).",
    )
    parser.add_argument(
        "--body-mib", type=float, default=20.0, help="Audio body size in MiB."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Audio requests per server."
    )
    parser.add_argument("--rate", type=float, default=50.0, help="Requests per second.")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="Length of each latency run."
    )
    parser.add_argument("--serve-naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main()
