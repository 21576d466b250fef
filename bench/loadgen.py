"""A small HTTP/1.1 load generator over asyncio streams, for loopback benchmarks.

Closed loop (`run_closed`): a fixed number of connections, each sending its
next request as soon as the previous response arrives; it measures throughput.
Open loop (`run_open`): requests start on a fixed schedule whatever the
server does, and each latency counts from the scheduled start, so a stalled
server shows up in the percentiles instead of slowing the generator down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

IDLE_REUSE_SECONDS = 4.0


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def record(self, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """Return the latency at `fraction` (0.5 for the median) in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
        return ordered[index] * 1000


class Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        """Send one request, read its whole response and return the status code."""
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("Server closed the connection.")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def run_closed(
    host: str, port: int, requests: Iterator[bytes], *, connections: int, seconds: float
) -> Result:
    """Send requests as fast as `connections` keep-alive connections allow."""
    result = Result()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        connection = await Connection.open(host, port)
        try:
            while time.perf_counter() < deadline:
                request = next(requests)
                started = time.perf_counter()
                status = await connection.send(request)
                result.record(status, time.perf_counter() - started)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


async def run_open(
    host: str, port: int, requests: Iterator[bytes], *, rate: float, seconds: float
) -> Result:
    """Start `rate` requests a second on schedule; latency counts from each scheduled start."""
    result = Result()
    # Idle connections with the time each was last used, most recent last.
    idle: list[tuple[Connection, float]] = []
    total = int(rate * seconds)
    begin = time.perf_counter()

    async def connection_for_request() -> Connection:
        while idle:
            connection, last_used = idle.pop()
            # uvicorn closes a keep-alive connection after 5 idle seconds.
            if time.perf_counter() - last_used < IDLE_REUSE_SECONDS:
                return connection
            connection.close()
        return await Connection.open(host, port)

    async def one(scheduled: float, request: bytes) -> None:
        connection = await connection_for_request()
        status = await connection.send(request)
        result.record(status, time.perf_counter() - scheduled)
        idle.append((connection, time.perf_counter()))

    tasks = []
    for index in range(total):
        scheduled = begin + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, next(requests))))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - begin
    for connection, _ in idle:
        connection.close()
    return result
