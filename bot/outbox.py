"""The durable outbox: every message owed to a channel is a row in SQLite before anything is sent.

Why a table and not a queue in memory: the poller and the deliverer can die at any instant (a
deploy, an OOM kill, a power cut) and the promise is still "every new incident posted once, to the
right channels, never lost". So:

* **Planning is one transaction.** The rows owed for a batch of changed records, the claims
  "cluster K is (being) posted in channel C", and the marks "delivery has seen record R in this
  state" commit together. A crash before the commit leaves the records unseen, so the next cycle
  plans them again; after it, the rows are there.
* **Every row has an idempotency key** (``post:<platform>:<channel>:<cluster>``, …) that is UNIQUE
  here and travels with the message, so planning twice never queues twice and a receiver can drop
  a repeat.
* **Sending is at-least-once.** A row is marked ``sending`` (committed) before the target is called
  and ``sent`` (committed, with the platform's message id) after. A crash between the two leaves
  ``sending``, which :meth:`Outbox.recover` turns back into ``pending``: the message is sent again
  with the same key and the target's dedupe makes the repeat harmless.

The delivery component's tables (sources, subscriptions, outbox) share one schema version,
component ``"delivery"`` in the record database; :func:`ensure_schema` creates or upgrades them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot import metrics
from bot.delivery.base import PostRef
from bot.messages import ThreadKey
from retrieval.database import Database, apply_component_migrations
from retrieval.record_queries import snapshot_states_statement, states_unlike_snapshot

__all__ = [
    "CRASH_ENV",
    "CRASH_EXIT_CODE",
    "Claim",
    "Outbox",
    "OutboxRow",
    "Planned",
    "RowKind",
    "RowStatus",
    "SeenState",
    "crash_point",
    "ensure_schema",
]

#: Delivery's snapshot of each record's state as last planned for (``retrieval.record_queries``).
SEEN_TABLE = "delivery_seen"

#: The delivery component's schema; entry N upgrades version N to N+1 (``retrieval.database``).
MIGRATIONS: list[str] = [
    f"""
    CREATE TABLE delivery_sources (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        interval_seconds INTEGER NOT NULL,
        full_articles INTEGER NOT NULL DEFAULT 0,
        enabled INTEGER NOT NULL DEFAULT 1,
        origin TEXT NOT NULL,
        added_by TEXT,
        added_at REAL NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        last_attempt REAL,
        last_success REAL,
        last_error TEXT,
        last_error_at REAL,
        disabled_reason TEXT,
        next_due REAL NOT NULL DEFAULT 0,
        min_interval REAL
    );
    CREATE TABLE delivery_subscriptions (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        query TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (platform, channel, query)
    );
    CREATE TABLE delivery_seen (
        record_id TEXT PRIMARY KEY,
        cluster_id TEXT NOT NULL,
        severity INTEGER NOT NULL,
        exploited INTEGER NOT NULL
    );
    -- Records stored before delivery existed are the backlog: seen, never posted.
    {snapshot_states_statement(SEEN_TABLE)}
    CREATE TABLE delivery_outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        cluster_id TEXT,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL,
        last_error TEXT,
        ref TEXT
    );
    CREATE INDEX delivery_outbox_due ON delivery_outbox (status, next_attempt);
    CREATE TABLE delivery_posts (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        cluster_id TEXT NOT NULL,
        outbox_id INTEGER NOT NULL REFERENCES delivery_outbox (id),
        ref TEXT,
        PRIMARY KEY (platform, channel, cluster_id)
    );
    CREATE INDEX delivery_posts_cluster ON delivery_posts (cluster_id);
    CREATE INDEX delivery_posts_outbox ON delivery_posts (outbox_id);
    CREATE TABLE delivery_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: delivery health per channel (bot.health): failing, then disabled with the platform's reason.
    """
    CREATE TABLE delivery_channel_health (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        code TEXT,
        last_failure_at REAL,
        disabled_at REAL,
        notified_at REAL,
        PRIMARY KEY (platform, channel)
    );
    """,
]

COMPONENT = "delivery"


def ensure_schema(db: Database) -> None:
    """Create or upgrade the delivery tables in ``db`` (idempotent, cheap when current)."""
    with db.lock:
        apply_component_migrations(db.conn, COMPONENT, MIGRATIONS)


# -- fault injection ---------------------------------------------------------------------------------

