"""What makes search fast must not change what it finds: span-limited BM25, one capped candidate read,
the Chroma size memo, precompiled word matching and the per-searcher entity cache, each against the plain way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import retrieval.store as store_module
from retrieval import search
from retrieval.records import Kind, ThreatRecord
from retrieval.store import RecordStore, StoreConfig
from retrieval.vector_index import VectorIndex, open_chroma_client

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
            published=start + timedelta(hours=n),
            url=f"https://example.com/{n}",
            source="CISA KEV" if n % 5 == 0 else "News",
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


def test_the_direct_path_serves_up_to_its_limit_and_the_wide_path_beyond(filled, monkeypatch):
    """One capped read of the candidates chooses the path, as the count it replaces did."""
    from retrieval.query import parse_query

    searcher = search.Searcher(filled)
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
    assert search._contains_word(text, word) == _plain_contains_word(text, word)
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
