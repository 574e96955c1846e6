"""What makes search fast must not change what it finds: span-limited BM25, a capped count,
the source index, the Chroma size memo, precompiled word matching and the per-searcher entity cache, each against the plain way."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import retrieval.store as store_module
from retrieval import search
from retrieval.aboutness import contains_word
from retrieval.database import MIGRATIONS, SCHEMA_VERSION, connect
from retrieval.records import Kind, ThreatRecord
from retrieval.store import RecordFilter, RecordStore, StoreConfig
from retrieval.vector_index import VectorIndex, open_chroma_client
from tests.conftest import needs_model

WORDS = ["exchange", "outage", "ransomware", "fortinet", "patch", "hospital", "breach", "cloud"]


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def filled(tmp_path):
    """120 records (vectors are random: nothing here embeds), words and sources varying with the rowid."""
    store = RecordStore(StoreConfig(tmp_path / "data"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    records = [
        ThreatRecord(
            id=f"r{n}",
            title=f"{WORDS[n % len(WORDS)]} story {n} {WORDS[(n * 3) % len(WORDS)]}",
            summary=" ".join(WORDS[: n % len(WORDS)]),
            published=start + timedelta(hours=n // 3),  # ties, as KEV entries added on one day have
            url=f"https://example.com/{n}",
            source="CISA KEV" if n % 5 < 3 else "News",
            kind=Kind.VULNERABILITY if n % 2 else Kind.OUTAGE,
        )
        for n in range(120)
    ]
    store.load_prepared(records, [_unit(n) for n in range(len(records))])
    yield store
    store.close()


def _rowids(store: RecordStore) -> list[int]:
    return [row["rowid"] for row in store.db.query("SELECT rowid FROM records ORDER BY rowid")]


@pytest.mark.parametrize("expression", ['"exchange"', '"outage" OR "patch"', '"hospital breach" OR "cloud"'])
def test_bm25_among_candidates_equals_the_whole_index_scores_by_spans_or_not(filled, monkeypatch, expression):
    full = filled.text_scores(expression)
    assert full  # the expression matches something
    rowids = _rowids(filled)
    groups = [rowids[:10] + rowids[60:75] + rowids[-5:], rowids[::7], rowids, rowids[40:41], []]
    for gap, share in [(3, 0.9), (1000, 1.0), (3, 0.0)]:  # several spans, one span, the whole index
        monkeypatch.setattr(store_module, "TEXT_SPAN_GAP", gap)
        monkeypatch.setattr(store_module, "TEXT_SPAN_SHARE", share)
        for among in groups:
            assert filled.text_scores(expression, among=among) == {r: s for r, s in full.items() if r in set(among)}
    with pytest.raises(ValueError):
        filled.text_scores(expression, limit=5, among=rowids)


def test_rowid_spans_split_where_the_gap_is_wider_than_asked():
    assert store_module._rowid_spans([9, 1, 2, 30, 5, 31], gap=3) == [(1, 5), (9, 9), (30, 31)]
    assert store_module._rowid_spans([], gap=3) == []


def test_a_capped_count_is_exact_below_the_cap_and_the_cap_above_it(filled):
    everything = RecordFilter(end=time.time())
    kev = RecordFilter(end=time.time(), source="CISA KEV")
    assert filled.count_matching(everything) == 120
    assert filled.count_matching(everything, at_most=50) == 50
    assert filled.count_matching(kev, at_most=100) == filled.count_matching(kev) == 72
    assert filled.count_matching(RecordFilter(end=0.0), at_most=50) == 0


def test_the_direct_path_serves_up_to_its_limit_and_the_wide_path_beyond(filled, monkeypatch):
    """A count that stops past the limit chooses the path, as the full count did."""
    from retrieval.query import parse_query

    searcher = search.Searcher(filled, judged=False)  # random vectors: the ranking's paths, not a judgment of them
    monkeypatch.setattr(searcher, "_query_vector", lambda query: _unit(7))
    wide: list[int] = []
    real_wide = searcher._wide_candidates
    monkeypatch.setattr(searcher, "_wide_candidates", lambda *a: wide.append(1) or real_wide(*a))
    query = parse_query("exchange outage", now=datetime(2026, 1, 1, tzinfo=UTC), dictionary=searcher.dictionary)
    passing = filled.count_matching(searcher._filter(query, *searcher._bounds(query)))
    assert passing > 10
    answers = []
    for limit in (passing, passing - 1):
        monkeypatch.setattr(search, "DIRECT_SCORING_LIMIT", limit)
        answers.append([r.record.id for r in searcher.run(query, limit=5)])
    assert wide == [1]  # only past the limit
    assert answers[0] and answers[1]
    none = parse_query("exchange outage", now=datetime(2000, 1, 1, tzinfo=UTC), dictionary=searcher.dictionary)
    assert searcher.run(none, limit=5) == []  # nothing published yet: no candidates, no vector asked


def _plan(conn, sql: str, params) -> str:
    return " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_an_older_database_gains_the_source_index_and_only_one_source_questions_read_it(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:3]):  # a file written before the source index existed
        old.executescript(script)
        old.execute(f"PRAGMA user_version = {version + 1}")
    old.execute(
        "INSERT INTO records (id, published, kind, severity, exploited, source, content_hash, data) "
        "VALUES ('a', 1.0, 'vulnerability', 0, 1, 'CISA KEV', 'h', '{}')"
    )
    old.close()
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1  # nothing lost
    kev = RecordFilter(end=2.0, kinds=("vulnerability",), source="CISA KEV", exploited=True)
    sql, params = kev.where()
    assert "records_source" in _plan(conn, f"SELECT count(*) FROM records WHERE {sql}", params)
    narrower = [replace(kev, cves=("CVE-2024-1",)), replace(kev, has_cve=True), replace(kev, text='"ivanti"')]
    for where in narrower:  # the plans these had before the index: it must not reorder their candidates
        sql, params = where.where()
        assert "records_source" not in _plan(conn, f"SELECT rowid FROM records WHERE {sql}", params)
    sql, params = kev.where(narrowed=True)
    assert "records_source" not in _plan(conn, f"SELECT rowid FROM records WHERE {sql} AND rowid IN (1, 2)", params)
    conn.close()


def test_one_source_rows_come_in_the_order_of_the_date_index_they_came_in_before(filled):
    """Ties in ranking keep the candidates' order, so the index must not change it: (published, rowid)."""
    where = RecordFilter(end=time.time(), source="CISA KEV", kinds=("outage", "vulnerability"))
    sql, params = where.where()
    assert "records_source" in _plan(filled.db.conn, f"SELECT rowid FROM records WHERE {sql}", params)
    before = filled.db.query(f"SELECT rowid FROM records INDEXED BY records_published WHERE {sql}", params)
    assert [r["rowid"] for r in filled.candidate_rows(where)] == [r["rowid"] for r in before]
    newest = filled.candidate_rows(where, newest_first=True, limit=7, offset=3)
    newest_before = filled.db.query(
        f"SELECT rowid FROM records INDEXED BY records_published WHERE {sql} ORDER BY published DESC LIMIT 7 OFFSET 3",
        params,
    )
    assert [r["rowid"] for r in newest] == [r["rowid"] for r in newest_before]


