"""Subscriptions: a channel's standing queries, and which new records answer them.

A subscription is written in the search language (``exchange outage -crypto``, ``kev``,
``vendor:fortinet severity>=high``) and evaluated by the very same code as search —
:meth:`retrieval.search.Searcher.matching` — so a channel gets what a search would have shown,
not what a cruder keyword filter would. Two differences from a question:

* **No time window.** A standing query is evaluated as if asked at the moment the record arrived
  (``now`` = its ingest time); time words in it ("today") are ignored.
* **No backlog.** A record stored before the subscription existed is not news to it; a backfill
  is explicit (``subscribe --since``).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from bot.health import ChannelHealth, ChannelState, ChannelStatus
from bot.outbox import ensure_schema
from bot.services import Subscription
from bot.stack_chat import strip_my_stack
from retrieval.database import Database
from retrieval.query import StructuredQuery, parse_query
from retrieval.records import ThreatRecord
from retrieval.search import Searcher, SearchResult
from retrieval.stack.model import DEFAULT_SCOPE
from retrieval.stack.service import StackService
from retrieval.store import RecordStore

__all__ = ["Match", "StandingQueryMatcher", "Subscriptions", "standing_query"]


def standing_query(text: str, *, now: datetime) -> StructuredQuery:
    """``text`` understood as a standing query asked at ``now``: search's parse, minus any time window.

    Raises ValueError when the text asks for nothing (no topic, entity or filter): a subscription to
    everything would post every record of every feed.
    """
    query = parse_query(text, now=now)
    if query.window is not None:
        query = replace(query, window=None)
    if not _asks_something(query):
        raise ValueError(
            f"{text!r} names no topic or filter; try e.g. `microsoft outage`, `kev`, `severity>=high` or `vendor:fortinet`"
        )
    return query


def _asks_something(query: StructuredQuery) -> bool:
    return bool(
        query.terms
        or query.vendors
        or query.products
        or query.cves
        or query.kinds
        or query.has_cve
        or query.exploited is not None
        or query.min_severity is not None
    )


# -- the book ----------------------------------------------------------------------------------------


class Subscriptions:
    """The subscriptions table. Implements ``bot.services.SubscriptionBook``."""

    def __init__(self, db: Database, *, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    def subscribe(
        self, *, platform: str, channel: str, query: str, created_by: str, created_at: float | None = None
    ) -> Subscription:
        """Add a standing query to a channel (the same text twice gives the existing subscription).

        Raises ValueError for a query that asks for nothing. ``created_at`` exists for backfills and
        tests; records ingested before it are not delivered.
        """
        text = " ".join(query.split())
        if not platform or not channel:
            raise ValueError("a subscription needs a platform and a channel")
        standing_query(text, now=datetime.now(UTC))  # validates
        existing = self.db.query(
            _SELECT + "WHERE s.platform = ? AND s.channel = ? AND s.query = ?",
            (platform, channel, text),
        )
        if existing:
            return _subscription(existing[0])
        created = self.clock() if created_at is None else created_at
        with self.db.transaction() as conn:
            while True:
                sub_id = "s" + secrets.token_hex(3)
                if not conn.execute("SELECT 1 FROM delivery_subscriptions WHERE id = ?", (sub_id,)).fetchone():
                    break
            conn.execute(
                "INSERT INTO delivery_subscriptions (id, platform, channel, query, created_by, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (sub_id, platform, channel, text, created_by, created),
            )
        return self.get(sub_id) or Subscription(
            sub_id, platform, channel, text, created_by, datetime.fromtimestamp(created, UTC)
        )

    def unsubscribe(self, *, platform: str, channel: str, subscription_id: str) -> bool:
        """Remove one of this channel's subscriptions; False when the channel has no such id."""
        with self.db.transaction() as conn:
            return (
                conn.execute(
                    "DELETE FROM delivery_subscriptions WHERE id = ? AND platform = ? AND channel = ?",
                    (subscription_id.strip(), platform, channel),
                ).rowcount
                > 0
            )

    def subscriptions(self, *, platform: str, channel: str) -> list[Subscription]:
        rows = self.db.query(
            _SELECT + "WHERE s.platform = ? AND s.channel = ? ORDER BY s.created_at, s.id",
            (platform, channel),
        )
        return [_subscription(r) for r in rows]

    def all(self) -> list[Subscription]:
        rows = self.db.query(_SELECT + "ORDER BY s.platform, s.channel, s.created_at, s.id")
        return [_subscription(r) for r in rows]

    def get(self, subscription_id: str) -> Subscription | None:
        rows = self.db.query(_SELECT + "WHERE s.id = ?", (subscription_id,))
        return _subscription(rows[0]) if rows else None

    def resume(self, *, platform: str, channel: str) -> int:
        """Re-enable a channel whose posts were disabled (``bot.health``): messages re-queued, -1 if it was fine."""
        return ChannelHealth(self.db, clock=self.clock).resume(platform, channel)

    def remove(self, subscription_id: str) -> bool:
        """Remove a subscription whatever its channel (the CLI's admin path)."""
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM delivery_subscriptions WHERE id = ?", (subscription_id,)).rowcount > 0


#: Subscriptions with their channel's delivery health (``bot.health``).
_SELECT = (
    "SELECT s.*, h.state AS health_state, h.failures AS health_failures, h.reason AS health_reason "
    "FROM delivery_subscriptions s LEFT JOIN delivery_channel_health h "
    "ON h.platform = s.platform AND h.channel = s.channel "
)


