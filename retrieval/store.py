"""The record store: one front door over SQLite (records, text index, vectors) and Chroma.

Writes go through :meth:`RecordStore.upsert`, which deduplicates (same id or same canonical
URL is one record), merges updates, embeds only what changed, assigns clusters and keeps
SQLite and Chroma in step. Reads are plain lookups; ranking lives in ``retrieval.search``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.clustering import CVE_WINDOW, STORY_WINDOW, ClusterCandidate, ClusterIndex, title_key
from retrieval.database import Database
from retrieval.embeddings import MiniLMEmbedder, shared_embedder
from retrieval.errors import ConfigError
from retrieval.kept import Kept
from retrieval.records import (
    FROM_STORE,
    Kind,
    ThreatRecord,
    canonical_url,
    content_equal,
    merge_records,
    utcnow,
)
from retrieval.vector_index import VectorIndex, open_chroma_client

log = logging.getLogger(__name__)


class Change(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class RecordChange:
    """What one upsert did to one record; delivery reads these to post new and updated stories."""

    record: ThreatRecord
    change: Change
    previous: ThreatRecord | None = None


@dataclass
class UpsertReport:
    changes: list[RecordChange] = field(default_factory=list)

    def count(self, change: Change) -> int:
        return sum(1 for c in self.changes if c.change is change)

    @property
    def new(self) -> int:
        return self.count(Change.NEW)

    @property
    def updated(self) -> int:
        return self.count(Change.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(Change.UNCHANGED)


def _crash_point(name: str) -> None:
    """Die on the spot, as a kill -9 would, when ``THREATBOT_CRASH_AT`` names this point (kill tests only).

    ``store.after_commit``: records and vectors committed to SQLite, Chroma not yet written.
    """
    if os.environ.get("THREATBOT_CRASH_AT") == name:
        os._exit(86)


@dataclass
class _Plan:
    """One upsert decided: the changes to report, the rows to write and the vectors computed for them."""

    report: UpsertReport
    to_write: list[tuple[ThreatRecord, int | None, bool]]
    vector_of: dict[str, np.ndarray]

    def vectors_by_hash(self) -> dict[str, np.ndarray]:
        """Vectors by the text they embed, so planning again after a race embeds nothing twice."""
        return {_content_hash(r): self.vector_of[r.id] for r, _, _ in self.to_write if r.id in self.vector_of}


def _load(data: str | bytes) -> ThreatRecord:
    """A stored record (vetted when it came in, so the plausibility checks for new input are skipped)."""
    return ThreatRecord.model_validate_json(data, context=FROM_STORE)


def _timestamp(value: datetime) -> float:
    return value.timestamp()


def _content_hash(record: ThreatRecord) -> str:
    return hashlib.sha1(record.text_for_embedding().encode("utf-8")).hexdigest()


def _entities(record: ThreatRecord) -> str:
    """Words the text index should find a record by, though its prose may not say them."""
    return " ".join([*record.cves, *record.vendors, *record.products, *record.tags, record.source, record.kind.value])


class StorePlaces(Protocol):
    """Anything that says where a store lives (``bot.config.Settings`` does): read into a :class:`StoreConfig`."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def chroma_url(self) -> str: ...
    @property
    def embedding_model_dir(self) -> str: ...


@dataclass(frozen=True)
class StoreConfig:
    """What the store itself needs to open: its folder, the Chroma server (if any) and the embedding model.

    The store knows nothing of the bot's other settings (LLM, private-URL policy): those belong to
    the modules that use them, so ``retrieval`` never depends on ``bot``.
    """

    data_dir: Path
    #: ``http://host:port`` of a Chroma server; empty means the embedded PersistentClient.
    chroma_url: str = ""
    #: Folder holding the all-MiniLM-L6-v2 ONNX export; empty means Chroma's cache and download.
    embedding_model_dir: str = ""
    #: The model.onnx SHA-256 of an export the operator built and trusts (known exports need none).
    embedding_model_sha256: str = ""

    @classmethod
    def of(cls, places: StoreConfig | StorePlaces) -> StoreConfig:
        if isinstance(places, StoreConfig):
            return places
        return cls(
            Path(places.data_dir),
            places.chroma_url or "",
            places.embedding_model_dir or "",
            getattr(places, "embedding_model_sha256", "") or "",
        )

    @property
    def database_path(self) -> Path:
        return self.data_dir / "threatbot.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"