def test_the_vector_index_asks_its_size_again_only_when_it_may_be_too_small(tmp_path, monkeypatch):
    index = VectorIndex(open_chroma_client("", tmp_path / "chroma"))
    sizes: list[int] = []
    real_count = index.count
    monkeypatch.setattr(index, "count", lambda: sizes.append(real_count()) or sizes[-1])
    assert index.query(_unit(0), 5) == []  # empty: nothing to ask Chroma
    index.upsert([f"v{n}" for n in range(8)], np.stack([_unit(n) for n in range(8)]), [0.0] * 8, ["other"] * 8)
    assert index.query(_unit(3), 5)[0][0] == "v3"  # the empty size seen before is not trusted
    asked = len(sizes)
    for n in range(3):
        assert len(index.query(_unit(n), 5)) == 5
    assert len(sizes) == asked  # 8 >= 5 was known: no more size questions
    assert len(index.query(_unit(0), 20)) == 8  # more than known: asked again
    index.delete(["v0", "v1", "v2", "v3", "v4"])
    assert sorted(i for i, _ in index.query(_unit(5), 5)) == ["v5", "v6", "v7"]


def test_another_process_shrinking_the_index_leaves_a_query_answering_with_what_is_left(tmp_path):
    reader = VectorIndex(open_chroma_client("", tmp_path / "chroma"))
    reader.upsert([f"v{n}" for n in range(6)], np.stack([_unit(n) for n in range(6)]), [0.0] * 6, ["other"] * 6)
    assert len(reader.query(_unit(0), 5)) == 5
    writer = VectorIndex(open_chroma_client("", tmp_path / "chroma"))
    writer.delete(["v0", "v1", "v2", "v3"])
    assert sorted(i for i, _ in reader.query(_unit(5), 5)) == ["v4", "v5"]


# -- word matching: precompiled and prefiltered, the same answers as the plain regexes --------------------


def _plain_contains_word(text: str, word: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text) is not None


def _plain_stem_in(text: str, word: str) -> bool:
    stem = word.rstrip("s")
    if len(stem) >= 5:
        stem = re.sub(r"(ing|ed|es|e)$", "", stem)
    return len(stem) >= 4 and re.search(r"(?<!\w)" + re.escape(stem), text) is not None


_PIECES = st.sampled_from(["attack", "attacks", "attacked", "co-op", "c++", "n8n", "é", " ", "-", ".", "s", "ing", "x"])


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_PIECES, max_size=12).map("".join), word=st.lists(_PIECES, max_size=4).map("".join))
def test_word_and_stem_matching_answer_as_the_plain_regexes(text, word):
    assert contains_word(text, word) == _plain_contains_word(text, word)
    assert search._stem_in(text, word) == _plain_stem_in(text, word)
    assert search._matches_term(text, word) == (_plain_contains_word(text, word) or _plain_stem_in(text, word))


