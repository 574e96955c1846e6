"""Slack's HTTP mode on a production server: Bolt's ASGI adapter under uvicorn, in a thread of its own.

Replaces ``wsgiref`` (a reference server: no keep-alive limits, no timeouts, one request parser written
for tests). Bolt's built-in ASGI handler calls the sync ``App.dispatch`` inside the event loop; here
dispatch runs in a worker thread, so one slow listener cannot hold every other request (and Slack's
3-second ack deadline) behind it. ``GET /healthz`` answers ``ok`` for a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.asgi import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest

START_TIMEOUT = 15.0


class ThreadedBoltHandler(SlackRequestHandler):
    """Bolt's ASGI handler with ``dispatch`` off the event loop."""

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        bolt_request = BoltRequest(
            body=await request.get_raw_body(), query=request.query_string, headers=request.get_headers()
        )
        app: App = self.app  # type: ignore[assignment]  # the sync App this adapter is built with
        return await asyncio.to_thread(app.dispatch, bolt_request)


def slack_asgi_app(app: App, *, events_path: str, health_path: str) -> Callable:
    handler = ThreadedBoltHandler(app, path=events_path)

    async def asgi(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path") == health_path:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok\n"})
            return
        await handler(scope, receive, send)  # type: ignore[arg-type]

    return asgi


class ServerThread:
    """uvicorn serving ``app`` from a daemon thread; :meth:`start` returns once it listens (or raises OSError)."""

    def __init__(self, app: Callable, *, host: str, port: int, name: str = "slack-http") -> None:
        import uvicorn

        self.host, self.port, self.name = host, port, name
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"Slack HTTP mode could not listen on {self.host}:{self.port}")
            time.sleep(0.02)

    def _run(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind; start() reports it
            self.server.run()

    @property
    def address(self) -> tuple[str, int]:
        for server in getattr(self.server, "servers", None) or []:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                return str(host), int(port)
        return self.host, self.port

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
