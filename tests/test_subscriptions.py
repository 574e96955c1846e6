"""Subscriptions: the book (the contract the chat core uses) and matching with search's understanding."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.outbox import Outbox
from bot.poller import DeliveryPlanner
from bot.services import SubscriptionBook
from bot.subscriptions import StandingQueryMatcher, Subscriptions, standing_query
from retrieval.database import Database
from retrieval.ingest import Ingestor
from tests.conftest import FIXTURES, needs_fixtures

SEED = FIXTURES / "seed" / "exchange-online-outage-radar-page.txt"
CORPUS = FIXTURES / "corpus-2025" / "corpus.jsonl"
#: Real corpus records: an Exchange Online outage, and crypto-exchange news that says "exchange" too.
EXCHANGE_OUTAGE = "s33r:56d30273b37a"
CRYPTO_EXCHANGE = ("s33r:541f2ba44e63", "s33r:41d0d4560320", "s33r:e2e712bd1395", "s33r:7d0553719ce6")


@pytest.fixture
def book(tmp_path) -> Subscriptions:
    return Subscriptions(Database(tmp_path / "t.sqlite3"))


def test_the_book_keeps_a_channels_standing_queries(book: Subscriptions) -> None:
    contract: SubscriptionBook = book  # what the chat core is given
    assert callable(contract.subscribe) and callable(contract.unsubscribe) and callable(contract.subscriptions)
    first = book.subscribe(platform="slack", channel="C1", query="  exchange   outage -crypto ", created_by="U1")
    assert first.query == "exchange outage -crypto" and first.id.startswith("s")
    again = book.subscribe(platform="slack", channel="C1", query="exchange outage -crypto", created_by="U2")
    assert again == first, "the same query twice is one subscription"
    other = book.subscribe(platform="slack", channel="C2", query="kev", created_by="U1")
    assert [s.id for s in book.subscriptions(platform="slack", channel="C1")] == [first.id]
    assert not book.unsubscribe(platform="slack", channel="C1", subscription_id=other.id), "not this channel's"
    assert book.unsubscribe(platform="slack", channel="C2", subscription_id=other.id)
    assert book.subscriptions(platform="slack", channel="C2") == []
    assert [s.id for s in book.all()] == [first.id]


@pytest.mark.parametrize("query", ["news", "-crypto", "", "the latest"])
def test_a_subscription_must_ask_for_something(book: Subscriptions, query: str) -> None:
    with pytest.raises(ValueError):
        book.subscribe(platform="slack", channel="C1", query=query, created_by="U1")


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("kev", {"exploited": True}),
        ("severity>=high", {"min_severity": "high"}),
        ("vendor:fortinet", {"vendors": ["Fortinet"]}),
        ("ransomware healthcare", {"kinds": ["ransomware"], "terms": ["healthcare"]}),
    ],
)
def test_standing_queries_speak_the_search_language(query: str, expect: dict) -> None:
    filters = standing_query(query, now=datetime(2026, 6, 2, 18, tzinfo=UTC)).to_filters()
    assert {k: filters[k] for k in expect} == expect


def test_a_standing_query_has_no_time_window() -> None:
    query = standing_query("exchange outage today", now=datetime(2026, 6, 2, 18, tzinfo=UTC))
    assert query.window is None and query.kinds and query.products == ["Exchange"]


# -- matching with search's understanding ------------------------------------------------------------


def _seed_record() -> dict:
    """The seed page's Exchange Online outage as a record: title, time, source and description from the page."""
    text = SEED.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if "Exchange Online outage" in line)
    description = text.split("\nDescription\n", 1)[1].strip().split("\n\n", 1)[0]
    return {
        "title": title.strip(),
        "published": "2026-06-02T17:02:40+00:00",
        "summary": description,
        "url": "https://www.bleepingcomputer.com/news/microsoft/microsoft-exchange-online-outage-causes-email-delays-failures/",
        "source": "BleepingComputer",
    }


def _corpus(*ids: str) -> list[dict]:
    wanted, found = set(ids), {}
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            match = re.search(r'"id": "([^"]+)"', line)
            if match and match.group(1) in wanted:
                found[match.group(1)] = json.loads(line)
    assert set(found) == wanted
    return [found[i] for i in ids]


@needs_fixtures
def test_exchange_outage_gets_exchange_online_not_crypto_exchanges(store, tmp_path) -> None:
    book = Subscriptions(store.db)
    exchange = book.subscribe(platform="slack", channel="C-MAIL", query="exchange outage", created_by="U1")
    crypto = book.subscribe(platform="slack", channel="C-CRYPTO", query="crypto exchange", created_by="U1")
    time.sleep(0.01)
    feed = tmp_path / "items.jsonl"
    rows = [_seed_record(), *_corpus(EXCHANGE_OUTAGE, *CRYPTO_EXCHANGE)]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = Ingestor(store).ingest(str(feed))
    assert report.new == len(rows), report.line()
    records = [c.record for c in report.upsert.changes]
    arrived = {r.id: r.fetched_at.timestamp() for r in records}

    matcher = StandingQueryMatcher(store)
    matches = matcher.match([exchange, crypto], records, arrived=arrived)
    by_channel: dict[str, set[str]] = {}
    titles = {r.id: r.title for r in records}
    for match in matches:
        by_channel.setdefault(match.subscription.channel, set()).update(titles[i] for i in match.record_ids)
    mail = by_channel.get("C-MAIL", set())
    assert "Microsoft Exchange Online outage causes email delays, failures" in mail
    assert "Microsoft Exchange Online outage blocks access to mailboxes via IMAP4" in mail
    assert not any("rypto" in t or "Upbit" in t for t in mail), mail
    assert any("Upbit" in t for t in by_channel.get("C-CRYPTO", ())), "the crypto channel does get its exchanges"


@needs_fixtures
def test_a_new_subscription_does_not_replay_the_backlog_unless_asked(store, tmp_path) -> None:
    feed = tmp_path / "items.jsonl"
    feed.write_text(json.dumps(_seed_record()) + "\n", encoding="utf-8")
    outbox = Outbox(store.db)
    book = Subscriptions(store.db)
    planner = DeliveryPlanner(store, book, outbox)
    Ingestor(store).ingest(str(feed))
    sub = book.subscribe(platform="slack", channel="C-MAIL", query="exchange outage", created_by="U1")
    assert planner.plan().posts == 0, "stored before the subscription: backlog"
    assert outbox.stats().counts == {}

    backfill = planner.backfill(sub, datetime(2026, 6, 1, tzinfo=UTC))
    assert backfill.posts == 1
    assert planner.backfill(sub, datetime(2026, 6, 1, tzinfo=UTC)).posts == 0, "the channel has it already"
    assert sum(outbox.stats().counts["pending"].values()) == 1
    assert planner.backfill(sub, datetime(2026, 6, 2, 18, tzinfo=UTC) + timedelta(days=1)).posts == 0