@dataclass(frozen=True)
class RecordFilter:
    """Which records exist for a question: published in ``[start, end)``, of these kinds, from this source…

    Search decides what a question means; the store alone turns that into SQL over ``records``.
    """

    end: float
    start: float | None = None
    kinds: tuple[str, ...] = ()
    source: str | None = None
    exploited: bool = False
    min_severity_rank: int | None = None
    cves: tuple[str, ...] = ()
    has_cve: bool = False
    #: An FTS5 expression the record's text must match (already quoted by the caller).
    text: str | None = None

    def where(self, *, narrowed: bool = False) -> tuple[str, list[object]]:
        """SQL and parameters; ``narrowed``: the caller adds a narrower condition of its own (a list of ids)."""
        clauses = ["published < ?"]
        params: list[object] = [self.end]
        if self.start is not None:
            clauses.append("published >= ?")
            params.append(self.start)
        if self.kinds:
            clauses.append(f"kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(self.kinds)
        if self.source is not None:
            # The source index serves a question about one source (the KEV catalogue), where SQLite would
            # otherwise read every record's row to check its source. Where a narrower condition exists (CVE
            # ids, words, a list of ids), ``+`` keeps SQLite from taking the index instead: the plan, and so
            # the order of equally ranked candidates, stays the one it was.
            clauses.append("source = ?" if not (narrowed or self.cves or self.has_cve or self.text) else "+source = ?")
            params.append(self.source)
        if self.exploited:
            clauses.append("exploited = 1")
        if self.min_severity_rank is not None:
            clauses.append("severity >= ?")
            params.append(self.min_severity_rank)
        if self.cves:
            clauses.append(
                f"rowid IN (SELECT record_rowid FROM record_cves WHERE cve IN ({','.join('?' * len(self.cves))}))"
            )
            params.extend(self.cves)
        elif self.has_cve:
            clauses.append("rowid IN (SELECT record_rowid FROM record_cves)")
        if self.text:
            clauses.append("rowid IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
            params.append(self.text)
        return " AND ".join(clauses), params


#: Candidate rowids this close together are scored by one text query over the span between them (another
#: query costs about as much as scoring a thousand rows)…
TEXT_SPAN_GAP = 1000
#: …as long as there are at most this many spans, covering at most this share of the store; else one query
#: over the whole index is cheaper.
TEXT_SPAN_MAX = 24
TEXT_SPAN_SHARE = 0.4

#: Parsed records a store keeps (about 5 KB each, 100 MB in all). A long question's window holds thousands of
#: candidates, and at 6,000 a 20k store's questions parsed the same records again and again: 42,000 parses over
#: its 200 slowest questions, a sixth of their time.
PARSED_RECORDS_KEPT = 20_000


class _ParsedRecords:
    """Parsed records by id, each with a digest of the stored JSON it came from, least recently used dropped.

    Parsing (pydantic validation) costs about 25 µs a record, more than reading it; a digest, 3 µs. A record
    whose stored text changed (an update here or in another process) has another digest and is parsed anew,
    so what the cache answers is always what parsing the row would give.
    """

    def __init__(self, size: int) -> None:
        self._kept: Kept[str, tuple[bytes, ThreatRecord]] = Kept(size)

    def get(self, record_id: str, data: str) -> ThreatRecord:
        digest = hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        kept = self._kept.get(record_id)
        if kept is not None and kept[0] == digest:
            return kept[1]
        record = _load(data)
        self._kept.put(record_id, (digest, record))
        return record


#: Vectors a store keeps (1.5 KB each, 30 MB in all): a catalogue question scores every entry of its catalogue
#: (5,000 KEV entries at 100k records), and reading their vectors again each time was a third of its time.
VECTORS_KEPT = 20_000


class _KeptVectors:
    """Vectors by rowid, least recently used dropped, all forgotten when the database changes (a vector is
    rewritten when its record's text is, and a rowid can be reused): what it answers is what the file holds."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._version: tuple[int, int] | None = None
        self._lock = threading.Lock()  # chat adapters search from several threads

    def known(self, rowids: Sequence[int], version: tuple[int, int]) -> dict[int, np.ndarray]:
        """The kept vectors of ``rowids`` as of ``version`` (none when the database changed since they were read)."""
        with self._lock:
            if version != self._version:
                self._kept.clear()
                self._version = version
            out = {}
            for rowid in rowids:
                vector = self._kept.get(rowid)
                if vector is not None:
                    self._kept.move_to_end(rowid)
                    out[rowid] = vector
            return out

    def keep(self, vectors: dict[int, np.ndarray], version: tuple[int, int]) -> None:
        with self._lock:
            if version != self._version:
                return  # read from another state of the file than the kept ones
            self._kept.update(vectors)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


#: The columns ranking reads before it loads a record (all in the covering index ``records_filter``).
_CANDIDATE_COLUMNS = "rowid, id, cluster_id, published, severity, exploited"


class RecordStore:
    """Threat records on disk, searchable by text, vector, time, CVE and cluster."""

    def __init__(self, config: StoreConfig | StorePlaces, embedder: MiniLMEmbedder | None = None) -> None:
        self.config = StoreConfig.of(config)
        try:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            self.db = Database(self.config.database_path)
        except (OSError, sqlite3.Error) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise ConfigError(
                f"data folder {self.config.data_dir} is not usable ({reason}): "
                "choose a writable folder with --data-dir or THREATBOT_DATA_DIR"
            ) from error
        self._embedder = embedder
        self._index: VectorIndex | None = None
        self._wiring = threading.Lock()  # chat adapters answer in parallel; open each resource once
        self._count_at: tuple[int, float] | None = None
        self._healed = False
        self._parsed_records = _ParsedRecords(PARSED_RECORDS_KEPT)
        self._kept_vectors = _KeptVectors(VECTORS_KEPT)

    # -- wiring ------------------------------------------------------------------------------

    @property
    def embedder(self) -> MiniLMEmbedder:
        if self._embedder is None:
            with self._wiring:
                if self._embedder is None:
                    self._embedder = shared_embedder(
                        self.config.embedding_model_dir or None, self.config.embedding_model_sha256 or None
                    )
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        """The Chroma index; on first use in a process it is healed from SQLite (see :meth:`heal`)."""
        if self._index is None:
            with self._wiring:
                if self._index is None:
                    self._index = VectorIndex(open_chroma_client(self.config.chroma_url, self.config.chroma_path))
                    heal_now, self._healed = not self._healed, True
                else:
                    heal_now = False
            if heal_now:
                try:
                    self.heal()
                except Exception:  # healing is a repair, never a reason to fail the command that opened the index
                    log.exception("could not bring the vector index in step with the database")
        return self._index

    def close(self) -> None:
        self.db.close()

    # -- writing -----------------------------------------------------------------------------

    def upsert(
        self,
        records: Iterable[ThreatRecord],
        progress: bool = False,
        *,
        on_stored: Callable[[Sequence[RecordChange]], object] | None = None,
    ) -> UpsertReport:
        """Store ``records``: new ones added, known ones merged, duplicates folded.

        Embedding happens before the write transaction (it is slow); inside it, what is stored is
        looked up again, and if another writer (a second ingest, ``serve``) stored any of these
        records meanwhile, the batch is planned again against what is there now: two ingests of the
        same file at once end as one copy of each record, never a UNIQUE-constraint failure.

        ``on_stored`` runs inside the same transaction with the changes (e.g. delivery marking old
        records as backlog), so it commits with the records or not at all.
        """
        incoming = self._fold_batch(records)
        if not incoming:
            return UpsertReport()
        seen = self._stored_rows(incoming)
        plan = self._plan(incoming, self._parsed(seen), progress=progress, vectors_by_hash={})
        with self.db.transaction():
            current = self._stored_rows(incoming)
            if current != seen:  # another writer got there first
                plan = self._plan(
                    incoming, self._parsed(current), progress=progress, vectors_by_hash=plan.vectors_by_hash()
                )
            self._write_rows(plan.to_write, plan.vector_of)
            if on_stored is not None and plan.report.changes:
                on_stored(plan.report.changes)
        _crash_point("store.after_commit")
        self._index_pending()  # this batch's vectors, and any a killed process left journaled
        return plan.report

    def _plan(
        self,
        incoming: list[ThreatRecord],
        existing: dict[str, tuple[int, ThreatRecord, str]],
        *,
        progress: bool,
        vectors_by_hash: dict[str, np.ndarray],
    ) -> _Plan:
        """What to write for ``incoming`` given what is stored: changes, rows, vectors and clusters."""
        now = utcnow()
        report = UpsertReport()
        to_write: list[tuple[ThreatRecord, int | None, bool]] = []  # record, existing rowid, needs vector
        for record in incoming:
            found = existing.get(record.id) or existing.get(record.canonical_url or "\0")
            if found is None:
                record = record.model_copy(update={"fetched_at": record.fetched_at or now, "updated_at": now})
                report.changes.append(RecordChange(record, Change.NEW))
                to_write.append((record, None, True))
                continue
            rowid, old, old_hash = found
            merged = merge_records(old, record)
            if content_equal(merged, old):
                report.changes.append(RecordChange(old, Change.UNCHANGED))
                continue
            merged = merged.model_copy(update={"updated_at": now})
            report.changes.append(RecordChange(merged, Change.UPDATED, previous=old))
            to_write.append((merged, rowid, _content_hash(merged) != old_hash))

        needs_vector = [r for r, _, embed in to_write if embed]
        vector_of = {r.id: vectors_by_hash[h] for r in needs_vector if (h := _content_hash(r)) in vectors_by_hash}
        missing = [r for r in needs_vector if r.id not in vector_of]
        if missing:
            vectors = self.embedder.embed([r.text_for_embedding() for r in missing], progress=progress)
            vector_of.update({r.id: v for r, v in zip(missing, vectors, strict=True)})
        to_write = self._assign_clusters(to_write, vector_of)
        report.changes = [self._with_cluster(c, to_write) for c in report.changes]
        return _Plan(report, to_write, vector_of)

    def load_prepared(self, records: Sequence[ThreatRecord], vectors: Sequence[np.ndarray]) -> None:
        """Write new records whose vectors and clusters are already known, skipping dedupe and clustering.

        For bulk loads of records that are known to be new (restoring an export, building a benchmark
        store from copies): the caller vouches that no id or URL is stored yet.
        """
        if len(records) != len(vectors):
            raise ValueError("one vector per record")
        with self.db.transaction():
            self._write_rows(
                [(r, None, True) for r in records], dict(zip((r.id for r in records), vectors, strict=True))
            )
        self._index_pending()

    def _fold_batch(self, records: Iterable[ThreatRecord]) -> list[ThreatRecord]:
        """One record per id and per canonical URL within the batch, in first-seen order."""
        by_key: dict[str, ThreatRecord] = {}
        alias: dict[str, str] = {}
        for record in records:
            key = alias.get(record.id) or (alias.get(record.canonical_url) if record.canonical_url else None)
            if key is None:
                by_key[record.id] = record
                alias[record.id] = record.id
                if record.canonical_url:
                    alias[record.canonical_url] = record.id
            else:
                by_key[key] = merge_records(by_key[key], record)
        return list(by_key.values())

    @staticmethod
    def _parsed(rows: dict[str, tuple[int, str, str]]) -> dict[str, tuple[int, ThreatRecord, str]]:
        """Stored rows (from :meth:`_stored_rows`) as (rowid, record, content hash), each record parsed once."""
        parsed: dict[int, ThreatRecord] = {}
        found: dict[str, tuple[int, ThreatRecord, str]] = {}
        for key, (rowid, content_hash, data) in rows.items():
            if rowid not in parsed:
                parsed[rowid] = _load(data)
            found[key] = (rowid, parsed[rowid], content_hash)
        return found

    def _stored_rows(self, records: Sequence[ThreatRecord]) -> dict[str, tuple[int, str, str]]:
        """The stored rows ``records`` would merge into, by id and canonical URL: (rowid, content hash, JSON)."""
        ids = [r.id for r in records]
        urls = [r.canonical_url for r in records if r.canonical_url]
        found: dict[str, tuple[int, str, str]] = {}
        for column, keys in (("id", ids), ("canonical_url", urls)):
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT rowid, id, canonical_url, content_hash, data FROM records WHERE {column} IN ({marks})"
                for row in self.db.query(sql, chunk):
                    entry = (row["rowid"], row["content_hash"], row["data"])
                    found.setdefault(row["id"], entry)
                    if row["canonical_url"]:
                        found.setdefault(row["canonical_url"], entry)
        return found

    def _assign_clusters(
        self, to_write: list[tuple[ThreatRecord, int | None, bool]], vector_of: dict[str, np.ndarray]
    ) -> list[tuple[ThreatRecord, int | None, bool]]:
        unplaced = [r for r, _, _ in to_write if r.cluster_id is None and r.id in vector_of]
        if not unplaced:
            return to_write
        times = [r.published.timestamp() for r in unplaced]
        index = self._cluster_index(times, {c for r in unplaced for c in r.cves})
        assigned: dict[str, str] = {}
        for record in sorted(unplaced, key=lambda r: r.published):
            candidate = ClusterCandidate(
                id=record.id,
                cluster_id="",
                published=record.published.timestamp(),
                vector=vector_of[record.id],
                cves=tuple(record.cves),
                vendors=frozenset(v.lower() for v in record.vendors),
                source=record.source,
                title_key=title_key(record.title),
            )
            candidate.cluster_id = index.assign(candidate)
            assigned[record.id] = candidate.cluster_id
            index.add(candidate)
        return [
            (r.model_copy(update={"cluster_id": assigned[r.id]}) if r.id in assigned else r, rowid, embed)
            for r, rowid, embed in to_write
        ]

    @staticmethod
    def _with_cluster(change: RecordChange, to_write: list[tuple[ThreatRecord, int | None, bool]]) -> RecordChange:
        if change.change is Change.UNCHANGED:
            return change
        for record, _, _ in to_write:
            if record.id == change.record.id:
                return RecordChange(record, change.change, change.previous)
        return change

    def _cluster_index(self, times: Sequence[float], cves: set[str]) -> ClusterIndex:
        """Stored records that a batch published at ``times`` could cluster with.

        Only the story window around each record is read (overlapping windows merged), not the whole
        span from the batch's oldest to its newest record: a batch that mixes years (a catalogue, a
        status page's history) would otherwise load the entire store, and ingest memory and time
        would grow with the store's size.
        """
        index = ClusterIndex()
        seen: set[str] = set()
        start = min(times)
        end = max(times)
        for low, high in _merged_windows(times, STORY_WINDOW.total_seconds()):
            for row in self.db.query(
                "SELECT r.id, r.cluster_id, r.published, r.data, v.vector FROM records r "
                "JOIN vectors v ON v.record_rowid = r.rowid WHERE r.published BETWEEN ? AND ?",
                (low, high),
            ):
                if row["id"] not in seen:
                    seen.add(row["id"])
                    index.add(_candidate(row))
        horizon = CVE_WINDOW.total_seconds()
        for chunk in _chunks(sorted(cves), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                "SELECT DISTINCT r.id, r.cluster_id, r.published, r.data, v.vector FROM record_cves c "
                "JOIN records r ON r.rowid = c.record_rowid JOIN vectors v ON v.record_rowid = r.rowid "
                f"WHERE c.cve IN ({marks}) AND r.published BETWEEN ? AND ?",
                (*chunk, start - horizon, end + horizon),
            ):
                if row["id"] not in seen:
                    seen.add(row["id"])
                    index.add(_candidate(row))
        return index

    def _write_rows(
        self, to_write: list[tuple[ThreatRecord, int | None, bool]], vector_of: dict[str, np.ndarray]
    ) -> list[int]:
        """Write the planned rows (inside the caller's transaction); returns the rowids given new vectors."""
        embedded: list[int] = []
        with self.db.transaction() as conn:
            for record, rowid, _ in to_write:
                values = (
                    record.id,
                    record.canonical_url or None,
                    _timestamp(record.published),
                    record.kind.value,
                    record.severity.rank,
                    int(record.exploited),
                    record.source,
                    record.cluster_id or record.id,
                    _content_hash(record),
                    record.model_dump_json(),
                )
                if rowid is None:
                    rowid = conn.execute(
                        "INSERT INTO records (id, canonical_url, published, kind, severity, exploited, source, "
                        "cluster_id, content_hash, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        values,
                    ).lastrowid
                else:
                    conn.execute(
                        "UPDATE records SET id=?, canonical_url=?, published=?, kind=?, severity=?, exploited=?, "
                        "source=?, cluster_id=?, content_hash=?, data=? WHERE rowid=?",
                        (*values, rowid),
                    )
                    conn.execute("DELETE FROM records_fts WHERE rowid=?", (rowid,))
                    conn.execute("DELETE FROM record_cves WHERE record_rowid=?", (rowid,))
                conn.execute(
                    "INSERT INTO records_fts (rowid, title, summary, body, entities) VALUES (?,?,?,?,?)",
                    (rowid, record.title, record.summary, record.body or "", _entities(record)),
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO record_cves (record_rowid, cve) VALUES (?,?)",
                    [(rowid, cve) for cve in record.cves],
                )
                if record.id in vector_of:
                    conn.execute(
                        "INSERT OR REPLACE INTO vectors (record_rowid, vector) VALUES (?,?)",
                        (rowid, vector_of[record.id].astype(np.float32).tobytes()),
                    )
                    embedded.append(rowid)  # type: ignore[arg-type]  # lastrowid of an INSERT is set
            # Chroma is written after the commit; until it confirms, the journal says what it lacks.
            conn.executemany("INSERT OR IGNORE INTO index_pending (record_rowid) VALUES (?)", [(r,) for r in embedded])
        return embedded

    def _index_pending(self) -> int:
        """Copy every journaled vector to Chroma, then clear it from the journal; returns how many.

        A failure here leaves the journal as it is: the next write or start repairs Chroma from it.
        """
        pending = [r[0] for r in self.db.query("SELECT record_rowid FROM index_pending")]
        if not pending:
            return 0
        done = 0
        for chunk in _chunks(pending, 2000):
            marks = ",".join("?" * len(chunk))
            rows = self.db.query(
                "SELECT r.rowid, r.id, r.published, r.kind, v.vector FROM records r "
                f"JOIN vectors v ON v.record_rowid = r.rowid WHERE r.rowid IN ({marks})",
                chunk,
            )
            try:
                if rows:
                    self.index.upsert(
                        [r["id"] for r in rows],
                        np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows]),
                        [r["published"] for r in rows],
                        [r["kind"] for r in rows],
                    )
            except Exception:
                log.exception("vector index write failed; %d record(s) stay journaled for the next start", len(chunk))
                return done
            with self.db.transaction() as conn:
                conn.execute(f"DELETE FROM index_pending WHERE record_rowid IN ({marks})", chunk)
            done += len(rows)
        return done

    def heal(self, *, progress: bool = False) -> dict[str, int]:
        """Bring the vectors and Chroma back in step with the records after a crash or a kill.

        Three repairs, each cheap when there is nothing to do: records stored without a vector are
        embedded; vectors journaled as not yet in Chroma are copied there; and if Chroma still holds a
        different number of vectors than SQLite (a store from before the journal, a lost Chroma
        folder), the two id sets are compared and Chroma is made to match.
        """
        repaired = {"embedded": 0, "indexed": 0, "removed": 0}
        rows = self.db.query(
            "SELECT r.rowid, r.data FROM records r LEFT JOIN vectors v ON v.record_rowid = r.rowid "
            "WHERE v.record_rowid IS NULL"
        )
        for chunk in _chunks(rows, 1000):
            records = [(row["rowid"], _load(row["data"])) for row in chunk]
            vectors = self.embedder.embed([r.text_for_embedding() for _, r in records], progress=progress)
            with self.db.transaction() as conn:
                for (rowid, _), vector in zip(records, vectors, strict=True):
                    conn.execute(
                        "INSERT OR REPLACE INTO vectors (record_rowid, vector) VALUES (?,?)",
                        (rowid, np.asarray(vector, dtype=np.float32).tobytes()),
                    )
                    conn.execute("INSERT OR IGNORE INTO index_pending (record_rowid) VALUES (?)", (rowid,))
            repaired["embedded"] += len(records)
        # Draining the journal is also the normal path for writes made before Chroma was opened in
        # this process (the demo seed, a bulk load): only embedding or reconciling is a real repair.
        repaired["indexed"] = self._index_pending()
        stored = self.db.query("SELECT count(*) FROM vectors")[0][0]
        reconciled = self.index.count() != stored
        if reconciled:
            indexed, removed = self._reconcile_index()
            repaired["indexed"] += indexed
            repaired["removed"] = removed
        if repaired["embedded"] or reconciled:
            log.warning("vector index healed: %s", repaired)
        elif repaired["indexed"]:
            log.info("vector index caught up with %d journaled record(s)", repaired["indexed"])
        return repaired

    def _reconcile_index(self) -> tuple[int, int]:
        """Make Chroma's ids exactly SQLite's: add the missing vectors, drop ids with no record."""
        in_chroma = set(self.index.ids())
        rows = self.db.query("SELECT r.rowid, r.id FROM records r JOIN vectors v ON v.record_rowid = r.rowid")
        missing = [row["rowid"] for row in rows if row["id"] not in in_chroma]
        extra = sorted(in_chroma - {row["id"] for row in rows})
        if missing:
            with self.db.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO index_pending (record_rowid) VALUES (?)", [(r,) for r in missing]
                )
        self.index.delete(extra)
        return self._index_pending(), len(extra)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove records by id (text index, CVEs and vectors with them); returns the ids that existed."""
        found: list[tuple[int, str]] = []
        with self.db.transaction() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), 500):
                marks = ",".join("?" * len(chunk))
                found += [
                    (r["rowid"], r["id"])
                    for r in conn.execute(f"SELECT rowid, id FROM records WHERE id IN ({marks})", chunk).fetchall()
                ]
            for rowid, _ in found:
                conn.execute("DELETE FROM records_fts WHERE rowid = ?", (rowid,))
                conn.execute("DELETE FROM records WHERE rowid = ?", (rowid,))  # cascades to vectors, CVEs, journal
        deleted = [record_id for _, record_id in found]
        try:
            self.index.delete(deleted)
        except Exception:  # the count check at the next start removes them
            log.exception("could not remove %d deleted record(s) from the vector index", len(deleted))
        return deleted

    def reindex(self) -> int:
        """Rebuild the Chroma collection from the vectors kept in SQLite."""
        self.index.reset()
        total = 0
        last = 0
        while True:
            rows = self.db.query(
                "SELECT r.rowid, r.id, r.published, r.kind, v.vector FROM records r "
                "JOIN vectors v ON v.record_rowid = r.rowid WHERE r.rowid > ? ORDER BY r.rowid LIMIT 2000",
                (last,),
            )
            if not rows:
                return total
            self.index.upsert(
                [r["id"] for r in rows],
                np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows]),
                [r["published"] for r in rows],
                [r["kind"] for r in rows],
            )
            total += len(rows)
            last = rows[-1]["rowid"]

    # -- reading -----------------------------------------------------------------------------

    def get(self, record_id: str) -> ThreatRecord | None:
        rows = self.db.query("SELECT data FROM records WHERE id = ?", (record_id,))
        return _load(rows[0]["data"]) if rows else None

    def get_many(self, ids: Sequence[str]) -> dict[str, ThreatRecord]:
        """Records by id. Search reads thousands per question, the same ones again and again (the KEV
        catalogue), so parsed records are kept while their stored text is unchanged (:class:`_ParsedRecords`):
        the records returned are shared, to be read, never changed in place (``model_copy`` makes a changed one).
        """
        out: dict[str, ThreatRecord] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT id, data FROM records WHERE id IN ({marks})", chunk):
                out[row["id"]] = self._parsed_records.get(row["id"], row["data"])
        return out

    def find_by_prefix(self, prefix: str, limit: int = 5) -> list[ThreatRecord]:
        """Records whose id starts with ``prefix``: chat users type short ids."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.query(
            "SELECT data FROM records WHERE id LIKE ? ESCAPE '\\' ORDER BY published DESC LIMIT ?",
            (escaped + "%", limit),
        )
        return [_load(r["data"]) for r in rows]

    def cluster_members(self, cluster_id: str) -> list[ThreatRecord]:
        rows = self.db.query("SELECT data FROM records WHERE cluster_id = ? ORDER BY published", (cluster_id,))
        return [_load(r["data"]) for r in rows]

    def iter_records(self, batch: int = 1000) -> Iterator[ThreatRecord]:
        last = 0
        while True:
            rows = self.db.query(
                "SELECT rowid, data FROM records WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch)
            )
            if not rows:
                return
            for row in rows:
                yield _load(row["data"])
            last = rows[-1]["rowid"]

    def count(self) -> int:
        return self.db.query("SELECT count(*) FROM records")[0][0]

    # -- what ranking reads ---------------------------------------------------------------------

    def count_matching(self, where: RecordFilter, *, at_most: int | None = None) -> int:
        """How many records ``where`` admits; with ``at_most``, counting stops there (enough to choose a path)."""
        sql, params = where.where()
        if at_most is None:
            return self.db.query(f"SELECT count(*) FROM records WHERE {sql}", params)[0][0]
        capped = f"SELECT count(*) FROM (SELECT 1 FROM records WHERE {sql} LIMIT ?)"
        return self.db.query(capped, [*params, at_most])[0][0]

    def candidate_rows(
        self,
        where: RecordFilter,
        *,
        any_of_ids: Sequence[str] = (),
        any_of_rowids: Sequence[int] = (),
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list:
        """Rows (``rowid, id, cluster_id, published, severity, exploited``) of the records ``where`` admits.

        ``any_of_ids``/``any_of_rowids``: only these (either list), e.g. a vector index's or a text index's hits.
        """
        sql, params = where.where(narrowed=bool(any_of_ids or any_of_rowids))
        alternatives: list[str] = []
        if any_of_ids:
            alternatives.append(f"id IN ({','.join('?' * len(any_of_ids))})")
            params.extend(any_of_ids)
        if any_of_rowids:
            alternatives.append(f"rowid IN ({','.join('?' * len(any_of_rowids))})")
            params.extend(any_of_rowids)
        if alternatives:
            sql += f" AND ({' OR '.join(alternatives)})"
        if newest_first:
            sql += " ORDER BY published DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params.extend([limit, offset])
        return self.db.query(f"SELECT {_CANDIDATE_COLUMNS} FROM records WHERE {sql}", params)

    def text_scores(
        self, expression: str, *, limit: int | None = None, among: Collection[int] | None = None
    ) -> dict[int, float]:
        """BM25 scores (lower is better, as FTS5 gives them) by rowid of the records matching ``expression``.

        Title weighs most, then the entities (CVEs, vendors, products), the summary, the body.
        ``among``: only these rowids' scores are wanted (a question's candidates); see :meth:`_text_scores_among`.
        """
        sql = "SELECT rowid, bm25(records_fts, 10.0, 4.0, 1.0, 6.0) AS score FROM records_fts WHERE records_fts MATCH ?"
        args: list[object] = [expression]
        if among is not None:
            if limit is not None:
                raise ValueError("text_scores takes a limit or rowids, not both")
            return self._text_scores_among(sql, expression, among)
        if limit is not None:
            sql += " ORDER BY score LIMIT ?"
            args.append(limit)
        return {r["rowid"]: r["score"] for r in self.db.query(sql, args)}

    def _text_scores_among(self, sql: str, expression: str, among: Collection[int]) -> dict[int, float]:
        """The scores of the rowids in ``among`` that match, reading only the rowid spans they lie in when few.

        FTS5 scores every match of an expression, and common words match much of the store; but it seeks
        to a rowid range cheaply, and a question's candidates (a time window) are mostly records ingested
        together, so they lie in a few narrow spans. A score does not depend on the span read (BM25's
        statistics are the whole index's), so the answer is the same as from the unrestricted query.
        A list of rowids is no help: FTS5 seeks each one separately, slower than scoring every match.
        """
        wanted = set(among)
        if not wanted:
            return {}
        spans = _rowid_spans(wanted, TEXT_SPAN_GAP)
        covered = sum(last - first + 1 for first, last in spans)
        extent = self.db.query("SELECT max(rowid) FROM records")[0][0] or 0
        if len(spans) > TEXT_SPAN_MAX or covered > TEXT_SPAN_SHARE * extent:
            rows = self.db.query(sql, [expression])
        else:
            rows = []
            for first, last in spans:
                rows += self.db.query(sql + " AND rowid >= ? AND rowid <= ?", [expression, first, last])
        return {r["rowid"]: r["score"] for r in rows if r["rowid"] in wanted}

    def warm_up(self) -> None:
        """Read the text index and the records' pages once, so a first question does not pay for it."""
        self.db.query("SELECT count(*) FROM records_fts WHERE records_fts MATCH 'outage'")
        self.db.query("SELECT count(*), max(length(data)) FROM records")

    def ids_published_since(self, since: float) -> list[str]:
        """Ids of records published at or after ``since`` (POSIX seconds), oldest first."""
        return [
            r["id"] for r in self.db.query("SELECT id FROM records WHERE published >= ? ORDER BY published", (since,))
        ]

    def count_cached(self, max_age: float = 60.0) -> int:
        """:meth:`count`, at most ``max_age`` seconds old: ranking needs the store's size, not to the record."""
        now = time.monotonic()
        if self._count_at is None or now - self._count_at[1] > max_age:
            self._count_at = (self.count(), now)
        return self._count_at[0]

    def document_frequencies(self, words: Sequence[str]) -> dict[str, int]:
        """How many records contain each word (or phrase), as the text index reads it (stemmed, any field)."""
        out: dict[str, int] = {}
        for word in words:
            tokens = [t for t in re.findall(r"\w+", word.lower()) if t]
            if not tokens:
                out[word] = 0
                continue
            expression = '"' + " ".join(tokens) + '"'  # quoted: user text is never FTS syntax
            out[word] = self.db.query("SELECT count(*) FROM records_fts WHERE records_fts MATCH ?", (expression,))[0][0]
        return out

    def capitalised_share(self, word: str, *, sample: int = 40) -> float | None:
        """Of the word's occurrences in a sample of summaries, the share written capitalised mid-sentence,
        as names are ("hit Boeing", not "a takedown"); None when no summary uses it. Summaries, not
        titles: headlines capitalise every word."""
        tokens = [t for t in re.findall(r"\w+", word.lower()) if t]
        if not tokens:
            return None
        rows = self.db.query(
            "SELECT summary FROM records_fts WHERE records_fts MATCH ? LIMIT ?",
            ("summary : " + '"' + " ".join(tokens) + '"', sample),
        )
        occurrence = re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, tokens)) + r"(?!\w)", re.IGNORECASE)
        capitalised = total = 0
        for row in rows:
            text = row["summary"] or ""
            for m in occurrence.finditer(text):
                if m.start() == 0 or _SENTENCE_END.search(text, 0, m.start()):
                    continue  # a sentence's first word is capitalised whatever it is
                total += 1
                capitalised += m.group(0)[0].isupper()
        return capitalised / total if total else None

    def vectors_for(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT r.id, v.vector FROM records r JOIN vectors v ON v.record_rowid = r.rowid WHERE r.id IN ({marks})",
                chunk,
            ):
                out[row["id"]] = np.frombuffer(row["vector"], dtype=np.float32)
        return out

    def vectors_by_rowid(self, rowids: Sequence[int]) -> dict[int, np.ndarray]:
        """:meth:`vectors_for` by rowid, for callers that have it (search's candidates): one primary-key
        lookup each instead of the id index and then the vector (a third faster for thousands). Vectors read
        before are kept while the database is unchanged (:class:`_KeptVectors`); the arrays are shared, read-only.
        """
        version = self.db.version()
        out = self._kept_vectors.known(rowids, version)
        read: dict[int, np.ndarray] = {}
        for chunk in _chunks([r for r in rowids if r not in out], 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                f"SELECT record_rowid, vector FROM vectors WHERE record_rowid IN ({marks})", chunk
            ):
                read[row["record_rowid"]] = np.frombuffer(row["vector"], dtype=np.float32)
        self._kept_vectors.keep(read, version)
        return out | read

    def stats(self) -> dict[str, object]:
        """Counts by kind and source, time span, clusters: what `threatbot stats` prints."""
        total = self.count()
        kinds = {r[0]: r[1] for r in self.db.query("SELECT kind, count(*) FROM records GROUP BY kind ORDER BY 2 DESC")}
        sources = {
            r[0]: r[1]
            for r in self.db.query("SELECT source, count(*) FROM records GROUP BY source ORDER BY 2 DESC LIMIT 20")
        }
        span = self.db.query("SELECT min(published), max(published) FROM records")[0]
        clusters = self.db.query("SELECT count(DISTINCT cluster_id) FROM records")[0][0]
        multi = self.db.query(
            "SELECT count(*) FROM (SELECT cluster_id FROM records GROUP BY cluster_id HAVING count(*) > 1)"
        )[0][0]
        exploited = self.db.query("SELECT count(*) FROM records WHERE exploited = 1")[0][0]
        return {
            "records": total,
            "clusters": clusters,
            "multi_source_clusters": multi,
            "exploited": exploited,
            "oldest": _iso(span[0]),
            "newest": _iso(span[1]),
            "kinds": kinds,
            "top_sources": sources,
            "vector_index": self.index.count(),
            "data_dir": str(self.config.data_dir),
        }

    # -- fetch state (conditional GET) --------------------------------------------------------

    def fetch_state(self, url: str) -> dict[str, object] | None:
        rows = self.db.query("SELECT * FROM fetch_state WHERE url = ?", (url,))
        return dict(rows[0]) if rows else None

    def save_fetch_state(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO fetch_state (url, etag, last_modified, last_status, last_fetched, last_error) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(url) DO UPDATE SET "
                "etag = COALESCE(excluded.etag, etag), last_modified = COALESCE(excluded.last_modified, last_modified), "
                "last_status = excluded.last_status, last_fetched = excluded.last_fetched, last_error = excluded.last_error",
                (url, etag, last_modified, status, utcnow().timestamp(), error),
            )


