from __future__ import annotations

import pytest

from renchi.observability import logging as renchi_logging
from renchi.observability.logging import LogThrottle


def test_throttle_allows_then_holds_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(renchi_logging.time, "monotonic", lambda: now[0])
    throttle = LogThrottle(per_window=2, window_seconds=60)

    first = [throttle.allow("twilio") for _ in range(5)]
    other_key = throttle.allow("elevenlabs")
    now[0] += 61
    next_window = throttle.allow("twilio")

    assert first == [(True, 0), (True, 0), (False, 0), (False, 0), (False, 0)]
    assert other_key == (True, 0)
    assert next_window == (True, 3)
