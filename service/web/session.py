"""Browser cookies: the session cookie's name, and flash messages signed by the server.

The session itself lives in the database (service.auth.sessions); the cookie holds only its random key. Banners
come from a short-lived signed flash cookie that the server set on the redirect: text in a URL is never shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

COOKIE = "hotline_session"
LOGIN_CSRF_COOKIE = "hotline_login_csrf"
FLASH_COOKIE = "hotline_flash"
FLASH_MAX_AGE = 120


def _key(secret: str) -> bytes:
    # derived from, never equal to, the webhook secret: one setting, independent keys
    return hmac.new(secret.encode(), b"hotline-web-flash", hashlib.sha256).digest()


def encode_flash(kind: str, text: str, secret: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text[:300]}).encode()).decode()
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def decode_flash(value: str | None, secret: str) -> tuple[str, str] | None:
    """(kind, text) of a flash cookie the server set, or None for anything else."""
    if not value or "." not in value or len(value) > 2000:
        return None
    body, mac = value.rsplit(".", 1)
    expected = hmac.new(_key(secret), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        kind, text = str(data["kind"]), str(data["text"])
    except (ValueError, KeyError, TypeError):
        return None
    return (kind, text) if kind in ("msg", "err") else None
