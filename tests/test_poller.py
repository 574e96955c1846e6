"""The poller against real feeds served locally: KEV replay, 304s, cache hints, back-off, broken and recovering feeds.

The KEV catalog's first version (~1,250 records) is embedded once for the module (~15-20 s); every
other test polls small feeds into its own store.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings
from bot.daemon import DeliveryConfig, DeliveryRuntime, open_runtime
from bot.delivery.base import Digest, IncidentPost
from bot.delivery.memory import MemoryTarget
from bot.outbox import RowStatus
from bot.poller import PollPolicy, cache_max_age, classify_failure
from bot.sources import Source
from retrieval.fetch import Fetcher, HTTPStatusError, TooLarge
from tests.conftest import FIXTURES, needs_fixtures, needs_model
from tests.helpers.feed_server import FeedRoute
from tests.helpers.http_server import LocalHTTPServer

pytestmark = [needs_fixtures, needs_model]

KEV = FIXTURES / "kev"
KEV_VERSIONS = ["kev_2025-01-27_2dd57cfa.json", "kev_2025-04-29_d118e826.json", "kev_2025-08-21_c955f9cb.json"]
FEEDS = FIXTURES / "feeds"


class Clock:
    """A settable clock for schedules; records still get real ingest times from the store."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _kev_entries(name: str) -> dict[str, dict]:
    return {v["cveID"]: v for v in json.loads((KEV / name).read_text())["vulnerabilities"]}


def _runtime(
    data_dir: Path,
    target: MemoryTarget,
    *,
    clock=None,
    policy: PollPolicy | None = None,
    fetcher: Fetcher | None = None,
) -> DeliveryRuntime:
    config = DeliveryConfig(default_sources=False, poll=policy or PollPolicy(), digest_threshold=5)
    runtime = open_runtime(
        Settings(data_dir=data_dir, allow_private_urls=True),
        config,
        targets=[target],
        fetcher=fetcher or Fetcher(allow_private=True, timeout=5),
        **({"clock": clock} if clock else {}),
    )
    runtime.poller.rng = random.Random(7)
    return runtime


def _delivered_cves(target: MemoryTarget, channel: str) -> list[str]:
    """The CVE of each record that reached ``channel`` as news (post or digest item), repeats kept.

    A KEV record's first CVE is its own; its text may name others (a related flaw), which are not its news.
    """
    cves: list[str] = []
    for sent in target.sent:
        if sent.channel != channel:
            continue
        items = sent.payload.items if isinstance(sent.payload, Digest) else [sent.payload]
        for item in items:
            if isinstance(item, IncidentPost):
                by_id = {m.id: m for m in item.members}
                cves += [by_id[record_id].cves[0] for record_id in item.matched]
    return cves


# -- the KEV replay ---------------------------------------------------------------------------------


@dataclass
class KevWorld:
    server: LocalHTTPServer
    feed: FeedRoute
    runtime: DeliveryRuntime
    target: MemoryTarget


@pytest.fixture(scope="module")
def kev_world(tmp_path_factory) -> Iterator[KevWorld]:
    with LocalHTTPServer() as server:
        feed = FeedRoute((KEV / KEV_VERSIONS[0]).read_bytes(), content_type="application/json")
        server.route("/kev.json", feed)
        target = MemoryTarget(platforms=("slack", "discord"))
        runtime = _runtime(tmp_path_factory.mktemp("kev"), target)
        runtime.sources.sync([Source("CISA KEV", server.url("/kev.json"), "kev", 3600)])
        report = runtime.poller.cycle(force=True)  # the first version: the backlog, embedded once
        assert report.polled[0].new == len(_kev_entries(KEV_VERSIONS[0]))
        yield KevWorld(server, feed, runtime, target)
        runtime.close()


