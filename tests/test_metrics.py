"""``serve``'s ``/metrics`` (read back with prometheus-client's own parser) and ``/healthz``; the start banner."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.metrics import HealthState, ObservabilityServer, OutboxCollector, observability_app


@dataclass
class Outcome:
    status: str
    new: int = 0
    updated: int = 0


def _sample(families: dict, name: str, **labels: str) -> float:
    for sample in families[name].samples:
        counted = sample.name.endswith(("_total", "_count")) or sample.name == name
        if counted and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no {name} sample with {labels}")


def _outbox_db(path: Path) -> None:
    from bot.outbox import Outbox
    from retrieval.database import Database

    db = Database(path)
    Outbox(db)
    with db.transaction() as conn:
        for key, status in (("a", "pending"), ("b", "pending"), ("c", "dead")):
            conn.execute(
                "INSERT INTO delivery_outbox (key, kind, platform, channel, payload, status, next_attempt, created_at)"
                " VALUES (?, 'post', 'slack', 'C1', '{}', ?, 0, 0)",
                (key, status),
            )
    db.close()


def _scrape(app) -> tuple[int, str]:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://threatbot") as client:
            return await client.get("/metrics")

    response = asyncio.run(get())
    return response.status_code, response.text


def test_metrics_parse_with_prometheus_clients_own_parser(tmp_path: Path) -> None:
    before = {
        "ok": metrics.POLLS.labels("ok")._value.get(),
        "failed": metrics.POLLS.labels("failed")._value.get(),
        "new": metrics.RECORDS_INGESTED.labels("new")._value.get(),
        "timeout": metrics.LLM_FALLBACKS.labels("timeout")._value.get(),
    }
    metrics.record_poll([Outcome("ok", new=3, updated=1), Outcome("failed"), Outcome("ok")])
    metrics.observe_delivery(queued_at=100.0, sent_at=102.5)
    metrics.record_llm_result("timeout")
    metrics.record_llm_result("ok")
    metrics.timed_answer(lambda: time.sleep(0.01))()
    _outbox_db(tmp_path / "threatbot.sqlite3")
    registry = CollectorRegistry()
    registry.register(OutboxCollector(tmp_path / "threatbot.sqlite3"))
    status, own = _scrape(observability_app(HealthState(dict), registry=registry))
    assert status == 200
    outbox = {f.name: f for f in text_string_to_metric_families(own)}
    assert _sample(outbox, "threatbot_outbox_rows", status="pending") == 2
    assert _sample(outbox, "threatbot_outbox_rows", status="dead") == 1

    status, text = _scrape(observability_app(HealthState(dict)))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"threatbot_polls", "threatbot_records_ingested", "threatbot_delivery_latency_seconds"} <= set(families)
    assert {"threatbot_answer_latency_seconds", "threatbot_llm_fallbacks"} <= set(families)
    assert _sample(families, "threatbot_polls", outcome="ok") == before["ok"] + 2
    assert _sample(families, "threatbot_polls", outcome="failed") == before["failed"] + 1
    assert _sample(families, "threatbot_records_ingested", change="new") == before["new"] + 3
    assert _sample(families, "threatbot_llm_fallbacks", reason="timeout") == before["timeout"] + 1
    assert families["threatbot_delivery_latency_seconds"].type == "histogram"
    assert _sample(families, "threatbot_answer_latency_seconds") >= 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_carries_doctors_verdict_over_a_real_server() -> None:
    verdicts = iter([{"healthy": False, "checks": [{"name": "outbox", "verdict": "fail"}]}])
    health = HealthState(lambda: next(verdicts), interval=3600)
    port = _free_port()
    server = ObservabilityServer(observability_app(health), host="127.0.0.1", port=port)

    async def scenario() -> list[dict]:
        stop = asyncio.Event()
        task = asyncio.create_task(server.run(stop))
        bodies = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):  # wait for the listener
                try:
                    first = await client.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            bodies.append(first.json())
            for _ in range(100):  # the first verdict is computed in the background
                await asyncio.sleep(0.05)
                body = (await client.get("/healthz")).json()
                if body.get("doctor") != "pending":
                    bodies.append(body)
                    break
            assert (await client.get("/nope")).status_code == 404
        stop.set()
        await asyncio.wait_for(task, 10)
        return bodies

    first, later = asyncio.run(scenario())
    assert first["status"] == "alive"
    assert later["status"] == "alive" and later["healthy"] is False
    assert later["doctor"]["checks"][0]["name"] == "outbox"


def test_a_port_in_use_leaves_serve_running(caplog) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = ObservabilityServer(observability_app(HealthState(dict)), host="127.0.0.1", port=port)

        async def scenario() -> None:
            await asyncio.wait_for(server.run(asyncio.Event()), 10)  # returns instead of raising SystemExit

        asyncio.run(scenario())
    assert "could not listen" in caplog.text


def test_start_banner_says_what_runs_and_what_does_not(tmp_path: Path) -> None:
    from bot.banner import serve_banner
    from bot.config import Settings
    from bot.daemon import DeliveryConfig, open_runtime
    from bot.platform import PlatformStatus

    runtime = open_runtime(Settings(data_dir=tmp_path / "data"), DeliveryConfig(default_sources=False))
    try:
        lines = serve_banner(
            runtime,
            [PlatformStatus("slack", chat=False, delivery=False, detail="not configured: set SLACK_BOT_TOKEN")],
            version="9.9",
            metrics_url="http://127.0.0.1:9464",
            grace=20,
        )
    finally:
        runtime.close()
    text = "\n".join(lines)
    assert lines[0].startswith("threatbot 9.9: serving from ") and str(tmp_path / "data") in lines[0]
    assert "sources: 0" in text and "subscriptions: 0" in text
    assert "slack: off: not configured: set SLACK_BOT_TOKEN" in text
    assert "no chat platform is configured" in text and "/metrics: http://127.0.0.1:9464" in text
    assert json.dumps(lines)  # plain strings, fit for a JSON log line too
