"""The SQLite database: records, their search index and vectors, sources and fetch state.

SQLite is the system of record. Chroma holds an approximate-nearest-neighbour index over the
same vectors, which can be rebuilt from here at any time (``threatbot reindex``) — so a switch
to a Chroma server, or a lost Chroma folder, never means embedding everything again.

The schema carries a version (``PRAGMA user_version``); :data:`MIGRATIONS` upgrades older files.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrieval.errors import ThreatbotError

#: One entry per schema version; entry N upgrades a database at version N to N+1.
MIGRATIONS: list[str] = [
    # 0 -> 1: records, full-text index, vectors, CVE index, fetch state.
    """
    CREATE TABLE records (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        canonical_url TEXT,
        published REAL NOT NULL,
        kind TEXT NOT NULL,
        severity INTEGER NOT NULL,
        exploited INTEGER NOT NULL,
        source TEXT NOT NULL,
        cluster_id TEXT,
        content_hash TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX records_published ON records(published);
    CREATE INDEX records_cluster ON records(cluster_id);
    CREATE INDEX records_url ON records(canonical_url) WHERE canonical_url IS NOT NULL;
    CREATE TABLE record_cves (
        record_rowid INTEGER NOT NULL REFERENCES records(rowid) ON DELETE CASCADE,
        cve TEXT NOT NULL,
        PRIMARY KEY (cve, record_rowid)
    );
    CREATE INDEX record_cves_rowid ON record_cves(record_rowid);
    CREATE TABLE vectors (
        record_rowid INTEGER PRIMARY KEY REFERENCES records(rowid) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    CREATE VIRTUAL TABLE records_fts USING fts5(
        title, summary, body, entities, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TABLE fetch_state (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_status INTEGER,
        last_fetched REAL,
        last_error TEXT
    );
    """,
    # 1 -> 2: a covering index for search's filters, so filtering never reads the records' JSON.
    """
    CREATE INDEX records_filter ON records(published, kind, severity, exploited, cluster_id, id);
    """,
    # 2 -> 3: records whose vectors are committed here but may not have reached Chroma yet (a journal
    # emptied after each Chroma write, replayed at start: a kill between the two commits heals itself).
    """
    CREATE TABLE index_pending (
        record_rowid INTEGER PRIMARY KEY REFERENCES records(rowid) ON DELETE CASCADE
    );
    """,
    # 3 -> 4: a question about one source (the KEV catalogue's entries) reads that source's rows, not every
    # record's row to check its source. Within a source it yields (published, rowid), the order of the date
    # index SQLite used before, so equally ranked candidates keep their order (see ``RecordFilter.where``).
    """
    CREATE INDEX records_source ON records(source, published);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(ThreatbotError, RuntimeError):
    """The database was written by a newer threatbot; opening it could corrupt it."""


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the database at ``path``."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    _use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def _use_wal(conn: sqlite3.Connection, *, patience: float = 30.0) -> None:
    """Switch a new file to WAL. The switch takes an exclusive lock, and when another process opening the
    same new file holds a shared one SQLite answers "locked" at once rather than waiting (it would
    deadlock), so the busy timeout does not cover it: try again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION`, one transaction per step. Returns the version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(f"database schema v{version} is newer than this threatbot (v{SCHEMA_VERSION}); upgrade it")
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process opening the same new folder may have
            # migrated while this one waited, and running its step twice would fail ("already exists").
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def apply_component_migrations(conn: sqlite3.Connection, component: str, steps: list[str]) -> int:
    """Versioned tables of one component (conversation threads, delivery outbox, …) in the same file.

    The record schema uses ``PRAGMA user_version``; every other component keeps its own version
    in ``component_versions`` so features can evolve their tables independently.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS component_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM component_versions WHERE component = ?", (component,)).fetchone()
    version = row[0] if row else 0
    if version > len(steps):
        raise SchemaTooNew(f"{component} tables are v{version}, newer than this threatbot (v{len(steps)}); upgrade it")
    while version < len(steps):
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT version FROM component_versions WHERE component = ?", (component,)).fetchone()
            version = row[0] if row else 0  # again under the write lock, as in :func:`migrate`
            if version < len(steps):
                for statement in _statements(steps[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(
                    "INSERT INTO component_versions (component, version) VALUES (?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, version),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(steps)


class Database:
    """A connection plus a lock: the chat adapters call in from several threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.conn = connect(path)
        self.lock = threading.RLock()
        self._depth = 0  # open transaction() blocks in the thread holding the lock
        self._commits = 0  # write transactions committed through this connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); a nested call joins the enclosing one, so work
        done from inside another transaction (delivery marking what a store write just added) commits
        or rolls back with it."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")
            self._commits += 1

    def version(self) -> tuple[int, int]:
        """Which state of the file this connection reads: equal versions, equal data. Commits through this
        connection count here; ``PRAGMA data_version`` counts those of every other connection (another process
        ingesting). What is cached from the file is good while the version stays."""
        with self.lock:
            return self._commits, self.conn.execute("PRAGMA data_version").fetchone()[0]

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.conn.close()
