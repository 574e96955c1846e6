"""What the Slack adapter keeps in threatbot's database (component ``slack``): cards, feedback, deliveries.

* **Cards** — every message the bot posts with buttons gets a short id that its buttons carry
  (``value = "<card id>:<n>"``), and a row holding what was shown: the reply (records without their
  bodies), the question that produced it, the conversation thread it belongs to. Buttons then work
  on ephemeral messages (whose content Slack does not send back) and after a restart.
* **Feedback** — 👍/👎 on a story, stored with the question (and its understood filters) that
  produced it: one vote per person, story and card; a second click changes the vote.
* **Deliveries** — the feed target's ledger: which delivery keys were posted where (channel, ``ts``),
  so a repeated delivery returns the first post instead of posting twice, and updates know which
  post to edit. A row left ``sending`` means a process died mid-send: the target then looks for the
  key in the channel's message metadata before posting again.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.messages import Reply, ReplyItem, ReplyKind, ThreadKey
from retrieval.database import Database, apply_component_migrations
from retrieval.records import STORED, ThreatRecord

__all__ = ["Card", "Delivery", "SlackStore", "reply_from_json", "reply_to_json"]

MIGRATIONS = [
    """
    CREATE TABLE slack_cards (
        id TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        user_id TEXT NOT NULL,
        query TEXT NOT NULL,
        filters TEXT NOT NULL,
        reply TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX slack_cards_created ON slack_cards(created_at);
    CREATE TABLE slack_feedback (
        card_id TEXT NOT NULL,
        record_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        vote INTEGER NOT NULL,
        query TEXT NOT NULL,
        filters TEXT NOT NULL,
        channel TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (card_id, record_id, user_id)
    );
    CREATE TABLE slack_deliveries (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        state TEXT NOT NULL,
        ts TEXT,
        headline_id TEXT,
        card_id TEXT,
        started_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX slack_deliveries_ts ON slack_deliveries(channel, ts);
    """,
]

#: Cards older than this are forgotten: their buttons then answer "too old" (Slack keeps messages longer).
CARD_TTL_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class Card:
    """A posted message's buttons' memory."""

    id: str
    origin: str  # "reply" (an answer to someone) or "feed" (a delivery)
    channel: str
    #: The conversation thread the card's answer lives in (a core thread id: a ts, "im" or "new-…").
    thread: str
    user_id: str
    query: str
    filters: dict[str, Any]
    reply: Reply
    created_at: float


@dataclass(frozen=True)
class Delivery:
    key: str
    kind: str  # "post" | "digest" | "update"
    channel: str
    state: str  # "sending" | "sent"
    ts: str | None
    headline_id: str | None
    card_id: str | None
    started_at: float


class SlackStore:
    """The three tables over one :class:`~retrieval.database.Database` (the record store's, or its own)."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        with db.lock:
            apply_component_migrations(db.conn, "slack", MIGRATIONS)
        self._last_purge = 0.0

    # -- cards -----------------------------------------------------------------------------------

    def save_card(
        self, reply: Reply, *, origin: str, channel: str, thread: str, user_id: str = "", query: str = ""
    ) -> str:
        card_id = secrets.token_hex(6)
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO slack_cards (id, origin, channel, thread, user_id, query, filters, reply, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    card_id,
                    origin,
                    channel,
                    thread,
                    user_id,
                    query,
                    json.dumps(reply.filters, default=str),
                    reply_to_json(reply),
                    now,
                ),
            )
            if now - self._last_purge > 3600:
                self._last_purge = now
                conn.execute("DELETE FROM slack_cards WHERE created_at < ?", (now - CARD_TTL_SECONDS,))
        return card_id

    def card(self, card_id: str) -> Card | None:
        rows = self.db.query("SELECT * FROM slack_cards WHERE id = ?", (card_id,))
        if not rows:
            return None
        row = rows[0]
        return Card(
            id=row["id"],
            origin=row["origin"],
            channel=row["channel"],
            thread=row["thread"],
            user_id=row["user_id"],
            query=row["query"],
            filters=json.loads(row["filters"]),
            reply=reply_from_json(row["reply"]),
            created_at=row["created_at"],
        )

    # -- feedback --------------------------------------------------------------------------------

    def record_vote(self, card: Card, record_id: str, user_id: str, vote: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO slack_feedback (card_id, record_id, user_id, vote, query, filters, channel, created_at) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(card_id, record_id, user_id) DO UPDATE SET "
                "vote = excluded.vote, created_at = excluded.created_at",
                (
                    card.id,
                    record_id,
                    user_id,
                    1 if vote > 0 else -1,
                    card.query,
                    json.dumps(card.filters, default=str),
                    card.channel,
                    self.clock(),
                ),
            )

    def feedback(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest votes, newest first: what ``threatbot`` (or an analyst) reads to tune ranking."""
        rows = self.db.query("SELECT * FROM slack_feedback ORDER BY created_at DESC LIMIT ?", (limit,))
        return [dict(row) | {"filters": json.loads(row["filters"])} for row in rows]

    # -- delivery ledger --------------------------------------------------------------------------

    def delivery(self, key: str) -> Delivery | None:
        rows = self.db.query("SELECT * FROM slack_deliveries WHERE key = ?", (key,))
        return _delivery(rows[0]) if rows else None

    def delivery_at(self, channel: str, ts: str) -> Delivery | None:
        """The post or digest that became message ``ts`` in ``channel``."""
        rows = self.db.query(
            "SELECT * FROM slack_deliveries WHERE channel = ? AND ts = ? AND kind != 'update' AND state = 'sent'",
            (channel, ts),
        )
        return _delivery(rows[0]) if rows else None

    def begin_delivery(self, key: str, *, kind: str, channel: str, headline_id: str | None, card_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO slack_deliveries (key, kind, channel, state, headline_id, card_id, started_at) "
                "VALUES (?,?,?,'sending',?,?,?) ON CONFLICT(key) DO UPDATE SET state = 'sending', "
                "channel = excluded.channel, headline_id = excluded.headline_id, card_id = excluded.card_id, "
                "started_at = excluded.started_at",
                (key, kind, channel, headline_id, card_id, self.clock()),
            )

    def finish_delivery(self, key: str, ts: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE slack_deliveries SET state = 'sent', ts = ?, sent_at = ? WHERE key = ?",
                (ts, self.clock(), key),
            )

    def abandon_delivery(self, key: str) -> None:
        """Slack refused the send: nothing was posted, so the next attempt need not look for it."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM slack_deliveries WHERE key = ? AND state = 'sending'", (key,))


def _delivery(row) -> Delivery:
    return Delivery(
        key=row["key"],
        kind=row["kind"],
        channel=row["channel"],
        state=row["state"],
        ts=row["ts"],
        headline_id=row["headline_id"],
        card_id=row["card_id"],
        started_at=row["started_at"],
    )


# -- replies as JSON ---------------------------------------------------------------------------------


def _record_json(record: ThreatRecord) -> dict[str, Any]:
    data = record.to_json_dict()
    data["body"] = None  # cards never show bodies; they can be long
    return data


def _item_json(item: ReplyItem | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "label": item.label,
        "record": _record_json(item.record),
        "member_ids": item.member_ids,
        "member_sources": item.member_sources,
        "reported_after": item.reported_after,
    }


def _item(data: dict[str, Any] | None) -> ReplyItem | None:
    if data is None:
        return None
    return ReplyItem(
        label=data["label"],
        record=ThreatRecord.model_validate(data["record"], context=STORED),
        member_ids=list(data.get("member_ids", [])),
        member_sources=list(data.get("member_sources", [])),
        reported_after=str(data.get("reported_after", "")),
    )


def reply_to_json(reply: Reply) -> str:
    """A reply as JSON, enough to render it again (records without bodies)."""
    return json.dumps(
        {
            "text": reply.text,
            "thread_key": [reply.thread_key.platform, reply.thread_key.channel, reply.thread_key.thread],
            "kind": reply.kind.value,
            "items": [_item_json(i) for i in reply.items],
            "focus": _record_json(reply.focus) if reply.focus else None,
            "latest_before": _item_json(reply.latest_before),
            "filters": reply.filters,
            "window": reply.window,
            "suggestions": reply.suggestions,
            "ephemeral": reply.ephemeral,
            "generated": reply.generated,
        },
        ensure_ascii=False,
        default=str,
    )


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    try:
        kind = ReplyKind(data.get("kind", "notice"))
    except ValueError:
        kind = ReplyKind.NOTICE
    return Reply(
        text=data["text"],
        thread_key=ThreadKey(*data["thread_key"]),
        kind=kind,
        items=[i for i in (_item(d) for d in data.get("items", [])) if i is not None],
        focus=ThreatRecord.model_validate(data["focus"], context=STORED) if data.get("focus") else None,
        latest_before=_item(data.get("latest_before")),
        filters=data.get("filters") or {},
        window=data.get("window"),
        suggestions=list(data.get("suggestions", [])),
        ephemeral=bool(data.get("ephemeral")),
        generated=bool(data.get("generated")),
    )