def _subscription(row) -> Subscription:
    state = row["health_state"] or "ok"
    problem = None
    if state != "ok":
        problem = ChannelStatus(
            row["platform"], row["channel"], ChannelState(state), row["health_failures"], row["health_reason"]
        ).describe()
    return Subscription(
        id=row["id"],
        platform=row["platform"],
        channel=row["channel"],
        query=row["query"],
        created_by=row["created_by"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        status=state,
        problem=problem,
    )


# -- matching ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A subscription answered by records of one incident: ``record_ids`` best first."""

    subscription: Subscription
    cluster_id: str
    record_ids: tuple[str, ...]
    score: float


#: Records per ``Searcher.matching`` call (its SQL lists one parameter per record): SQLite before 3.32 allows 999.
MATCH_CHUNK = 5000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 900


class _MemoEmbedder:
    """Query embeddings remembered: 200 subscriptions must not cost 200 embeddings on every poll.

    The store's model is only loaded on first use: ``threatbot subscriptions`` needs no model.
    """

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.cache: dict[str, np.ndarray] = {}

    def embed_one(self, text: str) -> np.ndarray:
        vector = self.cache.get(text)
        if vector is None:
            if len(self.cache) > 4096:
                self.cache.clear()
            vector = self.cache[text] = self.store.embedder.embed_one(text)
        return vector

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.store.embedder.embed(texts, progress=progress)


class _BatchView:
    """The store as ``Searcher`` sees it during one matching pass: the batch's records already parsed,
    query vectors cached. The rest is delegated by name, so what the view offers is spelt out here."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store
        self.embedder = _MemoEmbedder(store)
        self.batch: dict[str, ThreatRecord] = {}
        self.candidate_rows = store.candidate_rows
        self.count_matching = store.count_matching
        self.text_scores = store.text_scores
        self.vectors_for = store.vectors_for
        self.vectors_by_rowid = store.vectors_by_rowid
        self.count_cached = store.count_cached
        self.document_frequencies = store.document_frequencies
        self.capitalised_share = store.capitalised_share
        self.warm_up = store.warm_up

    @property
    def index(self):
        return self._store.index

    def get_many(self, ids: Sequence[str]) -> dict[str, ThreatRecord]:
        found = {i: self.batch[i] for i in ids if i in self.batch}
        missing = [i for i in ids if i not in found]
        if missing:
            found.update(self._store.get_many(missing))
        return found


class StandingQueryMatcher:
    """Evaluates subscriptions against newly arrived or changed records."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.stack = StackService(store.db)
        self._view = _BatchView(store)
        self.searcher = Searcher(self._view)  # type: ignore[arg-type]  # the view offers what Searcher reads

    def match(
        self,
        subscriptions: Sequence[Subscription],
        records: Sequence[ThreatRecord],
        *,
        arrived: dict[str, float] | None = None,
    ) -> list[Match]:
        """Which incidents among ``records`` each subscription should receive.

        ``arrived`` maps record id to the moment it became news (ingest or update time, POSIX
        seconds); the query is evaluated as of the latest of these, and a record that arrived
        before a subscription was created is not news to it.
        """
        if not subscriptions or not records:
            return []
        arrival = {r.id: (arrived or {}).get(r.id) or _ingest_time(r) for r in records}
        asked = datetime.fromtimestamp(max(arrival.values()), UTC) + _SLACK
        by_query: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            by_query.setdefault(subscription.query, []).append(subscription)
        matches: list[Match] = []
        self._view.batch = {r.id: r for r in records}
        try:
            for text, subs in by_query.items():
                mine, rest = strip_my_stack(text)
                try:
                    query = standing_query(rest, now=asked) if rest or not mine else None
                except ValueError:
                    continue  # stored before a stricter parser; it asks for nothing now
                if query is None:  # "my-stack" alone: every new story, if it touches the stack
                    results = [SearchResult(r, 1.0, self._cluster_members(r)) for r in records]
                else:
                    results = [
                        result
                        for start in range(0, len(records), MATCH_CHUNK)
                        for result in self.searcher.matching(query, records[start : start + MATCH_CHUNK])
                    ]
                for subscription in subs:
                    since = subscription.created_at.timestamp()
                    for result in self._on_stack(subscription, results) if mine else results:
                        fresh = [i for i in (result.record.id, *result.members) if arrival.get(i, 0.0) >= since]
                        if fresh:
                            cluster = result.record.cluster_id or result.record.id
                            matches.append(Match(subscription, cluster, tuple(fresh), result.score))
        finally:
            self._view.batch = {}
        return matches

    def _on_stack(self, subscription: Subscription, results: list[SearchResult]) -> list[SearchResult]:
        """The results that touch the stack of the subscription channel's workspace."""
        scope = self.stack.book.scope_of(subscription.platform, subscription.channel)
        if scope is None:
            scope = DEFAULT_SCOPE if subscription.platform in ("console", "webhook") else None
        if scope is None:
            return []
        matcher = self.stack.matcher(scope)
        return [r for r in results if matcher and matcher.touching(r.record)]

    def _cluster_members(self, record: ThreatRecord) -> list[str]:
        cluster = record.cluster_id or record.id
        return [m.id for m in self.store.cluster_members(cluster) if m.id != record.id]


#: A feed item stamped a few seconds after our clock (servers' clocks differ) still counts as arrived.
_SLACK = timedelta(minutes=5)


def _ingest_time(record: ThreatRecord) -> float:
    stamp = record.updated_at or record.fetched_at
    return stamp.timestamp() if stamp else time.time()
