"""Local file storage for recording media, with atomic writes.

Keys are relative paths such as `recordings/<call id>/<recording id>.mp3`. A
write goes to a temporary file that is fsynced and renamed into place on
commit, so a reader never sees half a file and a crash leaves only a
temporary file behind.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class StorageError(Exception):
    """A storage operation failed."""


class InvalidKey(StorageError):
    """A key that is empty, absolute or climbs out of the storage root."""


class Storage:
    """Files under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        if not _KEY_PATTERN.match(key) or any(
            part in {".", ".."} for part in key.split("/")
        ):
            raise InvalidKey(f"Invalid storage key {key!r}.")
        return self.root / key

    def writer(self, key: str) -> AtomicWriter:
        """Open `key` for writing; the file appears only when the writer commits."""
        return AtomicWriter(self.path_for(key))

    def open(self, key: str) -> BinaryIO:
        return self.path_for(key).open("rb")

    def size(self, key: str) -> int:
        return self.path_for(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> bool:
        """Delete `key`; return False when it did not exist."""
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def check_writable(self) -> None:
        """Write and remove a probe file; raise StorageError when that fails."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as error:
            raise StorageError(
                f"Storage at {str(self.root)!r} is not writable: {error}"
            ) from error


class AtomicWriter:
    """A temporary file renamed over its target on commit and removed otherwise."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        self.size = 0
        self._file: BinaryIO | None = None

    def __enter__(self) -> AtomicWriter:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.temporary.open("wb")
        return self

    def write(self, data: bytes) -> None:
        assert self._file is not None, "Use the writer in a with block."
        self._file.write(data)
        self.size += len(data)

    def commit(self, target: Path | None = None) -> None:
        """Flush the data to disk and move it into place, at `target` when given.

        `target` lets a caller name the file once its content is known. It must
        be on the same file system as the path the writer was opened for.
        """
        assert self._file is not None, "Use the writer in a with block."
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.target = target
        os.replace(self.temporary, self.target)
        _fsync_directory(self.target.parent)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.temporary.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
