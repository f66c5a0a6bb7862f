"""A real local HTTP server standing in for the hotline system's callback endpoint — and misbehaving on purpose."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from service.signing import verify


@dataclass
class Receiver:
    secret: str
    # scripted misbehaviour for the next calls: "500", "drop", "slow", "ok"
    script: list[str] = field(default_factory=list)
    default: str = "ok"
    slow_seconds: float = 2.0
    # every answer waits this long, so that concurrent senders overlap
    delay: float = 0.0
    calls: int = 0
    acted: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[dict[str, Any]] = field(default_factory=list)
    keys_seen: list[str] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: Any, body: bytes) -> str:
        with self.lock:
            self.calls += 1
            mode = self.script.pop(0) if self.script else self.default
        if mode != "ok":
            return mode
        try:
            verify(
                secret=self.secret,
                timestamp=headers.get("X-Hotline-Timestamp"),
                signature=headers.get("X-Hotline-Signature"),
                body=body,
                tolerance=300,
            )
        except ValueError:
            with self.lock:
                self.bad_signatures += 1
            return "401"
        key = headers.get("Idempotency-Key")
        with self.lock:
            self.keys_seen.append(key)
            if key not in self.acted:  # act on each idempotency key once, like a well-behaved receiver
                payload = json.loads(body)
                self.acted[key] = payload
                self.order.append(payload)
        return "ok"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(receiver.delay)
            outcome = receiver.handle(self.headers, body)
            if outcome == "drop":
                self.connection.close()
                return
            if outcome == "slow":
                time.sleep(receiver.slow_seconds)
            code = {"ok": 200, "500": 500, "401": 401, "slow": 200}[outcome]
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def robot(received: list[dict[str, Any]]) -> ThreadingHTTPServer:
    """A group-robot webhook (企业微信 / 钉钉) on loopback that records every JSON body; call shutdown() when done."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
