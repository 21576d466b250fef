"""Small asyncio helpers shared by the background loops."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking early when `stop` is set; return whether it is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


_abandoned: set[asyncio.Task[Any]] = set()


async def bounded(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Await `coroutine` for at most `timeout` seconds, then raise TimeoutError.

    Unlike `asyncio.timeout`, the caller does not wait for the cancellation to
    finish: psycopg answers a cancelled query by asking the server to cancel it
    and waits seconds for that when the network is gone. The work is cancelled
    in the background instead, so it must be safe to finish or fail later
    (the webhook transactions are, because their event key deduplicates them).
    """
    task = asyncio.ensure_future(coroutine)
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        task.cancel()
        _abandoned.add(task)
        task.add_done_callback(_forget)
        raise
    except asyncio.CancelledError:
        task.cancel()
        raise


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # Mark the exception as retrieved; the caller already gave up.
