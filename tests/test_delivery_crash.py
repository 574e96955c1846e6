"""Kill a real ``poll --once`` process at each crash point; the next run must lose nothing and post nothing twice.

The process dies through ``os._exit`` at a named point (``THREATBOT_CRASH_AT``): no cleanup, no commit,
as a kill -9 or a power cut would leave it. Deliveries go to a local webhook sink that, like a careful
receiver, dedupes by the ``Idempotency-Key`` header; it counts every POST, so "sent again after a
crash" (allowed: at-least-once) and "posted twice" (never) are told apart.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.outbox import CRASH_EXIT_CODE, Outbox, RowStatus
from bot.sources import Source, SourceBook
from bot.subscriptions import Subscriptions
from retrieval.database import Database
from tests.conftest import FIXTURES, REPO, needs_fixtures, needs_model
from tests.helpers.feed_server import FeedRoute
from tests.helpers.http_server import LocalHTTPServer
from tests.helpers.webhook_sink import WebhookSink

pytestmark = [needs_fixtures, needs_model, pytest.mark.slow]

FEED = FIXTURES / "feeds" / "bleepingcomputer.xml"  # 12 items: small, so each child embeds in well under a second
SUBSCRIPTIONS = [("soc-ransomware", "ransomware"), ("soc-microsoft", "microsoft"), ("soc-linux", "vendor:linux")]


@pytest.fixture(scope="module")
def feed_server() -> Iterator[tuple[LocalHTTPServer, dict[str, FeedRoute]]]:
    routes: dict[str, FeedRoute] = {}
    with LocalHTTPServer() as server:
        yield server, routes


def _prepare(
    root: Path,
    server: LocalHTTPServer,
    routes: dict[str, FeedRoute],
    *,
    backlog: bool = False,
    body: bytes | None = None,
) -> tuple[Path, FeedRoute]:
    """A data dir with one source (its own route, so 304s are countable) and the subscriptions.

    Without ``backlog`` the feed's first poll is posted, which is what these tests deliver; normally
    a source's first poll is its backlog.
    """
    data = root / "data"
    data.mkdir(parents=True)
    config = "default_sources = false\n" + ("" if backlog else "[poller]\nfirst_poll_is_backlog = false\n")
    (data / "threatbot.toml").write_text(config, encoding="utf-8")
    path = f"/{root.name}/feed.xml"
    route = routes[path] = FeedRoute(body or FEED.read_bytes(), content_type="application/rss+xml")
    server.route(path, route)
    db = Database(data / "threatbot.sqlite3")
    SourceBook(db).sync([Source("BleepingComputer", server.url(path), "news", 900)])
    book = Subscriptions(db)
    for channel, query in SUBSCRIPTIONS:
        book.subscribe(platform="webhook", channel=channel, query=query, created_by="test")
    db.close()
    return data, route


def _poll_once(data: Path, sink: WebhookSink, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "THREATBOT_DATA_DIR": str(data),
        "THREATBOT_ALLOW_PRIVATE_URLS": "1",
        "THREATBOT_WEBHOOK_URL": sink.url,
    }
    env.pop("THREATBOT_CRASH_AT", None)
    if crash_at:
        env["THREATBOT_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "poll", "--once", "--force"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def expected(tmp_path_factory, feed_server) -> set[str]:
    """The idempotency keys an uninterrupted run delivers: what every crashed-and-resumed run must match."""
    server, routes = feed_server
    data, _ = _prepare(tmp_path_factory.mktemp("reference"), server, routes)
    with WebhookSink() as sink:
        done = _poll_once(data, sink)
        assert done.returncode == 0, done.stderr
        keys = [d.key for d in sink.received]
    assert len(keys) == len(set(keys)) >= 4, keys
    assert {k.split(":")[2] for k in keys} == {c for c, _ in SUBSCRIPTIONS}
    return set(keys)


@pytest.mark.parametrize(
    ("crash_at", "sent_before_crash"),
    [
        ("poll.after_ingest", 0),  # records stored, nothing planned
        ("poll.after_enqueue", 0),  # rows queued, nothing sent
        ("deliver.before_send", 0),  # a row marked sending, not sent
        ("deliver.after_send", 1),  # the sink has it, the outbox does not know
    ],
)
def test_a_crash_loses_nothing_and_posts_nothing_twice(
    crash_at: str, sent_before_crash: int, expected: set[str], feed_server, tmp_path: Path
) -> None:
    server, routes = feed_server
    data, route = _prepare(tmp_path, server, routes)
    with WebhookSink() as sink:
        crashed = _poll_once(data, sink, crash_at)
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
        assert len(sink.received) == sent_before_crash

        resumed = _poll_once(data, sink)
        assert resumed.returncode == 0, resumed.stderr
        unique = sink.unique
        assert {d.key for d in unique} == expected, "nothing lost"
        # At-least-once: the message cut off between send and commit went again, with the same key.
        repeats = Counter(d.key for d in sink.received)
        assert sum(repeats.values()) == len(expected) + sent_before_crash
        if sent_before_crash:
            assert repeats[sink.received[0].key] == 2
        # Never posted twice: each incident once per channel.
        incidents = Counter((d.body["channel"], d.body["cluster_id"]) for d in unique if d.event == "post")
        assert incidents and max(incidents.values()) == 1

        if crash_at == "poll.after_ingest":
            # The second run got a 304: the deliveries were planned from the store, not from the poll.
            assert route.not_modified == 1
            assert "not modified" in resumed.stdout

        if sent_before_crash:
            again = _poll_once(data, sink)
            assert again.returncode == 0, again.stderr
            assert len(sink.received) == len(expected) + sent_before_crash, "a third run sends nothing"

    db = Database(data / "threatbot.sqlite3")
    stats = Outbox(db).stats()
    db.close()
    assert stats.total(RowStatus.SENT) == len(expected)
    assert stats.total(RowStatus.PENDING) == stats.total(RowStatus.SENDING) == stats.total(RowStatus.DEAD) == 0


def test_a_crash_during_a_first_poll_does_not_turn_the_backlog_into_news(
    expected: set[str], feed_server, tmp_path: Path
) -> None:
    """The first poll's records are stored, then the process dies before marking them backlog."""
    server, routes = feed_server
    full = FEED.read_bytes()
    first, third = (m.start() for m in itertools.islice(re.finditer(rb"<item>", full), 0, 3, 2))
    earlier = full[:first] + full[third:]  # the feed before its two newest stories
    data, route = _prepare(tmp_path, server, routes, backlog=True, body=earlier)
    with WebhookSink() as sink:
        crashed = _poll_once(data, sink, "poll.after_ingest")
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
        resumed = _poll_once(data, sink)
        assert resumed.returncode == 0, resumed.stderr
        assert "kept as backlog" in resumed.stdout
        assert sink.received == [], "the backlog was not posted"
        assert route.not_modified == 0, "a first poll re-reads the whole feed"

        route.set(full)  # two new stories arrive
        later = _poll_once(data, sink)
        assert later.returncode == 0, later.stderr
    delivered = {d.key for d in sink.received}
    assert delivered and delivered < expected, "only the two new stories, to the channels that want them"
    assert len(sink.received) == len(delivered)


