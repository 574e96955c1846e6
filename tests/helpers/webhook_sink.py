"""A local webhook receiver for delivery tests and the benchmark: counts what arrives, dedupes by key.

It behaves as a well-made receiver should: a POST whose ``Idempotency-Key`` it has already accepted is
answered 200 with the original message id and not stored again, so ``received`` (every POST) and
``unique`` (distinct keys) tell apart "sent twice" from "posted twice". With ``secret`` it checks the
``X-Threatbot-Signature`` and answers 401 to a bad one. ``delay`` slows every answer (to catch a
process mid-send); ``fail_next(n, status)`` makes the next n POSTs fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["Delivery", "WebhookSink", "webhook_sink"]


@dataclass(frozen=True)
class Delivery:
    key: str
    event: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes
    at: float


class WebhookSink:
    """A threaded HTTP server on 127.0.0.1 that accepts POST /hook."""

    def __init__(self, *, secret: str | None = None, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.received: list[Delivery] = []
        self.accepted: dict[str, Delivery] = {}
        self.rejected = 0
        #: POSTs whose handling has begun (received counts those answered).
        self.arrivals = 0
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
                # client's delayed ACK and every answer waits ~40 ms, which would measure the sink, not us.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner._handle(self, raw)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour ----------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, headers or {})] * count)

    def _handle(self, req: BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            _answer(req, failure[0], {"error": "injected"}, failure[1])
            return
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get("x-threatbot-signature", "")):
                with self._lock:
                    self.rejected += 1
                _answer(req, 401, {"error": "bad signature"})
                return
        with self._lock:
            self.arrivals += 1
        if self.delay:
            time.sleep(self.delay)
        try:
            body = json.loads(raw)
        except ValueError:
            _answer(req, 400, {"error": "not JSON"})
            return
        key = headers.get("idempotency-key", "")
        delivery = Delivery(key, headers.get("x-threatbot-event", ""), body, headers, raw, time.time())
        with self._arrived:
            self.received.append(delivery)
            self.accepted.setdefault(key, delivery)
            message_id = f"msg-{list(self.accepted).index(key) + 1}"
            self._arrived.notify_all()
        _answer(req, 200, {"id": message_id})

    # -- assertions ---------------------------------------------------------------------------------

    @property
    def in_flight(self) -> bool:
        """Whether a POST is being handled right now (arrived, not yet answered)."""
        with self._lock:
            return self.arrivals > len(self.received)

    @property
    def unique(self) -> list[Delivery]:
        with self._lock:
            return list(self.accepted.values())

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` POSTs have arrived (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True


def _answer(
    req: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    req.end_headers()
    req.wfile.write(data)


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink
