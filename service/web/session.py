"""Browser sessions: a signed, HttpOnly, SameSite=Strict cookie naming the user, with a CSRF token inside."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "hotline_session"
LOGIN_CSRF_COOKIE = "hotline_login_csrf"
MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class WebSession:
    user_id: int
    csrf: str
    expires: int


def _key(secret: str) -> bytes:
    # derived from, never equal to, the webhook secret: one setting, two independent keys
    return hmac.new(secret.encode(), b"hotline-web-session", hashlib.sha256).digest()


def encode(session: WebSession, secret: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps(session.__dict__).encode()).decode()
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def decode(value: str | None, secret: str, now: float | None = None) -> WebSession | None:
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    expected = hmac.new(_key(secret), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        session = WebSession(user_id=int(data["user_id"]), csrf=str(data["csrf"]), expires=int(data["expires"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires < (time.time() if now is None else now):
        return None
    return session


def new_session(user_id: int) -> WebSession:
    return WebSession(user_id=user_id, csrf=secrets.token_urlsafe(24), expires=int(time.time()) + MAX_AGE)
