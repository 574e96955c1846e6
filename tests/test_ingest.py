"""``threatbot ingest`` end to end: every source reported by name, bad ones never cost good ones."""

from __future__ import annotations

import json

import pytest

from retrieval.fetch import Fetcher
from tests.conftest import FIXTURES, needs_fixtures, needs_model
from tests.helpers.feed_server import FeedRoute
from tests.helpers.http_server import LocalHTTPServer, hang, respond, stream

pytestmark = [needs_fixtures, needs_model]

FEED = FIXTURES / "feeds" / "bleepingcomputer.xml"


@pytest.fixture
def server():
    with LocalHTTPServer() as local:
        yield local


@pytest.fixture
def ingestor(store):
    from retrieval.ingest import Ingestor

    return Ingestor(store, fetcher=Fetcher(allow_private=True, timeout=1.0, total_timeout=2.0, max_bytes=2_000_000))


def test_good_and_bad_sources_in_one_run(ingestor, server, tmp_path):
    server.route("/feed.xml", FeedRoute(FEED.read_bytes(), content_type="application/rss+xml"))
    server.route("/missing.xml", respond(404, "gone"))
    server.route("/error.xml", respond(500, "boom"))
    server.route("/page.html", respond(200, "<!DOCTYPE html><html><body><p>hi</p></body></html>"))
    server.route("/broken.xml", respond(200, "<rss><channel><item><title>unterminated", {"Content-Type": "text/xml"}))
    server.route("/huge", stream(50 * 1024 * 1024))
    server.route("/slow", hang(10))
    records = tmp_path / "records.jsonl"
    records.write_text(
        "\n".join(
            [
                json.dumps({"title": "Valid record", "published": "2025-07-01T10:00:00Z", "url": "https://e.x/a"}),
                "{not json",
                json.dumps({"title": "", "published": "2025-07-01T10:00:00Z"}),
                json.dumps({"title": "Impossible date", "published": "2025-02-30T10:00:00Z"}),
                json.dumps({"title": "Second valid", "published": "2025-07-02T10:00:00+02:00", "source": "X"}),
            ]
        )
    )
    names = ["/feed.xml", "/missing.xml", "/error.xml", "/page.html", "/broken.xml", "/huge", "/slow"]
    reports = {r.source: r for r in ingestor.ingest_many([server.url(n) for n in names] + [str(records)])}

    feed = reports[server.url("/feed.xml")]
    assert feed.ok and feed.format == "rss" and feed.new == 12
    assert "404" in reports[server.url("/missing.xml")].error
    assert "500" in reports[server.url("/error.xml")].error
    assert "cap" in reports[server.url("/huge")].error
    assert reports[server.url("/slow")].error
    broken = reports[server.url("/broken.xml")]
    assert (broken.new, broken.failed) == (0, 1) and "no title" in broken.item_errors[0]
    assert "characters of text" in reports[server.url("/page.html")].error  # a page, but no article in it
    jsonl = reports[str(records)]
    assert (jsonl.new, jsonl.failed) == (2, 3)
    assert all(str(records) in problem for problem in jsonl.item_errors)
    assert ingestor.store.count() == 12 + 2


def test_an_unchanged_feed_costs_one_304_and_changes_nothing(ingestor, server):
    route = FeedRoute(FEED.read_bytes(), content_type="application/rss+xml")
    server.route("/feed.xml", route)
    first = ingestor.ingest(server.url("/feed.xml"))
    second = ingestor.ingest(server.url("/feed.xml"))
    assert first.new == 12
    assert second.not_modified and (second.new, second.updated) == (0, 0)
    assert route.not_modified == 1
    assert "not modified" in second.line()


def test_a_failure_loses_nothing_already_stored(ingestor, server):
    route = FeedRoute(FEED.read_bytes(), content_type="application/rss+xml")
    server.route("/feed.xml", route)
    assert ingestor.ingest(server.url("/feed.xml")).new == 12
    route.set(b"<html><body>maintenance</body></html>")
    assert ingestor.ingest(server.url("/feed.xml")).new == 0
    route.fail(503)
    assert not ingestor.ingest(server.url("/feed.xml")).ok
    assert ingestor.store.count() == 12


