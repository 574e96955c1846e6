"""A local HTTP server for tests that must never touch the network.

Usage::

    from tests.helpers.http_server import LocalHTTPServer, respond

    with LocalHTTPServer() as server:
        server.route("/feed.xml", respond(200, body, {"Content-Type": "application/rss+xml"}))
        fetcher.fetch(server.url("/feed.xml"))

or request the ``http_server`` fixture after ``from tests.helpers.http_server import http_server``.
Each route is a callable taking the ``BaseHTTPRequestHandler``; :func:`respond`, :func:`redirect`,
:func:`stream` and :func:`hang` build the common ones. ``server.requests`` records (path, headers)
for every request, so tests can assert what was sent - or that nothing was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]

__all__ = ["Handler", "LocalHTTPServer", "hang", "http_server", "redirect", "respond", "serve_file", "stream"]


class LocalHTTPServer:
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port and per-path handlers."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests.append((self.path, dict(self.headers.items())))
                handler = owner.routes.get(self.path.split("?", 1)[0])
                if handler is None:
                    respond(404, b"not found")(self)
                    return
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):  # the client hung up on purpose
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.stopping = self.stopping  # type: ignore[attr-defined]  # read by hang()/stream()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-http-server", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p.split("?", 1)[0] == path)

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases handlers blocked in hang()/slow streams
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def respond(status: int = 200, body: bytes | str = b"", headers: Mapping[str, str] | None = None) -> Handler:
    """A fixed response; Content-Length is set from the body."""
    data = body.encode("utf-8") if isinstance(body, str) else body

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)

    return handler


def serve_file(path: Path, content_type: str = "application/octet-stream") -> Handler:
    return respond(200, path.read_bytes(), {"Content-Type": content_type})


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, b"", {"Location": location})


def stream(total: int, *, chunk: int = 64 * 1024, declare_length: bool = False, delay: float = 0.0) -> Handler:
    """``total`` bytes generated on the fly (never held in memory), chunked unless ``declare_length``.

    ``delay`` waits between chunks, for servers that trickle; stopping the server ends the wait.
    """

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/octet-stream")
        req.send_header(
            "Content-Length" if declare_length else "Transfer-Encoding", str(total) if declare_length else "chunked"
        )
        req.end_headers()
        block = b"x" * chunk
        sent = 0
        while sent < total:
            piece = block[: min(chunk, total - sent)]
            req.wfile.write(piece if declare_length else f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            req.wfile.flush()
            sent += len(piece)
            if delay and _stopping(req).wait(delay):
                return
        if not declare_length:
            req.wfile.write(b"0\r\n\r\n")

    return handler


def hang(seconds: float = 30.0) -> Handler:
    """Accept the request and never answer (until the server stops or ``seconds`` pass)."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        _stopping(req).wait(seconds)
        req.close_connection = True

    return handler


def _stopping(req: BaseHTTPRequestHandler) -> threading.Event:
    return req.server.stopping  # type: ignore[attr-defined]


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        yield server
