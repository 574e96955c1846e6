"""Ranking: from an analyst's question to the few stories that answer it, or to none.

The pipeline, each step for a reason:

1. **Understand** the question (``retrieval.query``): window, kinds, CVEs, vendors, terms.
2. **Hard filters** in SQLite: published before ``now`` and inside the window, the kinds,
   CVE ids, ``exploited`` and severity asked for. A record outside them does not exist for
   this question — that is what makes "none today" possible.
3. **Candidates**: when the filters leave few records (a narrow window), all of them are
   scored directly from the vectors kept in SQLite — exact, and far faster than Chroma's
   filtered query. Otherwise Chroma's nearest neighbours and the BM25 (FTS5) matches are
   taken and filtered.
4. **Relevance gate**: a question that names a vendor or product only gets records about it;
   one with topic words only gets records that contain them or are close in meaning. No
   padding with near-misses: an empty result is an answer.
5. **Score**: reciprocal rank fusion of dense and BM25 ranks, plus small boosts for a
   vendor/product match, severity, exploitation and recency.
6. **Collapse clusters**: one result per incident, listing the other records as ``members``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from retrieval.query import StructuredQuery, parse_query
from retrieval.records import Severity, ThreatRecord
from retrieval.store import RecordStore
from retrieval.vendors import VendorDictionary

#: At or below this many filtered records, score them all directly instead of asking Chroma.
DIRECT_SCORING_LIMIT = 5000
#: How many nearest neighbours / BM25 hits to take in the wide (unfiltered) path.
WIDE_CANDIDATES = 400
#: Dense similarity that counts as "about this" when no topic word matches.
SEMANTIC_GATE = 0.55
RRF_K = 60

_SEVERITY_BOOST = {0: 0.0, 1: 0.0, 2: 0.002, 3: 0.004, 4: 0.006}


@dataclass
class SearchResult:
    """One incident in an answer: the best record of its cluster plus why it matched."""

    record: ThreatRecord
    score: float
    members: list[str] = field(default_factory=list)
    why: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        r = self.record
        return {
            "id": r.id,
            "title": r.title,
            "published": r.published.isoformat(),
            "source": r.source,
            "url": r.url,
            "kind": r.kind.value,
            "severity": r.severity.value,
            "score": round(self.score, 6),
            "members": self.members,
            "why": self.why,
        }


@dataclass
class SearchResponse:
    query: StructuredQuery
    results: list[SearchResult]
    took_ms: float

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query.text,
            "filters": self.query.to_filters(),
            "results": [r.to_json() for r in self.results],
            "took_ms": round(self.took_ms, 2),
        }


@dataclass
class _Candidate:
    rowid: int
    id: str
    cluster_id: str
    published: float
    severity: int
    exploited: bool
    dense: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None
    record: ThreatRecord | None = None


class Searcher:
    """Answers structured queries over a :class:`RecordStore`."""

    def __init__(self, store: RecordStore, dictionary: VendorDictionary | None = None) -> None:
        self.store = store
        self.dictionary = dictionary or VendorDictionary.default()

    # -- public ------------------------------------------------------------------------------

    def search(self, text: str, *, now: datetime | None = None, tz: str = "UTC", limit: int = 10) -> SearchResponse:
        started = time.perf_counter()
        query = parse_query(text, now=now or datetime.now(UTC), tz=tz, dictionary=self.dictionary)
        results = self.run(query, limit=limit)
        return SearchResponse(query, results, (time.perf_counter() - started) * 1000)

    def run(self, query: StructuredQuery, *, limit: int = 10) -> list[SearchResult]:
        """Rank records for an already-understood query."""
        start, end = self._bounds(query)
        return self._rank(query, start, end, limit=limit)

    def latest_before_window(self, query: StructuredQuery) -> SearchResult | None:
        """The most recent match published before the query's window: "none today; the latest was …"."""
        if query.window is None:
            return None
        end = query.window.start.timestamp()
        where, params = self._filter_sql(query, None, end)
        # Walk back through time in pages, newest first, until a record passes the relevance gate.
        offset = 0
        vector = self._query_vector(query)
        while True:
            rows = self.store.db.query(
                f"SELECT rowid, id, cluster_id, published, severity, exploited FROM records WHERE {where} "
                "ORDER BY published DESC LIMIT 500 OFFSET ?",
                (*params, offset),
            )
            if not rows:
                return None
            candidates = [_candidate(r) for r in rows]
            self._score_dense_direct(candidates, vector)
            self._score_bm25(query, candidates, restrict=True)
            self._load_records(candidates)
            for candidate in candidates:  # already newest first
                why = self._gate(query, candidate)
                if why is not None:
                    results = self._collapse(query, [candidate], {candidate.id: why}, limit=1)
                    return results[0] if results else None
            offset += len(rows)

    def matching(self, query: StructuredQuery, records: Sequence[ThreatRecord]) -> list[SearchResult]:
        """Which of ``records`` (e.g. just ingested) answer a standing query, best first.

        Subscriptions use this: the same filters and relevance gate as search, applied to new
        records only, so a channel subscribed to "exchange outage" gets what search would show.
        """
        start, end = self._bounds(query)
        rows = (
            self.store.db.query(
                f"SELECT rowid, id, cluster_id, published, severity, exploited FROM records WHERE "
                f"id IN ({','.join('?' * len(records))})",
                [r.id for r in records],
            )
            if records
            else []
        )
        wanted = {r.id for r in records}
        where, params = self._filter_sql(query, start, end)
        allowed = (
            {
                r["id"]
                for r in self.store.db.query(
                    f"SELECT id FROM records WHERE {where} AND id IN ({','.join('?' * len(wanted))})",
                    [*params, *wanted],
                )
            }
            if wanted
            else set()
        )
        candidates = [_candidate(r) for r in rows if r["id"] in allowed]
        if not candidates:
            return []
        self._score_dense_direct(candidates, self._query_vector(query))
        self._score_bm25(query, candidates, restrict=True)
        self._rank_dense(candidates)
        self._load_records(candidates)
        reasons = {c.id: why for c in candidates if (why := self._gate(query, c)) is not None}
        return self._collapse(query, [c for c in candidates if c.id in reasons], reasons, limit=len(candidates))

    # -- steps -------------------------------------------------------------------------------

    @staticmethod
    def _bounds(query: StructuredQuery) -> tuple[float | None, float]:
        end = query.until.timestamp()
        start = None
        if query.window is not None:
            start = query.window.start.timestamp()
            end = min(end, query.window.end.timestamp())
        return start, end

    def _filter_sql(self, query: StructuredQuery, start: float | None, end: float) -> tuple[str, list[object]]:
        clauses = ["published <= ?"]
        params: list[object] = [end]
        if start is not None:
            clauses.append("published >= ?")
            params.append(start)
        if query.kinds:
            clauses.append(f"kind IN ({','.join('?' * len(query.kinds))})")
            params.extend(k.value for k in query.kinds)
        if query.exploited:
            clauses.append("exploited = 1")
        if query.min_severity is not None and query.min_severity is not Severity.UNKNOWN:
            clauses.append("severity >= ?")
            params.append(query.min_severity.rank)
        if query.cves:
            marks = ",".join("?" * len(query.cves))
            clauses.append(f"rowid IN (SELECT record_rowid FROM record_cves WHERE cve IN ({marks}))")
            params.extend(query.cves)
        elif getattr(query, "has_cve", False):
            clauses.append("rowid IN (SELECT record_rowid FROM record_cves)")
        return " AND ".join(clauses), params

    def _rank(self, query: StructuredQuery, start: float | None, end: float, *, limit: int) -> list[SearchResult]:
        where, params = self._filter_sql(query, start, end)
        total = self.store.db.query(f"SELECT count(*) FROM records WHERE {where}", params)[0][0]
        if total == 0:
            return []
        vector = self._query_vector(query)
        if total <= DIRECT_SCORING_LIMIT:
            rows = self.store.db.query(
                f"SELECT rowid, id, cluster_id, published, severity, exploited FROM records WHERE {where}", params
            )
            candidates = [_candidate(r) for r in rows]
            if vector is not None:
                self._score_dense_direct(candidates, vector)
            self._score_bm25(query, candidates, restrict=True)
        else:
            candidates = self._wide_candidates(query, vector, where, params)
        if not candidates:
            return []
        self._rank_dense(candidates)
        self._load_records(candidates)
        reasons: dict[str, dict[str, object]] = {}
        kept: list[_Candidate] = []
        for candidate in candidates:
            why = self._gate(query, candidate)
            if why is not None:
                reasons[candidate.id] = why
                kept.append(candidate)
        return self._collapse(query, kept, reasons, limit=limit)

    def _query_vector(self, query: StructuredQuery) -> np.ndarray | None:
        topic = self._topic_text(query)
        return self.store.embedder.embed_one(topic) if topic else None

    @staticmethod
    def _topic_text(query: StructuredQuery) -> str:
        """What the question is about, without its time words: that is what the embedding should match."""
        words = [*query.products, *query.vendors, *query.terms, *query.cves]
        words += [k.value for k in query.kinds]
        return " ".join(dict.fromkeys(words))

    def _wide_candidates(
        self, query: StructuredQuery, vector: np.ndarray | None, where: str, params: list[object]
    ) -> list[_Candidate]:
        ids: dict[str, float] = {}
        if vector is not None:
            ids = dict(self.store.index.query(vector, WIDE_CANDIDATES))
        fts = self._fts_hits(query, limit=WIDE_CANDIDATES)
        rowid_filter = ""
        clauses: list[str] = []
        args: list[object] = list(params)
        if ids:
            clauses.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if fts:
            clauses.append(f"rowid IN ({','.join('?' * len(fts))})")
            args.extend(fts)
        if not clauses:
            # No topic at all ("anything new?"): the newest records are the answer.
            rows = self.store.db.query(
                f"SELECT rowid, id, cluster_id, published, severity, exploited FROM records WHERE {where} "
                "ORDER BY published DESC LIMIT ?",
                (*params, WIDE_CANDIDATES),
            )
            return [_candidate(r) for r in rows]
        rowid_filter = " OR ".join(clauses)
        rows = self.store.db.query(
            f"SELECT rowid, id, cluster_id, published, severity, exploited FROM records WHERE {where} AND ({rowid_filter})",
            args,
        )
        candidates = [_candidate(r) for r in rows]
        missing = [c for c in candidates if c.id not in ids]
        if vector is not None and missing:
            self._score_dense_direct(missing, vector)
        for c in candidates:
            if c.id in ids:
                c.dense = ids[c.id]
        for rank, c in enumerate(sorted((c for c in candidates if c.rowid in fts), key=lambda c: fts[c.rowid])):
            c.bm25_rank = rank
        return candidates

    def _score_dense_direct(self, candidates: list[_Candidate], vector: np.ndarray | None) -> None:
        if vector is None or not candidates:
            return
        vectors = self.store.vectors_for([c.id for c in candidates])
        for c in candidates:
            v = vectors.get(c.id)
            c.dense = float(v @ vector) if v is not None else None

    @staticmethod
    def _rank_dense(candidates: list[_Candidate]) -> None:
        scored = sorted((c for c in candidates if c.dense is not None), key=lambda c: -c.dense)
        for rank, c in enumerate(scored):
            c.dense_rank = rank

    def _fts_hits(self, query: StructuredQuery, *, limit: int, rowids: Sequence[int] | None = None) -> dict[int, float]:
        expression = _fts_expression(query)
        if not expression:
            return {}
        sql = "SELECT rowid, bm25(records_fts, 10.0, 4.0, 1.0, 6.0) AS score FROM records_fts WHERE records_fts MATCH ?"
        args: list[object] = [expression]
        if rowids is not None:
            sql += f" AND rowid IN ({','.join('?' * len(rowids))})"
            args.extend(rowids)
        sql += " ORDER BY score LIMIT ?"
        args.append(limit)
        return {r["rowid"]: r["score"] for r in self.store.db.query(sql, args)}

    def _score_bm25(self, query: StructuredQuery, candidates: list[_Candidate], *, restrict: bool) -> None:
        if not candidates:
            return
        hits: dict[int, float] = {}
        rowids = [c.rowid for c in candidates]
        for start in range(0, len(rowids), 900):
            chunk = rowids[start : start + 900]
            hits.update(self._fts_hits(query, limit=len(chunk), rowids=chunk if restrict else None))
        ordered = sorted((c for c in candidates if c.rowid in hits), key=lambda c: hits[c.rowid])
        for rank, c in enumerate(ordered):
            c.bm25_rank = rank

    def _load_records(self, candidates: list[_Candidate]) -> None:
        # Only records that could pass the gate are worth parsing: a topic match of some kind.
        wanted = [c for c in candidates if c.record is None]
        records = self.store.get_many([c.id for c in wanted])
        for c in wanted:
            c.record = records.get(c.id)

    def _gate(self, query: StructuredQuery, candidate: _Candidate) -> dict[str, object] | None:
        """Why this record answers the question, or None when it does not."""
        record = candidate.record
        if record is None:
            return None
        text = f"{record.title}\n{record.summary}\n{record.source}\n{' '.join(record.tags)}".lower()
        for word in query.exclude_terms:
            if _contains_word(text, word):
                return None
        why: dict[str, object] = {}
        if query.window is not None:
            why["window"] = query.window.label
        if query.kinds:
            why["kind"] = record.kind.value
        if query.cves:
            why["cves"] = [c for c in record.cves if c in query.cves]
        if query.exploited:
            why["exploited"] = True
        if query.products or query.vendors:
            found = self._entities(record)
            if query.products:
                hit = [p for p in query.products if p.lower() in found]
                if not hit:
                    return None
                why["products"] = hit
            else:
                hit = [v for v in query.vendors if v.lower() in found]
                if not hit:
                    return None
                why["vendors"] = hit
        if query.terms:
            matched = [t for t in query.terms if _contains_word(text, t.lower()) or _stem_in(text, t.lower())]
            if matched:
                why["matched_terms"] = matched
            dense_ok = candidate.dense is not None and candidate.dense >= SEMANTIC_GATE
            named_entity = bool(query.products or query.vendors or query.cves)
            if not matched and not dense_ok and not named_entity:
                return None
            # Entity questions with extra words: the words may be phrased differently; require meaning.
            if not matched and named_entity and candidate.dense is not None and candidate.dense < 0.25:
                return None
        if candidate.dense is not None:
            why["similarity"] = round(candidate.dense, 3)
        return why

    def _entities(self, record: ThreatRecord) -> set[str]:
        """Vendors and products a record is about: its own fields plus what the dictionary finds in its text.

        The dictionary resolves ambiguous names from context, so a crypto exchange's breach does
        not count as a Microsoft Exchange story although both say "exchange".
        """
        names = {v.lower() for v in record.vendors} | {p.lower() for p in record.products}
        for match in self.dictionary.find(f"{record.title}\n{record.summary}"):
            names.add(match.vendor.lower())
            if match.product:
                names.add(match.product.lower())
        return names

    def _collapse(
        self, query: StructuredQuery, kept: list[_Candidate], reasons: dict[str, dict[str, object]], *, limit: int
    ) -> list[SearchResult]:
        now = query.until.timestamp()
        scored = sorted(((self._score(query, c, now), c) for c in kept), key=lambda pair: -pair[0])
        clusters: dict[str, SearchResult] = {}
        order: list[str] = []
        for score, candidate in scored:
            assert candidate.record is not None
            result = clusters.get(candidate.cluster_id)
            if result is None:
                clusters[candidate.cluster_id] = SearchResult(candidate.record, score, [], reasons[candidate.id])
                order.append(candidate.cluster_id)
            else:
                result.members.append(candidate.id)
        return [clusters[c] for c in order[:limit]]

    @staticmethod
    def _score(query: StructuredQuery, c: _Candidate, now: float) -> float:
        score = 0.0
        if c.dense_rank is not None:
            score += 1.0 / (RRF_K + c.dense_rank)
        if c.bm25_rank is not None:
            score += 1.0 / (RRF_K + c.bm25_rank)
        if query.products or query.vendors:
            score += 0.004
        score += _SEVERITY_BOOST.get(c.severity, 0.0)
        if c.exploited:
            score += 0.003
        age_days = max(0.0, (now - c.published) / 86400)
        score += 0.01 * math.exp(-age_days / 14)  # a fresh story outranks an equally good old one
        if not query.products and not query.vendors and not query.terms and not query.cves:
            score += 0.02 * math.exp(-age_days / 2)  # topic-less questions ("any outages today?") want the newest
        return score


def _candidate(row) -> _Candidate:
    return _Candidate(
        rowid=row["rowid"],
        id=row["id"],
        cluster_id=row["cluster_id"] or row["id"],
        published=row["published"],
        severity=row["severity"],
        exploited=bool(row["exploited"]),
    )


_WORD = re.compile(r"[\w.-]+")


def _fts_expression(query: StructuredQuery) -> str:
    """An FTS5 OR-query over the topic words, each quoted so user input is never FTS syntax."""
    words: list[str] = []
    for phrase in [*query.products, *query.vendors, *query.terms, *query.cves]:
        tokens = [t for t in re.findall(r"\w+", phrase.lower()) if len(t) > 1]
        if tokens:
            words.append('"' + " ".join(tokens) + '"')
    return " OR ".join(dict.fromkeys(words))


def _contains_word(text: str, word: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text) is not None


def _stem_in(text: str, word: str) -> bool:
    """A crude stem match (hospital/hospitals, attack/attacks/attacked) for the relevance gate."""
    stem = word.rstrip("s")
    if len(stem) >= 5:
        stem = re.sub(r"(ing|ed|es|e)$", "", stem)
    return len(stem) >= 4 and re.search(r"(?<!\w)" + re.escape(stem), text) is not None
