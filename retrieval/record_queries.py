"""The reads over the record tables that other components need without a :class:`~retrieval.store.RecordStore`.

Delivery's outbox and the stack service hold only the :class:`~retrieval.database.Database` (they run in
processes and tests that never embed or touch Chroma), and ``threatbot doctor`` holds a read-only
connection that must not migrate. Their SQL over ``records`` lives here, beside ``store.py``, so the
table's columns are known in these two modules only (``tests/test_layering.py`` keeps it so) and a
schema change cannot silently break a caller elsewhere.

Each function runs on the caller's own connection: a query made inside the caller's
:meth:`Database.transaction` sees and commits with that transaction, exactly as the caller's own SQL did.
"""

from __future__ import annotations

import re
import sqlite3
from typing import NamedTuple

from retrieval.database import Database
from retrieval.records import FROM_STORE, ThreatRecord

__all__ = [
    "RecordState",
    "count_records",
    "count_vectors",
    "records_from_source",
    "records_naming_cve",
    "records_published_between",
    "serious_records_between",
    "snapshot_states_statement",
    "states_unlike_snapshot",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RecordState(NamedTuple):
    """What a record's followers act on: a change to any of these may be news (delivery's "seen" state)."""

    record_id: str
    cluster_id: str
    severity: int
    exploited: bool


def _table(name: str) -> str:
    """A table name to put in SQL (identifiers cannot be bound as parameters): a plain identifier only."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a table name: {name!r}")
    return name


def _records(rows: list[sqlite3.Row]) -> list[ThreatRecord]:
    # Vetted when they came in: a record stored by an older threatbot stays readable even if implausible now.
    return [ThreatRecord.model_validate_json(r["data"], context=FROM_STORE) for r in rows]


# -- snapshots of record state (delivery) ------------------------------------------------------------
#
# A snapshot table belongs to its component and has the columns
# ``(record_id TEXT PRIMARY KEY, cluster_id TEXT, severity INTEGER, exploited INTEGER)``; a record without
# a cluster is its own (``COALESCE(cluster_id, id)``).


def snapshot_states_statement(table: str) -> str:
    """The statement that copies every record's current state into snapshot ``table``.

    A statement, not a call, so that a component's migration step runs it inside the step's own
    transaction: the snapshot and the table it fills commit together or not at all.
    """
    return (
        f"INSERT INTO {_table(table)} (record_id, cluster_id, severity, exploited)\n"
        "    SELECT id, COALESCE(cluster_id, id), severity, exploited FROM records;"
    )


def states_unlike_snapshot(db: Database, table: str, *, limit: int) -> list[tuple[RecordState, RecordState | None]]:
    """Records whose state differs from their row in snapshot ``table``, or that have none, oldest first.

    Each as (state now, state in the snapshot or None). One query with the snapshot joined, so a poll
    reads only what changed, not every record.
    """
    snapshot = _table(table)
    rows = db.query(
        "SELECT r.id, COALESCE(r.cluster_id, r.id) AS cluster_id, r.severity, r.exploited, "
        "s.record_id AS seen_id, s.cluster_id AS seen_cluster, s.severity AS seen_severity, "
        f"s.exploited AS seen_exploited FROM records r LEFT JOIN {snapshot} s ON s.record_id = r.id "
        "WHERE s.record_id IS NULL OR s.severity != r.severity OR s.exploited != r.exploited "
        "OR s.cluster_id != COALESCE(r.cluster_id, r.id) ORDER BY r.rowid LIMIT ?",
        (limit,),
    )
    out: list[tuple[RecordState, RecordState | None]] = []
    for row in rows:
        current = RecordState(row["id"], row["cluster_id"], row["severity"], bool(row["exploited"]))
        previous = (
            RecordState(row["id"], row["seen_cluster"], row["seen_severity"], bool(row["seen_exploited"]))
            if row["seen_id"] is not None
            else None
        )
        out.append((current, previous))
    return out


# -- records by time, CVE and source (the stack's questions) ------------------------------------------


def records_published_between(db: Database, start: float, end: float) -> list[ThreatRecord]:
    """Records published in ``[start, end)`` (POSIX seconds), newest first."""
    rows = db.query(
        "SELECT data FROM records WHERE published >= ? AND published < ? ORDER BY published DESC", (start, end)
    )
    return _records(rows)


def records_naming_cve(db: Database, cve: str, *, until: float) -> list[ThreatRecord]:
    """Records that name ``cve`` (as stored: upper case) published by ``until``, newest first."""
    rows = db.query(
        "SELECT r.data FROM records r JOIN record_cves c ON c.record_rowid = r.rowid WHERE c.cve = ? "
        "AND r.published <= ? ORDER BY r.published DESC",
        (cve, until),
    )
    return _records(rows)


def records_from_source(db: Database, source: str, *, until: float) -> list[ThreatRecord]:
    """Records of one source (a catalogue such as KEV, as it stood at ``until``), in no particular order."""
    rows = db.query("SELECT data FROM records WHERE source = ? AND published <= ?", (source, until))
    return _records(rows)


def serious_records_between(
    db: Database, start: float, end: float, *, min_severity_rank: int, excluding_source: str
) -> list[ThreatRecord]:
    """Records published in ``[start, end]`` at or above a severity rank, except one source's."""
    rows = db.query(
        "SELECT data FROM records WHERE published >= ? AND published <= ? AND severity >= ? AND source != ?",
        (start, end, min_severity_rank, excluding_source),
    )
    return _records(rows)


# -- counts on a caller's connection (doctor's read-only one) -------------------------------------------


def count_records(conn: sqlite3.Connection) -> int:
    """How many records the database holds; ``conn`` may be read-only (no migration, no write)."""
    return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])


def count_vectors(conn: sqlite3.Connection) -> int:
    """How many records have a stored vector (what ``reindex`` would rebuild Chroma from)."""
    return int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])