def _candidate(row) -> ClusterCandidate:
    data = json.loads(row["data"])
    return ClusterCandidate(
        id=row["id"],
        cluster_id=row["cluster_id"] or row["id"],
        published=row["published"],
        vector=np.frombuffer(row["vector"], dtype=np.float32),
        cves=tuple(data.get("cves") or ()),
        vendors=frozenset(v.lower() for v in data.get("vendors") or ()),
        source=data.get("source") or "",
        title_key=title_key(data.get("title") or ""),
    )


def _rowid_spans(rowids: Iterable[int], gap: int) -> list[tuple[int, int]]:
    """Sorted rowids grouped into ``(first, last)`` spans, a new span wherever the gap exceeds ``gap``."""
    spans: list[tuple[int, int]] = []
    for rowid in sorted(rowids):
        if spans and rowid - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], rowid)
        else:
            spans.append((rowid, rowid))
    return spans


def _merged_windows(times: Sequence[float], reach: float) -> list[tuple[float, float]]:
    """``[t - reach, t + reach]`` around each time, overlapping ones merged, in order."""
    merged: list[tuple[float, float]] = []
    for t in sorted(times):
        if merged and t - reach <= merged[-1][1]:
            merged[-1] = (merged[-1][0], t + reach)
        else:
            merged.append((t - reach, t + reach))
    return merged


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC).isoformat()
    except (OverflowError, OSError, ValueError):  # a record stored before dates were range-checked
        return f"(unrepresentable timestamp {timestamp!r})"


_SENTENCE_END = re.compile(r"[.!?:]\s*$")


def _chunks(items: Sequence, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


__all__ = [
    "Change",
    "Kind",
    "RecordChange",
    "RecordFilter",
    "RecordStore",
    "StoreConfig",
    "UpsertReport",
    "canonical_url",
]
