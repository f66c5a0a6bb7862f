"""Security headers on every /ui response (pure ASGI: the webhook and API paths pay nothing for it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# inline style attributes carry the bar widths and chart colours; scripts come only from /ui/static
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_COMMON = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# pages show callers' names and phone numbers: no browser or proxy may keep a copy
_NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


class UIHeaders:
    def __init__(self, app: ASGIApp, prefix: str = "/ui") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        extra = _COMMON if path.startswith(self.prefix + "/static/") else _COMMON + _NO_STORE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