@pytest.mark.slow
def test_kev_replay_delivers_exactly_the_added_cves_once_to_the_subscribed_channels(kev_world: KevWorld) -> None:
    runtime, target, feed = kev_world.runtime, kev_world.target, kev_world.feed
    subscribe = runtime.subscriptions.subscribe
    subscribe(platform="slack", channel="C-KEV", query="kev", created_by="test")
    subscribe(platform="slack", channel="C-APPLE", query="vendor:apple", created_by="test")
    subscribe(platform="discord", channel="D-FORTI", query="vendor:fortinet", created_by="test")
    subscribe(platform="slack", channel="C-OUTAGE", query="microsoft outage", created_by="test")

    # Subscribing does not replay the backlog.
    assert runtime.planner.plan().posts == 0
    assert runtime.deliverer.drain().sent == 0 and target.sent == []

    seen_kev: list[str] = []
    for before, after in itertools.pairwise(KEV_VERSIONS):
        old, new = _kev_entries(before), _kev_entries(after)
        added = set(new) - set(old)
        target.sent.clear()
        feed.set((KEV / after).read_bytes())
        report = runtime.poller.cycle(force=True)
        assert report.polled[0].status == "ok" and report.polled[0].new == len(added)
        runtime.deliverer.drain()

        kev = _delivered_cves(target, "C-KEV")
        assert sorted(kev) == sorted(added), "every added CVE once, nothing else"
        # 70-odd new incidents in one poll are one digest, not a flood of posts.
        assert [s.verb for s in target.sent if s.channel == "C-KEV"] == ["digest"]
        apple = {c for c in added if new[c]["vendorProject"] == "Apple"}
        assert sorted(_delivered_cves(target, "C-APPLE")) == sorted(apple)
        forti = {c for c in added if new[c]["vendorProject"] == "Fortinet"}
        assert sorted(_delivered_cves(target, "D-FORTI")) == sorted(forti)
        assert _delivered_cves(target, "C-OUTAGE") == []
        assert {s.channel for s in target.sent} <= {"C-KEV", "C-APPLE", "D-FORTI"}
        if 0 < len(apple) <= 5:
            assert {s.verb for s in target.sent if s.channel == "C-APPLE"} == {"post"}
        seen_kev += kev
    assert len(seen_kev) == len(set(seen_kev)) == 75 + 74
    assert runtime.outbox.stats().total(RowStatus.PENDING) == 0

    # The same catalog again: a 304, nothing queued, nothing sent.
    target.sent.clear()
    report = runtime.poller.cycle(force=True)
    assert report.polled[0].status == "not_modified"
    assert feed.not_modified >= 1
    assert (report.plan.posts, report.plan.digests, report.plan.updates) == (0, 0, 0)
    assert runtime.deliverer.drain().sent == 0 and target.sent == []


# -- updates, not reposts ---------------------------------------------------------------------------

CORPUS = FIXTURES / "corpus-2025" / "corpus.jsonl"
#: CISA's Fortinet advisory for CVE-2025-58034 (2025-11-14), and the KEV entry that followed (2025-11-18).
FORTINET_ADVISORY = "s33r:bbd6b76d59bf"
FORTINET_KEV = "kev:CVE-2025-58034"
#: An earlier, unrelated CISA advisory: the news source's first poll (its backlog).
EARLIER_ADVISORY = "s33r:91825ccb9623"


def _corpus_records(*ids: str) -> dict[str, dict]:
    wanted = set(ids)
    found: dict[str, dict] = {}
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            if any(i in line for i in wanted):
                record = json.loads(line)
                if record["id"] in wanted:
                    found[record["id"]] = record
    assert set(found) == wanted
    return found


