"""The local spool: verified events kept on disk while the database is away.

Each event is one JSON file, written to a temporary name, fsynced and renamed
into place (and the folder fsynced) before the webhook is acknowledged, so an
acknowledged event survives a crash of the process. File names start with the
time of arrival in nanoseconds, so a sorted listing replays events in order.
An event that keeps failing for a reason other than the database is moved to
`failed/` after `MAX_REPLAY_ATTEMPTS`, where an operator can inspect it and
move it back.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from renchi.observability import metrics

MAX_REPLAY_ATTEMPTS = 5
SUFFIX = ".json"


class SpoolError(Exception):
    """The spool could not keep an event."""


class Spool:
    """A folder of spooled events."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.failed_directory = directory / "failed"

    async def append(self, record: dict[str, Any]) -> Path:
        """Write `record` durably; return its path."""
        return await asyncio.to_thread(self._append, record)

    def _append(self, record: dict[str, Any]) -> Path:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / name
            _write_durably(path, json.dumps({**record, "attempts": 0}).encode())
        except OSError as error:
            metrics.spool_writable.set(0)
            raise SpoolError(
                f"Failed to write to the spool at {str(self.directory)!r}: {error}"
            ) from error
        metrics.spool_writable.set(1)
        metrics.spool_pending.inc()
        return path

    def pending(self) -> list[Path]:
        """Return the spooled events in order of arrival."""
        try:
            return sorted(
                path
                for path in self.directory.iterdir()
                if path.is_file() and path.name.endswith(SUFFIX)
            )
        except OSError:
            return []

    def failed(self) -> list[Path]:
        try:
            return sorted(self.failed_directory.glob(f"*{SUFFIX}"))
        except OSError:
            return []

    def read(self, path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_bytes())
        return data

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def record_failure(self, path: Path, record: dict[str, Any], error: str) -> bool:
        """Count a failed replay of `path`; return True when it was moved to `failed/`."""
        record = {
            **record,
            "attempts": int(record.get("attempts", 0)) + 1,
            "last_error": error[:2000],
        }
        if record["attempts"] < MAX_REPLAY_ATTEMPTS:
            _write_durably(path, json.dumps(record).encode())
            return False
        self.failed_directory.mkdir(parents=True, exist_ok=True)
        _write_durably(self.failed_directory / path.name, json.dumps(record).encode())
        path.unlink(missing_ok=True)
        return True

    def requeue_failed(self) -> int:
        """Move every set-aside event back to the spool with its attempts reset."""
        moved = 0
        for path in self.failed():
            record = self.read(path)
            record["attempts"] = 0
            record.pop("last_error", None)
            _write_durably(self.directory / path.name, json.dumps(record).encode())
            path.unlink()
            moved += 1
        self.refresh_metrics()
        return moved

    def check_writable(self) -> bool:
        """Write and remove a probe file; report and record whether that worked."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{uuid.uuid4().hex}"
            _write_durably(probe, b"ok")
            probe.unlink()
        except OSError:
            metrics.spool_writable.set(0)
            return False
        metrics.spool_writable.set(1)
        return True

    def refresh_metrics(self) -> None:
        metrics.spool_pending.set(len(self.pending()))
        metrics.spool_dead_letters.set(len(self.failed()))

    @contextmanager
    def replay_lock(self) -> Iterator[bool]:
        """Hold the folder's replay lock if no other process has it; yield whether it is held."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(
            self.directory / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


def _write_durably(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
