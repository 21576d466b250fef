"""Legal holds: keeping a call's recordings past their team's retention.

A hold records who set it, when and why, and later who released it and when.
Released holds stay in `legal_holds` as the call's history. A call has at
most one active hold, and while it has one, `calls.retention` selects none of
its recordings.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from renchi.db.models import Call, LegalHold, User
from renchi.db.models.base import clean_text, utcnow
from renchi.errors import Conflict, InvalidInput, NotFound

MAX_REASON_LENGTH = 1000

_SetBy = aliased(User)
_ReleasedBy = aliased(User)


def validate_reason(reason: object) -> str:
    """Return the reason cleaned and without surrounding spaces, or raise InvalidInput."""
    if not isinstance(reason, str):
        raise InvalidInput(
            "Invalid reason: write it as a JSON string, such as a case number.",
            field="reason",
        )
    # NUL characters and lone surrogates cannot be stored or sent back as JSON.
    reason = clean_text(reason).strip()
    if not reason:
        raise InvalidInput(
            "Missing reason: say why the recordings must be kept, such as a case "
            "number.",
            field="reason",
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            f"The reason is {len(reason)} characters long; the maximum is "
            f"{MAX_REASON_LENGTH}.",
            field="reason",
        )
    return reason


def _user(user_id: uuid.UUID | None, email: str | None) -> dict[str, str] | None:
    if user_id is None:
        return None
    return {"id": str(user_id), "email": email or ""}


def _document(
    hold: LegalHold, set_by: str | None, released_by: str | None
) -> dict[str, Any]:
    return {
        "id": str(hold.id),
        "call_id": str(hold.call_id),
        "reason": hold.reason,
        "active": hold.released_at is None,
        "set_by": _user(hold.set_by_user_id, set_by),
        "set_at": hold.set_at.isoformat(),
        "released_by": _user(hold.released_by_user_id, released_by),
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
    }


def _with_users() -> Select[LegalHold, str, str]:
    return (
        select(LegalHold, _SetBy.email, _ReleasedBy.email)
        .outerjoin(_SetBy, _SetBy.id == LegalHold.set_by_user_id)
        .outerjoin(_ReleasedBy, _ReleasedBy.id == LegalHold.released_by_user_id)
    )


async def _hold_document(session: AsyncSession, hold_id: uuid.UUID) -> dict[str, Any]:
    row = (await session.execute(_with_users().where(LegalHold.id == hold_id))).one()
    hold, set_by, released_by = row
    return _document(hold, set_by, released_by)


async def active_legal_hold(
    session: AsyncSession, call_id: uuid.UUID
) -> dict[str, Any] | None:
    """Return the call's active hold, or None."""
    row = (
        await session.execute(
            _with_users().where(
                LegalHold.call_id == call_id, LegalHold.released_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    hold, set_by, released_by = row
    return _document(hold, set_by, released_by)


async def legal_hold_history(
    session: AsyncSession, call_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Return every hold of the call, active or released, oldest first."""
    rows = await session.execute(
        _with_users()
        .where(LegalHold.call_id == call_id)
        .order_by(LegalHold.set_at, LegalHold.id)
    )
    return [_document(hold, set_by, released_by) for hold, set_by, released_by in rows]


async def place_legal_hold(
    session: AsyncSession, *, call_id: uuid.UUID, reason: object, actor: User | None
) -> dict[str, Any]:
    """Put the call's recordings under a legal hold and return the hold.

    Raises NotFound for an unknown call and Conflict when the call is already
    under a hold; release that one first to record a different reason.
    """
    reason = validate_reason(reason)
    # Locking the call makes concurrent requests for the same call queue here.
    found = await session.scalar(
        select(Call.id).where(Call.id == call_id).with_for_update()
    )
    if found is None:
        raise NotFound(f"Call {call_id} not found.")
    current = await active_legal_hold(session, call_id)
    if current is not None:
        raise Conflict(
            f"Call {call_id} is already under a legal hold since "
            f"{current['set_at']}; release it first to set a new reason."
        )
    hold = LegalHold(
        id=uuid.uuid4(),
        call_id=call_id,
        reason=reason,
        set_by_user_id=actor.id if actor is not None else None,
        set_at=utcnow(),
    )
    session.add(hold)
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(f"Call {call_id} was just put under a legal hold.") from error
    return await _hold_document(session, hold.id)


async def release_legal_hold(
    session: AsyncSession, *, call_id: uuid.UUID, actor: User | None
) -> dict[str, Any]:
    """Release the call's active hold and return it; NotFound when there is none."""
    hold = await session.scalar(
        select(LegalHold)
        .where(LegalHold.call_id == call_id, LegalHold.released_at.is_(None))
        .with_for_update()
    )
    if hold is None:
        raise NotFound(f"Call {call_id} has no active legal hold.")
    hold.released_at = utcnow()
    hold.released_by_user_id = actor.id if actor is not None else None
    await session.flush()
    return await _hold_document(session, hold.id)