def test_user_urls_never_reach_loopback_unless_allowed(store, server):
    from retrieval.ingest import Ingestor

    server.route("/feed.xml", respond(200, FEED.read_bytes()))
    guarded = Ingestor(store)  # the default: private addresses refused
    report = guarded.ingest(server.url("/feed.xml"))
    assert not report.ok and "127.0.0.1" in report.error
    assert server.hits("/feed.xml") == 0
    allowed = Ingestor(store, allow_private_urls=True)  # what THREATBOT_ALLOW_PRIVATE_URLS gives the CLI
    assert allowed.ingest(server.url("/feed.xml")).ok and server.hits("/feed.xml") == 1


def test_cli_exit_status_and_per_source_lines(tmp_path, capsys):
    from bot.cli import main

    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["ingest", str(FEED), str(tmp_path / "nope.xml"), *data]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("[rss]: new 12, updated 0, unchanged 0, failed 0")
    assert "nope.xml: FAILED: no such file" in out[1]
    assert main(["ingest", str(tmp_path / "nope.xml"), *data]) == 1  # every source failed
    assert main(["ingest", str(FEED), *data]) == 0
    assert capsys.readouterr().out.strip().endswith("new 0, updated 0, unchanged 12, failed 0")


def test_export_round_trips_through_ingest(tmp_path, capsys):
    from bot.cli import main

    first = ["--data-dir", str(tmp_path / "a")]
    main(["ingest", str(FIXTURES / "feeds" / "githubstatus_2025-10-22_18c1255.atom"), *first])
    capsys.readouterr()
    main(["export", *first])
    exported = capsys.readouterr().out
    lines = [json.loads(line) for line in exported.splitlines()]
    assert len(lines) == 25
    assert set(lines[0]) >= {"id", "title", "published", "summary", "body", "url", "source", "kind", "exploited"}
    assert set(lines[0]) >= {"severity", "cves", "vendors", "products", "countries", "tags", "impact", "mitigation"}
    assert set(lines[0]) >= {"fetched_at", "updated_at", "cluster_id"}
    path = tmp_path / "export.jsonl"
    path.write_text(exported)
    second = ["--data-dir", str(tmp_path / "b")]
    assert main(["ingest", str(path), *second]) == 0
    assert "new 25" in capsys.readouterr().out
    main(["export", *second])
    again = {d["id"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {d["id"] for d in lines} == set(again)
    assert all(again[d["id"]]["title"] == d["title"] and again[d["id"]]["kind"] == d["kind"] for d in lines)


def _posts_planned(tmp_path, name: str, *flags: str) -> int:
    from bot.cli import main
    from bot.config import Settings
    from bot.outbox import Outbox
    from bot.poller import DeliveryPlanner
    from bot.subscriptions import Subscriptions
    from retrieval.records import utcnow
    from retrieval.store import RecordStore

    data = ["--data-dir", str(tmp_path / name)]
    assert main(["subscribe", "--platform", "console", "--channel", "soc", "microsoft", *data]) == 0
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(
        json.dumps(
            {
                "title": "Microsoft Exchange Online outage delays mail",
                "published": utcnow().isoformat(),
                "url": "https://example.com/exo-outage",
            }
        )
    )
    assert main(["ingest", str(fresh), str(FIXTURES / "feeds" / "microsoftsecurity.xml"), *flags, *data]) == 0
    store = RecordStore(Settings.from_env(tmp_path / name))
    try:
        return DeliveryPlanner(store, Subscriptions(store.db), Outbox(store.db), digest_threshold=1000).plan().posts
    finally:
        store.close()


def test_a_manual_ingest_of_old_records_never_floods_subscribed_channels(tmp_path, capsys):
    """Archives ingested by hand are history: searchable, not posted. A fresh story is still news."""
    assert _posts_planned(tmp_path, "default") == 1  # only the fresh story
    assert "kept as backlog" in capsys.readouterr().out
    assert _posts_planned(tmp_path, "post-old", "--post-old") > 1  # the July 2025 blog posts too