def test_the_entity_cache_answers_as_the_dictionary_and_hands_out_copies(tmp_path):
    store = RecordStore(StoreConfig(tmp_path / "data"))
    searcher = search.Searcher(store)
    record = ThreatRecord(
        title="Microsoft Exchange servers hit", summary="Fortinet too", published=datetime(2025, 1, 1, tzinfo=UTC)
    )
    names, aliases = searcher._entities(record)
    expected = {m.vendor.lower() for m in searcher.dictionary.find(f"{record.title}\n{record.summary}")}
    assert expected <= names and "microsoft" in names and "exchange" in aliases
    names.add("tampered")
    aliases.clear()
    again_names, again_aliases = searcher._entities(record.model_copy(update={"vendors": ["Acme"]}))
    assert "tampered" not in again_names and "exchange" in again_aliases  # the cached sets were not touched
    assert "acme" in again_names  # the record's own fields still count, cache or not
    store.close()


def test_parsed_records_are_kept_while_their_stored_text_is_unchanged(filled):
    first = filled.get_many(["r1", "r2"])
    again = filled.get_many(["r2", "r1"])
    assert again["r1"] is first["r1"] and again["r2"] is first["r2"]  # parsed once
    # Another process rewrites r1 (same id, new text): the next read parses the new row.
    other = RecordStore(StoreConfig(filled.config.data_dir))
    changed = first["r1"].model_copy(update={"summary": "rewritten elsewhere", "url": "https://example.com/new"})
    other.delete(["r1"])
    other.load_prepared([changed], [_unit(1)])
    other.close()
    fresh = filled.get_many(["r1", "r2"])
    assert fresh["r1"].summary == "rewritten elsewhere" and fresh["r2"] is first["r2"]
    stored = filled.db.query("SELECT data FROM records WHERE id = 'r1'")[0]["data"]
    assert filled.get_many(["r1"])["r1"] == store_module._load(stored)  # what parsing the row gives


def test_the_parsed_records_kept_are_bounded_least_recently_used_first(filled):
    kept = store_module._ParsedRecords(3)
    stored = {row["id"]: row["data"] for row in filled.db.query("SELECT id, data FROM records LIMIT 5")}
    ids = list(stored)
    parsed = {i: kept.get(i, stored[i]) for i in ids[:3]}
    assert kept.get(ids[0], stored[ids[0]]) is parsed[ids[0]]  # used again: now the most recent
    kept.get(ids[3], stored[ids[3]])  # a fourth: the least recently used (ids[1]) goes
    assert kept.get(ids[0], stored[ids[0]]) is parsed[ids[0]]
    assert kept.get(ids[1], stored[ids[1]]) is not parsed[ids[1]]
    assert len(kept._kept) == 3


def test_vectors_by_rowid_are_the_vectors_by_id(filled):
    rows = filled.db.query("SELECT rowid, id FROM records WHERE rowid % 7 = 0")
    by_id = filled.vectors_for([r["id"] for r in rows])
    by_rowid = filled.vectors_by_rowid([r["rowid"] for r in rows] + [10_000])  # an unknown rowid is left out
    assert set(by_rowid) == {r["rowid"] for r in rows}
    for r in rows:
        assert np.array_equal(by_rowid[r["rowid"]], by_id[r["id"]])


@needs_model
def test_warm_up_loads_what_the_first_question_would_otherwise_wait_for(tmp_path):
    """The English lexicon the gate reads loads on first use (half a second): a fresh process's warm-up pays it."""
    script = (
        "import sys; from pathlib import Path\n"
        "from lemminflect.core.Lemmatizer import Lemmatizer\n"
        "from retrieval.search import Searcher\n"
        "from retrieval.store import RecordStore, StoreConfig\n"
        "assert not hasattr(Lemmatizer(), 'lemma_dict')\n"
        "Searcher(RecordStore(StoreConfig(Path(sys.argv[1])))).warm_up()\n"
        "assert hasattr(Lemmatizer(), 'lemma_dict')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)  # lone surrogates included


@settings(max_examples=200, deadline=None)
@given(
    title=_TEXT.filter(lambda t: t.split()),
    summary=_TEXT,
    lists=st.lists(_TEXT, max_size=4),
    cves=st.lists(st.sampled_from(["cve-2024-1", " CVE-2024-1", "CVE-2025-22", ""]), max_size=4),
)
def test_a_stored_record_parses_to_what_full_validation_gives(title, summary, lists, cves):
    """The store parses its own JSON without re-scrubbing or re-normalising (``FROM_STORE``): the record must
    be the one full validation of the same JSON gives, whatever the text that came in."""
    from retrieval.records import FROM_STORE, STORED

    record = ThreatRecord(
        title=title, summary=summary, published=datetime(2025, 1, 1, tzinfo=UTC), url="https://example.com/a",
        vendors=lists, products=lists, tags=lists, countries=lists, cves=cves,
    )  # fmt: skip
    stored = record.model_dump_json()
    assert ThreatRecord.model_validate_json(stored, context=FROM_STORE) == record
    assert ThreatRecord.model_validate_json(stored, context=STORED) == record