#: Set to a crash point's name to make the process die there, as a kill -9 would (tests only).
CRASH_ENV = "THREATBOT_CRASH_AT"
CRASH_EXIT_CODE = 86


def crash_point(name: str) -> None:
    """Die on the spot if ``THREATBOT_CRASH_AT`` names this point: no cleanup, no commit, no flush.

    The points: ``poll.after_ingest`` (records stored, nothing planned, a first poll's backlog not yet
    marked), ``poll.after_enqueue`` (rows
    queued, nothing sent), ``deliver.before_send`` (row marked sending), ``deliver.after_send`` (the
    target accepted the message, the outbox does not know yet), ``slack.after_post`` (Slack has the
    message, neither the Slack ledger nor the outbox knows its ts).
    """
    if os.environ.get(CRASH_ENV) == name:
        os._exit(CRASH_EXIT_CODE)


# -- rows ------------------------------------------------------------------------------------------


class RowKind(StrEnum):
    POST = "post"
    UPDATE = "update"
    DIGEST = "digest"


class RowStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True)
class SeenState:
    """What delivery last knew of a record: a change to any of these may be news for a channel."""

    record_id: str
    cluster_id: str
    severity: int
    exploited: bool


@dataclass(frozen=True)
class Planned:
    """A message the planner decided a channel is owed. ``cluster_ids``: the incidents it posts (claims)."""

    kind: RowKind
    platform: str
    channel: str
    key: str
    payload: dict[str, Any]
    cluster_ids: tuple[str, ...] = ()
    #: For updates: the incident whose post it updates.
    cluster_id: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    kind: RowKind
    platform: str
    channel: str
    cluster_id: str | None
    payload: dict[str, Any]
    status: RowStatus
    attempts: int
    next_attempt: float
    created_at: float
    sent_at: float | None = None
    last_error: str | None = None
    ref: PostRef | None = None
    #: For updates: the message being updated (the claim's ref).
    parent: PostRef | None = None


@dataclass(frozen=True)
class Claim:
    """Cluster ``cluster_id`` is posted (or queued to be) in a channel by outbox row ``outbox_id``."""

    platform: str
    channel: str
    cluster_id: str
    outbox_id: int
    status: RowStatus
    ref: PostRef | None = None


@dataclass
class OutboxStats:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    oldest_pending: float | None = None

    def total(self, status: RowStatus) -> int:
        return sum(self.counts.get(status.value, {}).values())