def _jsonl(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode() + b"\n"


@pytest.fixture
def server() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as local:
        yield local


def test_a_cve_landing_in_kev_updates_the_post_instead_of_reposting(server: LocalHTTPServer, tmp_path: Path) -> None:
    records = _corpus_records(FORTINET_ADVISORY, FORTINET_KEV, EARLIER_ADVISORY)
    advisory = {**records[FORTINET_ADVISORY], "exploited": False, "severity": "high"}
    news = FeedRoute(_jsonl(records[EARLIER_ADVISORY]), content_type="application/x-ndjson")
    kev = FeedRoute(_jsonl(records[FORTINET_KEV]), content_type="application/x-ndjson")
    server.route("/news.jsonl", news)
    server.route("/kev.jsonl", kev)
    target = MemoryTarget(platform="slack")
    runtime = _runtime(tmp_path / "data", target)
    try:
        runtime.sources.sync([Source("CISA advisories", server.url("/news.jsonl"), "advisories", 900)])
        runtime.subscriptions.subscribe(platform="slack", channel="C-FORTI", query="vendor:fortinet", created_by="t")
        runtime.subscriptions.subscribe(platform="slack", channel="C-KEV", query="kev", created_by="t")
        first = runtime.poller.cycle(force=True)
        assert first.polled[0].backlog == 1, "a source's first poll is backlog"
        news.set(_jsonl(records[EARLIER_ADVISORY], advisory))  # the advisory is published
        runtime.poller.cycle(force=True)
        runtime.deliverer.drain()
        assert [(s.verb, s.channel) for s in target.sent] == [("post", "C-FORTI")]
        post = target.sent[0]

        # The KEV source is added; its first poll is backlog, but the entry for the advisory's CVE joins
        # an incident C-FORTI has: that post is updated, not reposted.
        runtime.sources.sync([Source("CISA KEV", server.url("/kev.jsonl"), "kev", 3600)])
        target.sent.clear()
        report = runtime.poller.cycle(force=True)
        assert report.polled[-1].backlog == 1
        runtime.deliverer.drain()
        assert [(s.verb, s.channel) for s in target.sent] == [("update", "C-FORTI")]
        update = target.sent[0].payload
        assert target.sent[0].parent == post.ref
        assert update.new_source and update.record.id == FORTINET_KEV
        assert ("exploited", False, True) in {(c.field, c.before, c.after) for c in update.changes}
        assert {m.id for m in update.members} == {FORTINET_ADVISORY, FORTINET_KEV}

        # The advisory is revised to critical: an update again. The KEV channel still gets nothing: the
        # revised record is not itself exploited, and the KEV entry was that source's backlog.
        news.set(_jsonl(records[EARLIER_ADVISORY], {**advisory, "severity": "critical"}))
        target.sent.clear()
        runtime.poller.cycle(force=True)
        runtime.deliverer.drain()
        forti = [s for s in target.sent if s.channel == "C-FORTI"]
        assert [s.verb for s in forti] == ["update"]
        assert [(c.field, c.before, c.after) for c in forti[0].payload.changes] == [("severity", "high", "critical")]
        assert forti[0].parent == post.ref
        assert {s.channel for s in target.sent} == {"C-FORTI"}

        target.sent.clear()
        assert runtime.poller.cycle(force=True).plan == type(report.plan)(), "nothing changed, nothing queued"
    finally:
        runtime.close()


# -- scheduling and health --------------------------------------------------------------------------


def test_conditional_get_and_cache_control_max_age_as_a_floor(server: LocalHTTPServer, tmp_path: Path) -> None:
    feed = FeedRoute(
        (FEEDS / "bleepingcomputer.xml").read_bytes(),
        content_type="application/rss+xml",
        cache_control="public, max-age=7200",
    )
    server.route("/bc.xml", feed)
    clock = Clock()
    runtime = _runtime(tmp_path / "data", MemoryTarget(), clock=clock)
    try:
        runtime.sources.sync([Source("BleepingComputer", server.url("/bc.xml"), "news", 900)])
        [first] = runtime.poller.poll_due()
        assert (first.status, first.new) == ("ok", 12)
        state = runtime.sources.get("BleepingComputer")
        assert state is not None and state.min_interval == 7200
        assert state.next_due >= clock.now + 7200, "max-age lengthens a 15-minute interval"
        assert runtime.sources.due(clock.now + 3600) == []
        clock.advance(7200 * 1.01)
        [second] = runtime.poller.poll_due()
        assert second.status == "not_modified" and second.new == 0
        assert feed.conditional_hits == 1 and feed.not_modified == 1
        assert runtime.store.count() == 12
    finally:
        runtime.close()


def test_interval_jitter_spreads_sources(server: LocalHTTPServer, tmp_path: Path) -> None:
    server.route("/p.xml", FeedRoute((FEEDS / "proofpoint.xml").read_bytes(), content_type="application/rss+xml"))
    clock = Clock()
    runtime = _runtime(tmp_path / "data", MemoryTarget(), clock=clock, policy=PollPolicy(jitter=0.1))
    try:
        runtime.sources.sync([Source(f"P{n}", server.url(f"/p.xml?copy={n}"), "news", 1000) for n in range(6)])
        outcomes = runtime.poller.poll_due()
        delays = [o.next_due - clock.now for o in outcomes]
        assert all(900 <= d <= 1100 for d in delays)
        assert len({round(d) for d in delays}) > 1, "sources must not stay in lockstep"
    finally:
        runtime.close()


def test_retry_after_and_exponential_backoff(server: LocalHTTPServer, tmp_path: Path) -> None:
    feed = FeedRoute((FEEDS / "proofpoint.xml").read_bytes(), content_type="application/rss+xml")
    server.route("/p.xml", feed)
    clock = Clock()
    runtime = _runtime(tmp_path / "data", MemoryTarget(), clock=clock, policy=PollPolicy(jitter=0.0))
    try:
        runtime.sources.sync([Source("Proofpoint", server.url("/p.xml"), "news", 600)])
        feed.fail(503, {"Retry-After": "5000"})
        [outcome] = runtime.poller.poll_due()
        assert outcome.status == "failed" and "503" in (outcome.error or "")
        assert outcome.next_due - clock.now == pytest.approx(5000), "Retry-After beats the 600 s back-off"
        feed.fail(500)
        delays = []
        for _ in range(3):
            clock.now = runtime.sources.get("Proofpoint").next_due  # type: ignore[union-attr]
            [outcome] = runtime.poller.poll_due()
            delays.append(outcome.next_due - clock.now)
        assert delays == [1200, 2400, 4800]
        state = runtime.sources.get("Proofpoint")
        assert state is not None and state.health.value == "failing" and state.failures == 4
        assert "HTTP 500" in (state.last_error or "")
    finally:
        runtime.close()


def test_a_feed_that_turns_malformed_then_recovers(server: LocalHTTPServer, tmp_path: Path) -> None:
    good = (FEEDS / "securityweek.xml").read_bytes()
    start, end = good.index(b"<item>"), good.index(b"</item>") + len(b"</item>")
    older = good[:start] + good[end:]  # the same feed before its newest story was published
    feed = FeedRoute(older, content_type="application/rss+xml")
    server.route("/sw.xml", feed)
    clock = Clock()
    runtime = _runtime(tmp_path / "data", MemoryTarget(), clock=clock)
    try:
        runtime.sources.sync([Source("SecurityWeek", server.url("/sw.xml"), "news", 900)])
        assert runtime.poller.poll_due()[0].new == 9
        feed.set(b"\x00\x17\x03 upstream proxy error \xff\xfe garbage", content_type="application/rss+xml")
        for failures in (1, 2):
            clock.advance(86400)
            [outcome] = runtime.poller.poll_due()
            assert outcome.status == "failed"
            state = runtime.sources.get("SecurityWeek")
            assert state is not None and state.failures == failures
        status = next(s for s in runtime.sources.list_sources() if s.name == "SecurityWeek")
        assert status.health == "failing" and status.enabled and status.last_error
        assert runtime.store.count() == 9, "a bad body never touches what is stored"

        feed.set(good)
        clock.advance(86400)
        [outcome] = runtime.poller.poll_due()
        assert (outcome.status, outcome.new) == ("ok", 1)
        status = next(s for s in runtime.sources.list_sources() if s.name == "SecurityWeek")
        assert status.health == "ok" and status.last_success is not None
    finally:
        runtime.close()


def test_broken_sources_are_disabled_with_a_reason_and_never_stop_the_others(
    server: LocalHTTPServer, tmp_path: Path
) -> None:
    server.route("/good.xml", FeedRoute((FEEDS / "proofpoint.xml").read_bytes(), content_type="application/rss+xml"))
    server.route("/big.xml", FeedRoute((FEEDS / "bleepingcomputer.xml").read_bytes()))
    server.route("/bad.xml", FeedRoute(b"this is not a feed at all"))
    server.route("/flaky.xml", FeedRoute((FEEDS / "crowdstrike.xml").read_bytes()))
    runtime = _runtime(
        tmp_path / "data",
        MemoryTarget(),
        policy=PollPolicy(disable_after_permanent=3, disable_after=10),
        fetcher=Fetcher(allow_private=True, timeout=5, max_bytes=6000),
    )
    original = runtime.poller.ingestor.ingest

    def ingest(url: str, **kwargs):  # a bug that blows up inside one source's ingest
        if url.endswith("/flaky.xml"):
            raise RuntimeError("database is on fire")
        return original(url, **kwargs)

    runtime.poller.ingestor.ingest = ingest  # type: ignore[method-assign]
    try:
        runtime.sources.sync(
            [
                Source("Bad", server.url("/bad.xml"), "news", 900),
                Source("Big", server.url("/big.xml"), "news", 900),
                Source("Gone", server.url("/gone.xml"), "news", 900),
                Source("Flaky", server.url("/flaky.xml"), "news", 900),
                Source("Good", server.url("/good.xml"), "news", 900),
            ]
        )
        for _ in range(3):
            outcomes = {o.source: o for o in runtime.poller.cycle(force=True).polled}
            assert outcomes["Good"].status in {"ok", "not_modified"}
        states = {s.name: s for s in runtime.sources.list_sources()}
        assert states["Good"].health == "ok" and runtime.store.count() == 10
        assert not states["Bad"].enabled and states["Bad"].disabled_reason.startswith("bad format")
        assert not states["Big"].enabled and states["Big"].disabled_reason.startswith("too large")
        assert not states["Gone"].enabled and states["Gone"].disabled_reason.startswith("gone (HTTP 404)")
        assert states["Flaky"].enabled and states["Flaky"].health == "failing", "transient: not disabled yet"
        assert "database is on fire" in states["Flaky"].last_error
        assert {s.name for s in runtime.sources.due(float("inf"))} == {"Flaky", "Good"}

        runtime.sources.set_enabled("Bad", True)
        assert runtime.sources.get("Bad").health.value == "new" or runtime.sources.get("Bad").failures == 0  # type: ignore[union-attr]
        assert "Bad" in {s.name for s in runtime.sources.due()}
    finally:
        runtime.close()


# -- pure helpers ------------------------------------------------------------------------------------


def test_cache_max_age_reads_cache_control() -> None:
    assert cache_max_age({"cache-control": "public, max-age=600"}) == 600
    assert cache_max_age({"cache-control": "max-age=60, s-maxage=3600"}) == 3600
    assert cache_max_age({"cache-control": "no-store, max-age=600"}) is None
    assert cache_max_age({}) is None


def test_classify_failure_tells_permanent_from_transient() -> None:
    assert classify_failure("x", None).label == "bad format"
    assert classify_failure("x", TooLarge("u", "big")).permanent
    gone = classify_failure("x", HTTPStatusError("u", 410, {}))
    assert gone.permanent and gone.label == "gone (HTTP 410)"
    busy = classify_failure("x", HTTPStatusError("u", 429, {"Retry-After": "30"}))
    assert not busy.permanent and busy.retry_after == 30


def test_a_sources_first_poll_is_backlog_and_later_items_are_news(server: LocalHTTPServer, tmp_path: Path) -> None:
    full = (FEEDS / "bleepingcomputer.xml").read_bytes()
    items = [m.start() for m in re.finditer(rb"<item>", full)]
    newest_two_removed = full[: items[0]] + full[items[2] :]  # the feed an hour earlier
    feed = FeedRoute(newest_two_removed, content_type="application/rss+xml")
    server.route("/bc.xml", feed)
    target = MemoryTarget(platform="slack")
    runtime = _runtime(tmp_path / "data", target)
    try:
        runtime.subscriptions.subscribe(platform="slack", channel="C-ALL", query="kind:ransomware", created_by="t")
        runtime.subscriptions.subscribe(platform="slack", channel="C-LINUX", query="vendor:linux", created_by="t")
        runtime.sources.sync([Source("BleepingComputer", server.url("/bc.xml"), "news", 900)])
        [first] = runtime.poller.cycle(force=True).polled
        assert first.new == first.backlog == 10 and "backlog" in first.line()
        assert runtime.deliverer.drain().sent == 0 and target.sent == []
        feed.set(full)
        report = runtime.poller.cycle(force=True)
        assert report.polled[0].new == 2 and report.polled[0].backlog == 0
        runtime.deliverer.drain()
        titles = {s.payload.record.title for s in target.sent}
        assert titles == {"BlackSuit ransomware extortion sites seized in Operation Checkmate"}, titles
    finally:
        runtime.close()
