"""Browser sessions held on the server: start, look up (idle and absolute limits), end one, end all of a user's."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select, update

from service.auth.models import User, WebSession
from service.settings import Settings

# a session seen within this long is not written again on every page: one write a minute at most
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SessionLimits:
    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> SessionLimits:
        return cls(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            absolute=dt.timedelta(hours=settings.session_max_hours),
        )


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    *, session: Session, user: User, now: dt.datetime, limits: SessionLimits, client: str = "", user_agent: str = ""
) -> tuple[WebSession, str]:
    """A new session for `user`; returns it and the cookie value (shown to the browser once, stored hashed)."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    record = WebSession(
        id=_key(token),
        user_id=user.id,
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + limits.absolute,
        client=client[:64],
        user_agent=user_agent[:200],
    )
    session.add(record)
    session.commit()
    return record, token


def active_session(
    *, session: Session, token: str | None, now: dt.datetime, limits: SessionLimits, touch: bool = True
) -> tuple[WebSession, User] | None:
    """The live session behind a cookie value and its user, or None (unknown, ended, idle too long, expired).
    A page's background poll passes touch=False: it is not the user's activity and must not keep the session alive."""
    if not token or len(token) > 200:
        return None
    record = session.get(WebSession, _key(token))
    if record is None or record.ended_at is not None:
        return None
    user = session.get(User, record.user_id)
    if user is None or user.revoked_at is not None:
        return None
    if now >= record.expires_at:
        _end(session, record, now, "expired")
        return None
    if now - record.last_seen_at >= limits.idle:
        _end(session, record, now, "idle")
        return None
    if touch and now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
        session.add(record)
        session.commit()
    return record, user


def _end(session: Session, record: WebSession, now: dt.datetime, reason: str) -> None:
    record.ended_at = now
    record.ended_reason = reason
    session.add(record)
    session.commit()


def end_session(*, session: Session, token: str | None, now: dt.datetime) -> None:
    """Logout: this cookie stops working everywhere, whoever holds a copy."""
    record = session.get(WebSession, _key(token)) if token else None
    if record is not None and record.ended_at is None:
        _end(session, record, now, "logout")


def end_all_sessions(*, session: Session, user_id: int, now: dt.datetime, reason: str, commit: bool = True) -> int:
    """Every open session of a user ends (revoke, new token, "end all"); returns how many."""
    result = session.exec(
        update(WebSession)
        .where(col(WebSession.user_id) == user_id, col(WebSession.ended_at).is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
    if commit:
        session.commit()
    return int(result.rowcount or 0)


def list_active_sessions(
    *, session: Session, user_id: int, now: dt.datetime, limits: SessionLimits
) -> list[WebSession]:
    """A user's sessions that would still be let in now, newest first."""
    rows = session.exec(
        select(WebSession)
        .where(WebSession.user_id == user_id, col(WebSession.ended_at).is_(None), WebSession.expires_at > now)
        .order_by(col(WebSession.created_at).desc())
    )
    return [r for r in rows if now - r.last_seen_at < limits.idle]


# A session that timed out keeps what its user was doing, so that logging in again continues it.
RESUMABLE = ("idle", "expired")
RESUME_WITHIN = dt.timedelta(hours=1)


def ended_session(*, session: Session, token: str | None) -> WebSession | None:
    """The ended session behind a stale cookie (None for unknown cookies and live sessions)."""
    if not token or len(token) > 200:
        return None
    record = session.get(WebSession, _key(token))
    return record if record is not None and record.ended_at is not None else None


def keep_pending(*, session: Session, record: WebSession, pending: dict[str, Any]) -> bool:
    """Park an interrupted page or form on a session that timed out; a logout or a revoke keeps nothing."""
    if record.ended_reason not in RESUMABLE:
        return False
    record.pending = pending
    session.add(record)
    session.commit()
    return True


def take_pending(*, session: Session, token: str | None, user: User, now: dt.datetime) -> dict[str, Any] | None:
    """What the same user's timed-out session was doing, once, if it timed out within the hour."""
    record = ended_session(session=session, token=token)
    if record is None or record.pending is None or record.user_id != user.id:
        return None
    pending, record.pending = record.pending, None
    session.add(record)
    session.commit()
    fresh = record.ended_at is not None and now - record.ended_at <= RESUME_WITHIN
    return pending if fresh and record.ended_reason in RESUMABLE else None


def set_pending(*, session: Session, record: WebSession, pending: dict[str, Any] | None) -> None:
    record.pending = pending
    session.add(record)
    session.commit()
