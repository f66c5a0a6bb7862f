"""HMAC signatures shared by the intake webhook and the callbacks we send (docs/WEBHOOK.md)."""

from __future__ import annotations

import hashlib
import hmac
import time


class SignatureError(ValueError):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Raise SignatureError (with the reason in Chinese) unless the signature is valid and fresh."""
    if not timestamp or not signature:
        raise SignatureError("缺少 X-Hotline-Timestamp 或 X-Hotline-Signature 头")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise SignatureError("X-Hotline-Timestamp 必须是 Unix 秒数") from exc
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        # outside the window a captured request cannot be replayed
        raise SignatureError(f"时间戳已过期或超前（允许 ±{tolerance} 秒）")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise SignatureError("签名不正确")
