"""The daemon: components, clean shutdown, and SIGTERM to a real ``serve`` in the middle of deliveries."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.daemon import Daemon, in_thread
from bot.outbox import Outbox, RowStatus
from bot.sources import Source, SourceBook
from bot.subscriptions import Subscriptions
from retrieval.database import Database
from tests.conftest import FIXTURES, REPO, needs_fixtures, needs_model
from tests.helpers.feed_server import FeedRoute
from tests.helpers.http_server import LocalHTTPServer
from tests.helpers.webhook_sink import WebhookSink

# -- components --------------------------------------------------------------------------------------


class Recorder:
    """A component that runs until stopped and notes what happened to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        self.events.append("started")
        await stop.wait()
        self.events.append("stopped")


class StartStop:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


def test_components_run_until_asked_to_stop() -> None:
    recorder, adapter, seen = Recorder("poller"), StartStop(), []

    async def chat(stop: asyncio.Event) -> None:  # the shape of a chat adapter's main loop
        seen.append("chat up")
        await stop.wait()
        seen.append("chat down")

    async def main() -> int:
        daemon = Daemon([recorder], grace=2)
        daemon.add(adapter, name="slack")
        daemon.add(chat)
        asyncio.get_running_loop().call_later(0.2, daemon.request_stop)
        return await daemon.run(handle_signals=False)

    assert asyncio.run(main()) == 0
    assert recorder.events == ["started", "stopped"]
    assert adapter.calls == ["start", "stop"]
    assert seen == ["chat up", "chat down"]


def test_a_crashing_component_stops_the_others_and_fails_the_run() -> None:
    survivor = Recorder("deliverer")

    async def broken(stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("adapter lost its token")

    async def main() -> int:
        return await Daemon([survivor, broken], grace=2).run(handle_signals=False)

    assert asyncio.run(main()) == 1
    assert survivor.events == ["started", "stopped"]


def test_work_that_outlives_the_grace_period_is_abandoned_not_waited_for() -> None:
    release = threading.Event()

    async def stuck(stop: asyncio.Event) -> None:
        await in_thread(release.wait, 30)  # a send blocked on a dead server

    async def main() -> tuple[int, list[str], float]:
        daemon = Daemon([stuck], grace=0.3)
        asyncio.get_running_loop().call_later(0.1, daemon.request_stop)
        started = time.monotonic()
        code = await daemon.run(handle_signals=False)
        return code, daemon.abandoned, time.monotonic() - started

    code, abandoned, took = asyncio.run(main())
    release.set()
    assert code == 0 and abandoned == ["stuck"] and took < 2


def test_sigterm_sets_the_stop_event() -> None:
    recorder = Recorder("poller")

    async def main() -> int:
        daemon = Daemon([recorder], grace=2)
        asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
        return await daemon.run()

    assert asyncio.run(main()) == 0
    assert recorder.events == ["started", "stopped"]


# -- a real serve process ----------------------------------------------------------------------------

FEED = FIXTURES / "feeds" / "bleepingcomputer.xml"
SUBSCRIPTIONS = [("soc-ransomware", "ransomware"), ("soc-microsoft", "microsoft"), ("soc-linux", "vendor:linux")]


def _prepare(tmp_path: Path, server: LocalHTTPServer, grace: float) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    config = f"default_sources = false\ngrace = {grace}\n[poller]\nfirst_poll_is_backlog = false\n"
    (data / "threatbot.toml").write_text(config, encoding="utf-8")
    server.route("/feed.xml", FeedRoute(FEED.read_bytes(), content_type="application/rss+xml"))
    db = Database(data / "threatbot.sqlite3")
    SourceBook(db).sync([Source("BleepingComputer", server.url("/feed.xml"), "news", 900)])
    for channel, query in SUBSCRIPTIONS:
        Subscriptions(db).subscribe(platform="webhook", channel=channel, query=query, created_by="test")
    db.close()
    return data


def _env(data: Path, sink: WebhookSink) -> dict[str, str]:
    env = {
        **os.environ,
        "THREATBOT_DATA_DIR": str(data),
        "THREATBOT_ALLOW_PRIVATE_URLS": "1",
        "THREATBOT_WEBHOOK_URL": sink.url,
    }
    env.pop("THREATBOT_CRASH_AT", None)
    return env


def _outbox_stats(data: Path):
    db = Database(data / "threatbot.sqlite3")
    try:
        return Outbox(db).stats()
    finally:
        db.close()


def _finish(data: Path, sink: WebhookSink) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "poll", "--once"],
        cwd=REPO,
        env=_env(data, sink),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


@needs_fixtures
@needs_model
@pytest.mark.parametrize(("delay", "grace", "finished"), [(1.0, 15.0, True), (6.0, 0.5, False)])
def test_sigterm_during_delivery(tmp_path: Path, delay: float, grace: float, finished: bool) -> None:
    """SIGTERM while a message is in flight: finished within the grace period, or safely abandoned and resent."""
    with LocalHTTPServer() as server, WebhookSink(delay=delay) as sink:
        data = _prepare(tmp_path, server, grace)
        serve = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=REPO,
            env=_env(data, sink),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not sink.in_flight and time.monotonic() < deadline and serve.poll() is None:
                time.sleep(0.05)
            assert sink.in_flight, (
                f"serve never started delivering: {serve.poll()} {serve.stderr.read() if serve.poll() is not None else ''}"
            )
            serve.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            _, stderr = serve.communicate(timeout=grace + 20)
        finally:
            if serve.poll() is None:
                serve.kill()
        assert serve.returncode == 0, stderr
        assert time.monotonic() - stopped < grace + 10
        stats = _outbox_stats(data)
        sink.wait_for(1, timeout=delay + 5)  # the request the process was waiting on completes at the sink
        if finished:
            assert stats.total(RowStatus.SENDING) == 0, "the in-flight message was finished and committed"
            assert stats.total(RowStatus.SENT) == len(sink.received)
        else:
            assert stats.total(RowStatus.SENDING) == 1, "abandoned mid-send: left for the next start to resend"
            assert "abandoning" in stderr
        assert stats.total(RowStatus.PENDING) > 0, "SIGTERM came before everything was out"

        sink.delay = 0.0
        _finish(data, sink)
        stats = _outbox_stats(data)
        assert stats.total(RowStatus.PENDING) == stats.total(RowStatus.SENDING) == 0
        total = stats.total(RowStatus.SENT)
        assert len(sink.unique) == total >= 4
        assert len(sink.received) == total + (0 if finished else 1), "only an abandoned send is repeated"
