"""A feed that changes between polls and answers conditional GETs, on top of ``LocalHTTPServer``.

``LocalHTTPServer``'s ``respond`` always answers 200 with a fixed body; polling tests need a server
that behaves like a real feed host: an ETag per version and 304 to ``If-None-Match``, a
``Cache-Control`` header, a body swapped for a new version (or for garbage) between polls, an
error status with ``Retry-After``. ``FeedRoute`` is such a route handler::

    feed = FeedRoute(path.read_bytes(), cache_control="max-age=600")
    server.route("/kev.json", feed)
    feed.set(next_version)          # the next poll gets it (with a new ETag)
    feed.fail(503, {"Retry-After": "120"})
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler

from tests.helpers.http_server import respond

__all__ = ["FeedRoute"]


class FeedRoute:
    """A versioned feed body with ETag/304 handling; counts hits, conditional hits and 304s."""

    def __init__(
        self,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        cache_control: str | None = None,
    ) -> None:
        self.content_type = content_type
        self.cache_control = cache_control
        self.hits = 0
        self.conditional_hits = 0
        self.not_modified = 0
        self._lock = threading.Lock()
        self._error: tuple[int, dict[str, str]] | None = None
        self.set(body)

    def set(self, body: bytes, *, content_type: str | None = None) -> None:
        """Serve ``body`` from now on (a new ETag), and stop any failure set with :meth:`fail`."""
        with self._lock:
            self.body = body
            self.etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            self._error = None
            if content_type:
                self.content_type = content_type

    def fail(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer every request with ``status`` until the next :meth:`set`."""
        with self._lock:
            self._error = (status, dict(headers or {}))

    def __call__(self, req: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.hits += 1
            body, etag, error = self.body, self.etag, self._error
            conditional = req.headers.get("If-None-Match")
            if conditional:
                self.conditional_hits += 1
            fresh = conditional == etag and error is None
            if fresh:
                self.not_modified += 1
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        if error is not None:
            respond(error[0], b"error", {**headers, **error[1]})(req)
        elif fresh:
            respond(304, b"", {**headers, "ETag": etag})(req)
        else:
            respond(200, body, {**headers, "ETag": etag, "Content-Type": self.content_type})(req)
