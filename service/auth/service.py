"""Creating, listing, revoking users and resolving bearer tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.areas.models import Area
from service.auth.models import Role, User, WebSession
from service.auth.sessions import SessionLimits, end_all_sessions, list_active_sessions
from service.clock import utcnow
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.rules import ServiceRules

TOKEN_PREFIX = "htl_"


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a plain SHA-256 (no salt, no stretching) cannot be brute-forced.
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    *, session: Session, rules: ServiceRules, name: str, role: str, office: str | None, area: str | None = None
) -> tuple[User, str]:
    """Create a user; returns it with its token (shown once, never stored). A patrol is bound to an area of the
    registry, named by `area`."""
    if role not in Role.__members__:
        raise InvalidInputError("role", f"角色必须是 {'/'.join(Role.__members__)} 之一")
    if role == Role.office and office not in rules.offices:
        raise InvalidInputError("office", f"承办科室用户必须指定已定义的科室: {', '.join(rules.offices)}")
    if role != Role.office and office is not None:
        raise InvalidInputError("office", "只有承办科室（office）角色可以绑定科室")
    if not name.strip():
        raise InvalidInputError("name", "用户名不能为空")
    area_id = _patrol_area(session, role, area)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(
        name=name.strip(),
        role=role,
        office=office,
        area_id=area_id,
        token_hash=hash_token(token),
        token_prefix=token[:10],
        created_at=utcnow(),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"用户名「{name}」已存在") from exc
    session.refresh(user)
    return user, token


def _patrol_area(session: Session, role: str, area: str | None) -> int | None:
    if role != Role.patrol:
        if area is not None:
            raise InvalidInputError("area", "只有网格巡查（patrol）角色可以绑定区域")
        return None
    if not area:
        raise InvalidInputError("area", "网格巡查用户必须用 --area 指定负责的网格、居民区或片区（区域表中的名称）")
    found = session.exec(select(Area).where(Area.name == area.strip(), col(Area.active).is_(True))).all()
    if len(found) != 1:
        reason = "不在区域表中（先运行 hotline areas import）" if not found else "在区域表中不止一级，请用更具体的名称"
        raise InvalidInputError("area", f"区域「{area}」{reason}")
    return found[0].id


def list_users(*, session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(col(User.id))))


def user_by_name(*, session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFoundError(f"用户「{name}」不存在")
    return user


def revoke_user(*, session: Session, name: str) -> User:
    """Revoke a user's token; every browser session of theirs ends with it."""
    user = user_by_name(session=session, name=name)
    if user.revoked_at is None:
        now = utcnow()
        user.revoked_at = now
        session.add(user)
        assert user.id is not None
        end_all_sessions(session=session, user_id=user.id, now=now, reason="revoked", commit=False)
        session.commit()
    return user


def rotate_token(*, session: Session, name: str) -> tuple[User, str]:
    """A new token for a user; the old one stops working and so does every browser session opened with it."""
    user = user_by_name(session=session, name=name)
    if user.revoked_at is not None:
        raise ConflictError(f"用户「{name}」已吊销，不能更换令牌")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.token_hash, user.token_prefix = hash_token(token), token[:10]
    session.add(user)
    assert user.id is not None
    end_all_sessions(session=session, user_id=user.id, now=utcnow(), reason="new_token", commit=False)
    session.commit()
    return user, token


def sessions_of(*, session: Session, name: str, limits: SessionLimits) -> tuple[User, list[WebSession]]:
    """A user and their browser sessions that are still live."""
    user = user_by_name(session=session, name=name)
    assert user.id is not None
    return user, list_active_sessions(session=session, user_id=user.id, now=utcnow(), limits=limits)


def end_sessions_of(*, session: Session, name: str) -> tuple[User, int]:
    """End every browser session of a user (the token stays valid); returns the user and how many ended."""
    user = user_by_name(session=session, name=name)
    assert user.id is not None
    return user, end_all_sessions(session=session, user_id=user.id, now=utcnow(), reason="ended_all")


def user_for_token(*, session: Session, token: str) -> User | None:
    user = session.exec(select(User).where(User.token_hash == hash_token(token))).first()
    if user is None or user.revoked_at is not None:
        return None
    return user