# -- Slack: a public channel the bot has not joined ----------------------------------------------------

SLACK_TOKEN = "xoxb-crash-test-0000"


def _prepare_slack(root: Path, server: LocalHTTPServer, routes: dict[str, FeedRoute]) -> Path:
    """The same feed, subscriptions to one public Slack channel the bot is not in (posting via chat:write.public)."""
    data = root / "data"
    data.mkdir(parents=True)
    (data / "threatbot.toml").write_text(
        "default_sources = false\n[poller]\nfirst_poll_is_backlog = false\n[delivery]\nrate_limits = { slack = 0 }\n",
        encoding="utf-8",
    )
    path = f"/{root.name}/feed.xml"
    routes[path] = FeedRoute(FEED.read_bytes(), content_type="application/rss+xml")
    server.route(path, routes[path])
    db = Database(data / "threatbot.sqlite3")
    SourceBook(db).sync([Source("BleepingComputer", server.url(path), "news", 900)])
    book = Subscriptions(db)
    for _, query in SUBSCRIPTIONS:
        book.subscribe(platform="slack", channel="CPUBLIC", query=query, created_by="U0TEST")
    db.close()
    return data


def _poll_slack(data: Path, slack, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "THREATBOT_DATA_DIR": str(data),
        "THREATBOT_ALLOW_PRIVATE_URLS": "1",
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "THREATBOT_SLACK_API_URL": slack.api_url,
    }
    for name in ("THREATBOT_CRASH_AT", "THREATBOT_WEBHOOK_URL", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        env.pop(name, None)
    if crash_at:
        env["THREATBOT_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "poll", "--once", "--force"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _slack_keys(slack) -> list[str]:
    return [
        m["metadata"]["event_payload"]["key"]
        for m in slack.channels.get("CPUBLIC", [])
        if (m.get("metadata") or {}).get("event_type") == "threatbot_delivery"
    ]


@pytest.mark.parametrize("crash_at", ["slack.after_post", "deliver.before_send", "deliver.after_send"])
def test_a_crash_posting_to_a_slack_channel_the_bot_has_not_joined_loses_nothing_and_repeats_nothing(
    crash_at: str, feed_server, tmp_path: Path
) -> None:
    from tests.fakes.slack_api import FakeSlack

    server, routes = feed_server
    reference_dir = _prepare_slack(tmp_path / "reference", server, routes)
    data = _prepare_slack(tmp_path / "crash", server, routes)
    with FakeSlack(token=SLACK_TOKEN) as reference:
        reference.add_channel("CPUBLIC", member=False)
        done = _poll_slack(reference_dir, reference)
        assert done.returncode == 0, done.stderr
        expected = _slack_keys(reference)
    assert len(expected) == len(set(expected)) >= 2, expected

    with FakeSlack(token=SLACK_TOKEN) as slack:
        slack.add_channel("CPUBLIC", member=False)
        crashed = _poll_slack(data, slack, crash_at)
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
        if crash_at == "slack.after_post":
            assert len(_slack_keys(slack)) == 1  # Slack has it; threatbot died before writing its ts down
            slack.conversations["CPUBLIC"].member = False  # as if posted via chat:write.public without joining
        resumed = _poll_slack(data, slack)
        assert resumed.returncode == 0, resumed.stderr
        keys = _slack_keys(slack)
        assert sorted(keys) == sorted(expected), "nothing lost, nothing posted twice"
        if crash_at == "slack.after_post":
            # Recovery could not read the channel at first (not_in_channel), joined it, and found the post.
            assert [c.method for c, _ in slack.refused("not_in_channel")] == ["conversations.history"]
            assert slack.is_member("CPUBLIC")
    db = Database(data / "threatbot.sqlite3")
    stats = Outbox(db).stats()
    db.close()
    assert stats.total(RowStatus.SENT) == len(expected) and stats.total(RowStatus.DEAD) == 0
