"""Twilio call statuses and the rule that a call's status only moves forward."""

from __future__ import annotations

TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Twilio's CallStatus values in the order a call passes through them.
_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    **dict.fromkeys(TERMINAL, 4),
}
KNOWN = frozenset(_RANK)


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL


def advances(current: str | None, new: str) -> bool:
    """Tell whether a call at `current` may move to `new`.

    A late `ringing` never overwrites `in-progress` or `completed`, and the
    first terminal status stays. An unknown status is never applied.
    """
    if new not in _RANK:
        return False
    if current is None or current not in _RANK:
        return True
    if current in TERMINAL:
        return False
    return _RANK[new] > _RANK[current]
