"""A local CRM that receives TagDesk's webhooks on 127.0.0.1 (ephemeral port) and verifies each
one the way docs/wecom.md tells a receiver to: HMAC-SHA256 over ``"<timestamp>." + raw body``,
timestamp within five minutes. Answers can be scripted (status codes, slow answers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """The receiver's check, as documented (kept identical to the docs' snippet)."""
    timestamp = headers.get("X-TagDesk-Timestamp", "")
    signature = headers.get("X-TagDesk-Signature", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "v1=" + expected.hexdigest())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeReceiver:
    secret: str = "s3cret-s3cret-s3cret"
    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, float]] = field(default_factory=list)  # (status, delay seconds)

    def start(self) -> FakeReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, delay = receiver.script.pop(0) if receiver.script else (200, 0.0)
                headers = dict(self.headers.items())
                receiver.requests.append(
                    Received(
                        self.path, headers, body, verify(receiver.secret, headers, body), status
                    )
                )
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, status: int, *, times: int = 1, delay: float = 0.0) -> None:
        self.script.extend([(status, delay)] * times)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
