"""Thread memory: what a conversation was about, so follow-ups need not repeat it.

Kept in the record database's SQLite file (its own versioned tables, component
``conversation``) so a restarted bot still understands "only critical ones" in a thread it
answered yesterday. A thread idle longer than the TTL (env ``THREATBOT_THREAD_TTL_HOURS``,
default 72) is forgotten: a follow-up there is read as a new question.

The state stores the question as the asker typed it plus the refinements since, each with the
moment it was said — not a parsed query — so a newer query parser reads old threads correctly.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from bot.messages import ThreadKey
from retrieval.database import Database, apply_component_migrations

DEFAULT_TTL_HOURS = 72.0
#: Turns of the conversation kept for the LLM's context; older ones are dropped.
MAX_TURNS = 12
#: Story ids remembered per thread for "more" and "the seventh one".
MAX_RESULT_IDS = 50

MIGRATIONS = [
    """
    CREATE TABLE conversation_threads (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (platform, channel, thread)
    );
    CREATE INDEX conversation_threads_expiry ON conversation_threads(expires_at);
    """,
]


def ttl_from_env() -> timedelta:
    """The thread TTL from the settings (``THREATBOT_THREAD_TTL_HOURS``, hours, may be fractional)."""
    from bot.config import Settings

    return timedelta(hours=Settings.load().thread_ttl_hours)


@dataclass
class Refinement:
    """One change to the thread's question: the words that said it and when (for "yesterday")."""

    text: str
    at: str  # ISO time of saying it


@dataclass
class Turn:
    role: str  # "user" or "bot"
    text: str


@dataclass
class ThreadState:
    """What a thread is about. Plain data, JSON-serialisable."""

    #: The question as asked ("any Exchange outages today?"); empty for threads that only showed a record.
    question: str = ""
    #: The command that asked it: "ask", "search" or "latest" ("latest" sorts newest first).
    mode: str = "ask"
    asked_at: str = ""
    tz: str = "UTC"
    refinements: list[Refinement] = field(default_factory=list)
    #: The stories listed so far in this thread, in the order numbered (1-based labels = index + 1).
    result_ids: list[str] = field(default_factory=list)
    #: How many of ``result_ids`` have been shown ("more" continues from here).
    shown: int = 0
    #: The record follow-up field questions are about.
    focus_id: str | None = None
    #: When the thread last got a list of stories: "any updates?" looks after it.
    answered_at: str = ""
    turns: list[Turn] = field(default_factory=list)

    def add_turn(self, role: str, text: str) -> None:
        self.turns.append(Turn(role, text[:2000]))
        del self.turns[:-MAX_TURNS]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ThreadState:
        data = json.loads(text)
        data["refinements"] = [Refinement(**r) for r in data.get("refinements", [])]
        data["turns"] = [Turn(**t) for t in data.get("turns", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class ThreadStore:
    """Thread states in SQLite, with expiry. Safe to share between adapter threads."""

    def __init__(self, db: Database, ttl: timedelta | None = None) -> None:
        self.db = db
        self.ttl = ttl if ttl is not None else ttl_from_env()
        with db.lock:
            apply_component_migrations(db.conn, "conversation", MIGRATIONS)
        self._purge_lock = threading.Lock()
        self._last_purge = 0.0

    def load(self, key: ThreadKey, now: datetime) -> ThreadState | None:
        """The thread's state, or None when unknown or expired."""
        rows = self.db.query(
            "SELECT state, expires_at FROM conversation_threads WHERE platform = ? AND channel = ? AND thread = ?",
            (key.platform, key.channel, key.thread),
        )
        if not rows or rows[0]["expires_at"] <= now.timestamp():
            return None
        return ThreadState.from_json(rows[0]["state"])

    def save(self, key: ThreadKey, state: ThreadState, now: datetime) -> None:
        stamp = now.timestamp()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO conversation_threads (platform, channel, thread, state, created_at, updated_at, expires_at) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(platform, channel, thread) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                (
                    key.platform,
                    key.channel,
                    key.thread,
                    state.to_json(),
                    stamp,
                    stamp,
                    stamp + self.ttl.total_seconds(),
                ),
            )
        self._maybe_purge(stamp)

    def copy(self, source: ThreadKey, target: ThreadKey, now: datetime) -> bool:
        """Give ``target`` the state of ``source`` (an adapter learned the posted reply's thread id)."""
        state = self.load(source, now)
        if state is None:
            return False
        self.save(target, state, now)
        return True

    def list_threads(self, platform: str, channel: str, now: datetime) -> list[tuple[str, ThreadState, datetime]]:
        """The live threads of one channel, oldest first: (thread id, state, last activity)."""
        rows = self.db.query(
            "SELECT thread, state, updated_at FROM conversation_threads "
            "WHERE platform = ? AND channel = ? AND expires_at > ? ORDER BY created_at, thread",
            (platform, channel, now.timestamp()),
        )
        return [
            (r["thread"], ThreadState.from_json(r["state"]), datetime.fromtimestamp(r["updated_at"], UTC)) for r in rows
        ]

    def delete(self, key: ThreadKey) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM conversation_threads WHERE platform = ? AND channel = ? AND thread = ?",
                (key.platform, key.channel, key.thread),
            )

    def purge_expired(self, now: datetime | None = None) -> int:
        stamp = (now or datetime.now(UTC)).timestamp()
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM conversation_threads WHERE expires_at <= ?", (stamp,)).rowcount

    def _maybe_purge(self, stamp: float) -> None:
        """Expired rows are deleted at most hourly, on a save: no timer thread to manage."""
        with self._purge_lock:
            if stamp - self._last_purge < 3600:
                return
            self._last_purge = stamp
        self.purge_expired(datetime.fromtimestamp(stamp, UTC))
