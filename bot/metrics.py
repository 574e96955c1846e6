"""What ``serve`` exposes for Prometheus (``/metrics``) and its liveness (``/healthz``).

The counters and histograms live in one registry of threatbot's own (nothing from other libraries leaks
in), updated where the work happens: polls and records by the poller component, delivery latency when
the outbox marks a row sent, answer latency around :meth:`Conversation.handle`, LLM fallbacks in the
answerer. Outbox rows pending and dead are read from the database at scrape time, so they are right even
after a restart.

The HTTP side is a small ASGI app served by uvicorn as one more ``serve`` component:
``GET /metrics`` (prometheus-client's exposition) and ``GET /healthz`` (200 while the process runs, with
``threatbot doctor``'s latest verdict, refreshed in the background at most once a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

REGISTRY = CollectorRegistry(auto_describe=True)

POLLS = Counter(
    "threatbot_polls", "Source polls, by outcome (ok, not_modified, failed, disabled).", ["outcome"], registry=REGISTRY
)
RECORDS_INGESTED = Counter(
    "threatbot_records_ingested", "Records polling stored, new or updated.", ["change"], registry=REGISTRY
)
DELIVERY_LATENCY = Histogram(
    "threatbot_delivery_latency_seconds",
    "From queueing a post to the platform accepting it.",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
    registry=REGISTRY,
)
ANSWER_LATENCY = Histogram(
    "threatbot_answer_latency_seconds",
    "From a chat message to the core's reply (retrieval and the LLM, if any).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
    registry=REGISTRY,
)
LLM_FALLBACKS = Counter(
    "threatbot_llm_fallbacks",
    "Answers sent extractive because the LLM timed out, failed, or its reply failed the checks.",
    ["reason"],
    registry=REGISTRY,
)
for _outcome in ("ok", "not_modified", "failed", "disabled"):
    POLLS.labels(_outcome)
for _reason in ("timeout", "error", "check"):
    LLM_FALLBACKS.labels(_reason)


def record_poll(outcomes: Iterator[Any] | list[Any]) -> None:
    """Count one cycle's :class:`~bot.poller.PollOutcome` s."""
    for outcome in outcomes:
        POLLS.labels(outcome.status).inc()
        if outcome.new:
            RECORDS_INGESTED.labels("new").inc(outcome.new)
        if outcome.updated:
            RECORDS_INGESTED.labels("updated").inc(outcome.updated)


def observe_delivery(queued_at: float, sent_at: float) -> None:
    DELIVERY_LATENCY.observe(max(0.0, sent_at - queued_at))


def timed_answer(handle: F) -> F:
    """Decorates ``Conversation.handle``: every reply's latency, whatever path produced it."""

    @functools.wraps(handle)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return handle(*args, **kwargs)
        finally:
            ANSWER_LATENCY.observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]


def record_llm_result(reason: str) -> None:
    """``LLMResult.reason``: "ok", "timeout", "error: …" or "check: …"."""
    if reason != "ok":
        LLM_FALLBACKS.labels(reason.split(":", 1)[0].strip() or "error").inc()


class OutboxCollector(Collector):
    """``threatbot_outbox_rows{status}`` straight from the database, read-only, at scrape time."""

    def __init__(self, database_path: Path) -> None:
        self.database_path = database_path

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "threatbot_outbox_rows", "Outbox rows by status (pending, sending, dead, …).", labels=["status"]
        )
        counts = {"pending": 0, "sending": 0, "dead": 0}
        try:
            conn = sqlite3.connect(f"file:{self.database_path}?mode=ro", uri=True, timeout=2)
            try:
                for status, count in conn.execute("SELECT status, count(*) FROM delivery_outbox GROUP BY status"):
                    counts[str(status)] = int(count)
            finally:
                conn.close()
        except sqlite3.Error:  # no database or no outbox yet: zeros
            pass
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family


# -- the HTTP side -----------------------------------------------------------------------------------


class HealthState:
    """Doctor's latest verdict, refreshed in a thread at most every ``interval`` seconds."""

    def __init__(self, check: Callable[[], dict[str, Any]], *, interval: float = 60.0) -> None:
        self.check = check
        self.interval = interval
        self.started = time.time()
        self._verdict: dict[str, Any] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._running = False

    def snapshot(self) -> dict[str, Any]:
        self._refresh_if_stale()
        with self._lock:
            verdict = self._verdict
        body: dict[str, Any] = {"status": "alive", "uptime_seconds": round(time.time() - self.started, 1)}
        if verdict is None:
            body["doctor"] = "pending"
        else:
            body["healthy"] = verdict.get("healthy")
            body["doctor"] = verdict
        return body

    def _refresh_if_stale(self) -> None:
        with self._lock:
            if self._running or (time.monotonic() - self._checked_at < self.interval and self._verdict is not None):
                return
            self._running = True
        threading.Thread(target=self._refresh, name="healthz-doctor", daemon=True).start()

    def _refresh(self) -> None:
        try:
            verdict = self.check()
        except Exception as error:  # doctor never raises by design; if it does, that is the verdict
            verdict = {"healthy": False, "checks": [{"name": "doctor", "verdict": "fail", "detail": repr(error)}]}
        with self._lock:
            self._verdict = verdict
            self._checked_at = time.monotonic()
            self._running = False


def observability_app(health: HealthState, registry: CollectorRegistry = REGISTRY) -> Callable:
    """The ASGI app: ``/metrics`` and ``/healthz``; 404 for anything else."""
    metrics = make_asgi_app(registry=registry)

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == "/metrics":
            await metrics(scope, receive, send)
            return
        if path == "/healthz" and scope.get("method") in ("GET", "HEAD"):
            body = json.dumps(await asyncio.to_thread(health.snapshot)).encode()
            status = 200
        else:
            body, status = b'{"error": "not found"}', 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


class ObservabilityServer:
    """``serve``'s ``/healthz`` + ``/metrics`` listener (uvicorn), as a daemon component."""

    name = "metrics"

    def __init__(self, app: Callable, *, host: str, port: int) -> None:
        import uvicorn

        self.host, self.port = host, port
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
        )

    @property
    def url(self) -> str:
        servers = getattr(self.server, "servers", None) or []
        for server in servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                return f"http://{host}:{port}"
        return f"http://{self.host}:{self.port}"

    async def _serve(self) -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind; serve goes on without metrics
            await self.server.serve()

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self._serve())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if serving in done:  # could not bind: say so, keep serve running without metrics
            if not self.server.started:
                log.error("/healthz and /metrics: could not listen on %s:%s", self.host, self.port)
            stopping.cancel()
            return
        self.server.should_exit = True
        await serving