class Outbox:
    """The delivery rows and claims over the record database (see the module docstring)."""

    def __init__(self, db: Database, *, clock=time.time) -> None:
        self.db = db
        self.clock = clock
        ensure_schema(db)

    # -- planning ---------------------------------------------------------------------------------

    def unseen(self, limit: int = 5000) -> list[tuple[SeenState, SeenState | None]]:
        """Records whose current state delivery has not planned for yet: (now, as last seen or None)."""
        return [
            (SeenState(*now), SeenState(*seen) if seen is not None else None)
            for now, seen in states_unlike_snapshot(self.db, SEEN_TABLE, limit=limit)
        ]

    def claims(self, cluster_ids: Iterable[str]) -> list[Claim]:
        """Every channel's claim on any of ``cluster_ids``."""
        ids = sorted(set(cluster_ids))
        out: list[Claim] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.query(
                "SELECT c.platform, c.channel, c.cluster_id, c.outbox_id, c.ref, o.status FROM delivery_posts c "
                f"JOIN delivery_outbox o ON o.id = c.outbox_id WHERE c.cluster_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out += [
                Claim(
                    r["platform"], r["channel"], r["cluster_id"], r["outbox_id"], RowStatus(r["status"]), _ref(r["ref"])
                )
                for r in rows
            ]
        return out

    def seen_ids(self, record_ids: Sequence[str]) -> set[str]:
        """Which of ``record_ids`` delivery has seen (in any state)."""
        out: set[str] = set()
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start : start + 500])
            rows = self.db.query(
                f"SELECT record_id FROM delivery_seen WHERE record_id IN ({','.join('?' * len(chunk))})", chunk
            )
            out.update(r["record_id"] for r in rows)
        return out

    def cluster_states(self, cluster_ids: Iterable[str]) -> dict[str, tuple[int, bool]]:
        """Per incident, as delivery last saw it: (highest severity rank, any member exploited)."""
        ids = sorted(set(cluster_ids))
        out: dict[str, tuple[int, bool]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in self.db.query(
                "SELECT cluster_id, max(severity) AS severity, max(exploited) AS exploited FROM delivery_seen "
                f"WHERE cluster_id IN ({','.join('?' * len(chunk))}) GROUP BY cluster_id",
                chunk,
            ):
                out[row["cluster_id"]] = (row["severity"], bool(row["exploited"]))
        return out

    def commit_plan(self, planned: Sequence[Planned], seen: Sequence[SeenState]) -> int:
        """Queue ``planned`` and mark ``seen`` in one transaction; returns the rows actually added.

        A row whose key exists is skipped (planning the same change twice queues it once); a post
        whose incident the channel already has is dropped rather than posted twice.
        """
        now = self.clock()
        added = 0
        with self.db.transaction() as conn:
            for item in planned:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO delivery_outbox (key, kind, platform, channel, cluster_id, payload, "
                    "status, attempts, next_attempt, created_at) VALUES (?,?,?,?,?,?,'pending',0,?,?)",
                    (
                        item.key,
                        item.kind.value,
                        item.platform,
                        item.channel,
                        item.cluster_id,
                        json.dumps(item.payload),
                        now,
                        now,
                    ),
                )
                if cursor.rowcount == 0:
                    continue
                row_id = cursor.lastrowid
                if item.kind is not RowKind.UPDATE:
                    claimed = sum(
                        conn.execute(
                            "INSERT OR IGNORE INTO delivery_posts (platform, channel, cluster_id, outbox_id) "
                            "VALUES (?,?,?,?)",
                            (item.platform, item.channel, cluster, row_id),
                        ).rowcount
                        for cluster in item.cluster_ids
                    )
                    if claimed == 0:
                        conn.execute("DELETE FROM delivery_outbox WHERE id = ?", (row_id,))
                        continue
                added += 1
            conn.executemany(
                "INSERT OR REPLACE INTO delivery_seen (record_id, cluster_id, severity, exploited) VALUES (?,?,?,?)",
                [(s.record_id, s.cluster_id, s.severity, int(s.exploited)) for s in seen],
            )
        return added

    # -- sending ----------------------------------------------------------------------------------

    def recover(self) -> int:
        """Rows left ``sending`` by a process that died: back to ``pending`` (sent again, same key)."""
        with self.db.transaction() as conn:
            return conn.execute("UPDATE delivery_outbox SET status = 'pending' WHERE status = 'sending'").rowcount

    def due(self, now: float | None = None, *, limit: int = 200) -> list[OutboxRow]:
        """Pending rows whose time has come, oldest first; an update waits until its post has a message id."""
        rows = self.db.query(
            "SELECT o.*, c.ref AS parent_ref FROM delivery_outbox o LEFT JOIN delivery_posts c "
            "ON o.kind = 'update' AND c.platform = o.platform AND c.channel = o.channel AND c.cluster_id = o.cluster_id "
            "WHERE o.status = 'pending' AND o.next_attempt <= ? AND (o.kind != 'update' OR c.ref IS NOT NULL) "
            "ORDER BY o.id LIMIT ?",
            (self.clock() if now is None else now, limit),
        )
        return [_row(r) for r in rows]

    def next_attempt_at(self) -> float | None:
        """When the earliest sendable pending row becomes due (None: nothing; updates wait for their post)."""
        row = self.db.query(
            "SELECT min(o.next_attempt) FROM delivery_outbox o LEFT JOIN delivery_posts c "
            "ON o.kind = 'update' AND c.platform = o.platform AND c.channel = o.channel AND c.cluster_id = o.cluster_id "
            "WHERE o.status = 'pending' AND (o.kind != 'update' OR c.ref IS NOT NULL)"
        )[0]
        return row[0]

    def mark_sending(self, row_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?", (row_id,)
            )

    def mark_sent(self, row: OutboxRow, ref: PostRef) -> None:
        """The target accepted the message: remember where it landed, for updates to that incident."""
        encoded = json.dumps(ref.to_json())
        sent_at = self.clock()
        metrics.observe_delivery(row.created_at, sent_at)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_outbox SET status = 'sent', sent_at = ?, ref = ?, last_error = NULL WHERE id = ?",
                (sent_at, encoded, row.id),
            )
            if row.kind is RowKind.UPDATE:
                conn.execute(
                    "UPDATE delivery_posts SET ref = ? WHERE platform = ? AND channel = ? AND cluster_id = ?",
                    (encoded, row.platform, row.channel, row.cluster_id),
                )
            else:
                conn.execute("UPDATE delivery_posts SET ref = ? WHERE outbox_id = ?", (encoded, row.id))

    def mark_retry(self, row_id: int, error: str, next_attempt: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_outbox SET status = 'pending', last_error = ?, next_attempt = ? WHERE id = ?",
                (error[:500], next_attempt, row_id),
            )

    def mark_dead(self, row: OutboxRow, error: str) -> None:
        """Give up on a row; updates waiting on a post that will never exist die with it."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_outbox SET status = 'dead', last_error = ? WHERE id = ?", (error[:500], row.id)
            )
            if row.kind is not RowKind.UPDATE:
                conn.execute(
                    "UPDATE delivery_outbox SET status = 'dead', last_error = ? WHERE kind = 'update' "
                    "AND status = 'pending' AND EXISTS (SELECT 1 FROM delivery_posts c WHERE c.outbox_id = ? "
                    "AND c.platform = delivery_outbox.platform AND c.channel = delivery_outbox.channel "
                    "AND c.cluster_id = delivery_outbox.cluster_id)",
                    (f"its post failed: {error}"[:500], row.id),
                )

    # -- feed posts -------------------------------------------------------------------------------

    def incident_at(self, key: ThreadKey) -> str | None:
        """The headline record of the feed post whose thread ``key`` is (``bot.incidents.FeedPostIndex``).

        A post's thread is the message it became (Slack: its ``ts``) or the thread it opened (Discord:
        ``PostRef.thread_id``, which may also be the channel its messages arrive in). A digest
        covers several incidents, so its thread is about none in particular: None.
        """
        rows = self.db.query(
            "SELECT o.kind, o.payload FROM delivery_posts c JOIN delivery_outbox o ON o.id = c.outbox_id "
            "WHERE c.platform = ? AND c.ref IS NOT NULL AND ("
            "(c.channel = ? AND json_extract(c.ref, '$.message_id') = ?) "
            "OR json_extract(c.ref, '$.thread_id') IN (?, ?)) LIMIT 2",
            (key.platform, key.channel, key.thread, key.thread, key.channel),
        )
        if not rows or rows[0]["kind"] != RowKind.POST.value:
            return None
        record_ids = json.loads(rows[0]["payload"]).get("record_ids") or []
        return str(record_ids[0]) if record_ids else None

    # -- reporting --------------------------------------------------------------------------------

    def stats(self) -> OutboxStats:
        stats = OutboxStats()
        for row in self.db.query("SELECT status, kind, count(*) AS n FROM delivery_outbox GROUP BY status, kind"):
            stats.counts.setdefault(row["status"], {})[row["kind"]] = row["n"]
        stats.oldest_pending = self.db.query(
            "SELECT min(created_at) FROM delivery_outbox WHERE status IN ('pending', 'sending')"
        )[0][0]
        return stats

    def rows(self, *, status: RowStatus | None = None, limit: int = 50) -> list[OutboxRow]:
        """The newest rows (optionally of one status), for ``threatbot deliveries``."""
        where = "WHERE o.status = ?" if status else ""
        rows = self.db.query(
            "SELECT o.*, NULL AS parent_ref FROM delivery_outbox o " + where + " ORDER BY o.id DESC LIMIT ?",
            (status.value, limit) if status else (limit,),
        )
        return [_row(r) for r in rows]

    def retry_dead(self) -> int:
        """Put every dead row back in the queue (after fixing a token or a webhook URL)."""
        with self.db.transaction() as conn:
            return conn.execute(
                "UPDATE delivery_outbox SET status = 'pending', next_attempt = ?, attempts = 0 WHERE status = 'dead'",
                (self.clock(),),
            ).rowcount


def _ref(encoded: str | None) -> PostRef | None:
    return PostRef.from_json(json.loads(encoded)) if encoded else None


def _row(r) -> OutboxRow:
    return OutboxRow(
        id=r["id"],
        key=r["key"],
        kind=RowKind(r["kind"]),
        platform=r["platform"],
        channel=r["channel"],
        cluster_id=r["cluster_id"],
        payload=json.loads(r["payload"]),
        status=RowStatus(r["status"]),
        attempts=r["attempts"],
        next_attempt=r["next_attempt"],
        created_at=r["created_at"],
        sent_at=r["sent_at"],
        last_error=r["last_error"],
        ref=_ref(r["ref"]),
        parent=_ref(r["parent_ref"]),
    )
