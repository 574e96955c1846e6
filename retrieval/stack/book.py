"""The stored stack: entries per scope, and which chat channel belongs to which scope.

Tables are versioned as the ``stack`` component (:func:`retrieval.database.apply_component_migrations`).
An import is one transaction: a file is read and resolved completely before anything is written, and
written all at once, so a bad file or a crash never leaves half a stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.database import Database, apply_component_migrations
from retrieval.stack.model import StackEntry
from retrieval.stack.resolve import Resolved

__all__ = ["AddReport", "StackBook"]

_MIGRATIONS = [
    # 0 -> 1: entries per scope (unique by what they name) and the scope of each chat channel.
    """
    CREATE TABLE stack_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL,
        vendor TEXT NOT NULL,
        product TEXT NOT NULL,
        version TEXT NOT NULL DEFAULT '',
        cpe TEXT,
        purl TEXT,
        aliases TEXT NOT NULL DEFAULT '[]',
        origin TEXT NOT NULL DEFAULT '',
        added_at REAL NOT NULL,
        identity TEXT NOT NULL,
        UNIQUE (scope, identity)
    );
    CREATE TABLE stack_channels (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        scope TEXT NOT NULL,
        PRIMARY KEY (platform, channel)
    );
    """,
]


@dataclass
class AddReport:
    #: The new entries (left empty by bulk imports, which only count them).
    added: list[StackEntry]
    already: int = 0
    count: int = 0


def _identity(item: Resolved) -> str:
    return "\x1f".join(
        (item.vendor.lower(), item.product.lower(), item.version.lower(), (item.purl or "").lower(), (item.cpe or ""))
    )


class StackBook:
    """Stack entries in the shared SQLite database (thread-safe through the database's lock)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.lock:
            apply_component_migrations(db.conn, "stack", _MIGRATIONS)

    # -- entries -----------------------------------------------------------------------------------

    def add_many(
        self, scope: str, items: Sequence[Resolved], *, origin: str = "", return_entries: bool = True
    ) -> AddReport:
        """Store resolved entries in one transaction; ones already in the scope's stack are counted, not doubled."""
        now = time.time()
        rows = [
            (
                scope,
                item.vendor,
                item.product,
                item.version,
                item.cpe,
                item.purl,
                json.dumps(list(item.aliases)),
                origin,
                now,
                _identity(item),
            )
            for item in items
        ]
        with self.db.transaction() as conn:
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM stack_entries").fetchone()[0]
            conn.executemany(
                "INSERT OR IGNORE INTO stack_entries (scope, vendor, product, version, cpe, purl, aliases, origin, "
                "added_at, identity) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            count = conn.execute(
                "SELECT COUNT(*) FROM stack_entries WHERE scope = ? AND id > ?", (scope, before)
            ).fetchone()[0]
            fresh = (
                conn.execute(
                    "SELECT * FROM stack_entries WHERE scope = ? AND id > ? ORDER BY id", (scope, before)
                ).fetchall()
                if return_entries
                else []
            )
        return AddReport([_entry(row) for row in fresh], already=len({r[-1] for r in rows}) - count, count=count)

    def add(self, scope: str, item: Resolved, *, origin: str = "") -> tuple[StackEntry, bool]:
        """One entry; returns it and whether it is new (an existing equal entry is returned as it is)."""
        report = self.add_many(scope, [item], origin=origin)
        if report.added:
            return report.added[0], True
        row = self.db.query("SELECT * FROM stack_entries WHERE scope = ? AND identity = ?", (scope, _identity(item)))[0]
        return _entry(row), False

    def remove(self, scope: str, entry_id: int) -> StackEntry | None:
        """Remove one entry by id; None when the scope has no such entry."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM stack_entries WHERE scope = ? AND id = ?", (scope, entry_id)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM stack_entries WHERE id = ?", (entry_id,))
        return _entry(row)

    def entries(self, scope: str) -> list[StackEntry]:
        return [_entry(r) for r in self.db.query("SELECT * FROM stack_entries WHERE scope = ? ORDER BY id", (scope,))]

    def count(self, scope: str) -> int:
        return self.db.query("SELECT COUNT(*) FROM stack_entries WHERE scope = ?", (scope,))[0][0]

    def version_key(self, scope: str) -> tuple[int, int]:
        """Changes whenever the scope's stack does: lets callers cache a matcher built from it."""
        row = self.db.query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM stack_entries WHERE scope = ?", (scope,))[0]
        return int(row[0]), int(row[1])

    # -- channels ----------------------------------------------------------------------------------

    def bind_channel(self, platform: str, channel: str, scope: str) -> None:
        """Remember which scope a channel belongs to, so feed posts there can be marked against its stack."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO stack_channels (platform, channel, scope) VALUES (?,?,?) "
                "ON CONFLICT(platform, channel) DO UPDATE SET scope = excluded.scope",
                (platform, channel, scope),
            )

    def scope_of(self, platform: str, channel: str) -> str | None:
        rows = self.db.query("SELECT scope FROM stack_channels WHERE platform = ? AND channel = ?", (platform, channel))
        return rows[0][0] if rows else None


def _entry(row) -> StackEntry:
    return StackEntry(
        id=row["id"],
        scope=row["scope"],
        vendor=row["vendor"],
        product=row["product"],
        version=row["version"] or "",
        cpe=row["cpe"],
        purl=row["purl"],
        origin=row["origin"] or "",
        aliases=tuple(json.loads(row["aliases"] or "[]")),
    )
