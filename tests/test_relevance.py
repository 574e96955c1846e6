"""The relevance model: its trees read as scikit-learn's do, its features say what the ranking knew, and the
search keeps only what it judges to answer."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from retrieval.query import StructuredQuery, TimeWindow
from retrieval.records import Kind, Severity, ThreatRecord
from retrieval.relevance import FEATURES, RankSignals, RelevanceModel, certain, features
from retrieval.search import SearchResult

NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)


def _column(name: str) -> int:
    return FEATURES.index(name)


def _stump(feature: str, threshold: float, left: float, right: float) -> dict:
    """One split: ``feature <= threshold`` goes left."""
    return {
        "feature": [_column(feature), 0, 0],
        "threshold": [threshold, 0.0, 0.0],
        "left": [1, -1, -1],
        "right": [2, -1, -1],
        "value": [0.0, left, right],
    }


def _spec(*trees: dict, answer: float = 0.5, keep: float = 0.5, baseline: float = 0.0) -> dict:
    return {
        "features": list(FEATURES),
        "answer_threshold": answer,
        "keep_threshold": keep,
        "baseline": baseline,
        "trees": list(trees),
    }


def _record(n: int, **changes) -> ThreatRecord:
    fields = {
        "id": f"r{n}",
        "title": f"Fortinet FortiOS flaw {n} exploited",
        "summary": "attackers exploit the bug",
        "published": NOW - timedelta(days=n),
        "url": f"https://example.com/{n}",
        "source": "Example News",
        "kind": Kind.VULNERABILITY,
    }
    return ThreatRecord(**(fields | changes))


def _result(n: int, similarity: float | None, signals: RankSignals | None = None, **why) -> SearchResult:
    reasons = dict(why) | ({"similarity": similarity} if similarity is not None else {})
    return SearchResult(
        _record(n), 0.05 - n * 0.001, [], reasons, signals or RankSignals(coverage=0.5, best_coverage=1.0)
    )


def test_trees_add_their_leaves_to_the_baseline_and_read_through_a_sigmoid():
    model = RelevanceModel(
        _spec(_stump("similarity", 0.5, -1.0, 1.0), _stump("position", 0.5, 0.25, -0.75), baseline=0.1)
    )
    rows = np.zeros((3, len(FEATURES)))
    rows[0, _column("similarity")] = 0.7  # right, then left (position 0)
    rows[1, _column("similarity")] = 0.5  # on the threshold: left, as scikit-learn goes
    rows[2, [_column("similarity"), _column("position")]] = (0.9, 3)  # right, right
    expected = [0.1 + 1.0 + 0.25, 0.1 - 1.0 + 0.25, 0.1 + 1.0 - 0.75]
    assert model.probabilities(rows) == pytest.approx([1 / (1 + math.exp(-r)) for r in expected])


def test_trees_of_unequal_depth_each_stop_at_their_own_leaf():
    deep = {
        "feature": [_column("similarity"), 0, _column("coverage"), 0, 0],
        "threshold": [0.5, 0.0, 0.3, 0.0, 0.0],
        "left": [1, -1, 3, -1, -1],
        "right": [2, -1, 4, -1, -1],
        "value": [0.0, -2.0, 0.0, 0.5, 1.5],
    }
    model = RelevanceModel(_spec(deep, _stump("position", 0.5, 0.0, -10.0)))
    rows = np.zeros((2, len(FEATURES)))
    rows[0, _column("similarity")] = 0.2
    rows[1, [_column("similarity"), _column("coverage")]] = (0.8, 0.9)
    raw = model.probabilities(rows)
    assert raw == pytest.approx([1 / (1 + math.exp(2.0)), 1 / (1 + math.exp(-1.5))])


def test_a_model_trained_on_other_features_is_refused():
    spec = _spec(_stump("similarity", 0.5, -1.0, 1.0))
    spec["features"] = spec["features"][:-1]
    with pytest.raises(ValueError, match="retrain"):
        RelevanceModel(spec)


def test_judge_keeps_the_ranking_order_and_says_each_chance():
    model = RelevanceModel(_spec(_stump("similarity", 0.5, -3.0, 3.0)))
    query = StructuredQuery(text="fortinet exploited", until=NOW, vendors=["Fortinet"])
    results = [_result(0, 0.8), _result(1, 0.3), _result(2, 0.6)]
    kept = model.judge(query, results)
    assert [r.record.id for r in kept] == ["r0", "r2"]
    assert [r.why["relevance"] for r in results] == [0.953, 0.047, 0.953]


def test_an_answer_judged_empty_is_empty():
    model = RelevanceModel(_spec(_stump("similarity", 0.5, -3.0, 3.0)))
    query = StructuredQuery(text="fortinet exploited", until=NOW, vendors=["Fortinet"], exploited=True)
    assert model.judge(query, [_result(0, 0.2), _result(1, 0.1)]) == []
    assert model.judge(query, []) == []


def test_an_answer_is_judged_on_its_best_result_and_then_keeps_the_likely_ones():
    """A weak result joins an answer that has a strong one; with no strong one the answer is "nothing"."""
    model = RelevanceModel(_spec(_stump("similarity", 0.5, -1.0, 3.0), answer=0.6, keep=0.2))  # 0.27 or 0.95
    query = StructuredQuery(text="fortinet exploited", until=NOW, vendors=["Fortinet"], exploited=True)
    strong_and_weak = [_result(0, 0.3), _result(1, 0.9), _result(2, 0.4)]
    assert [r.record.id for r in model.judge(query, strong_and_weak)] == ["r0", "r1", "r2"]
    assert model.judge(query, [_result(0, 0.3), _result(2, 0.4)]) == []
    stricter = RelevanceModel(_spec(_stump("similarity", 0.5, -1.0, 3.0), answer=0.6, keep=0.5))
    assert [r.record.id for r in stricter.judge(query, strong_and_weak)] == ["r1"]


def test_features_compare_each_result_with_the_best_and_say_how_it_was_found():
    window = TimeWindow(NOW - timedelta(days=10), NOW, "last 10 days")
    query = StructuredQuery(
        text="fortinet flaws exploited this week",
        until=NOW,
        window=window,
        kinds=[Kind.VULNERABILITY],
        terms=["flaw", "exploited"],
        vendors=["Fortinet"],
    )
    results = [
        _result(
            1,
            0.8,
            RankSignals(dense_rank=0, bm25_rank=2, coverage=1.0, best_coverage=1.0, kept=7),
            vendors=["Fortinet"],
        ),
        _result(5, 0.6, RankSignals(path="late")),
        SearchResult(
            _record(7, source="CISA KEV", kind=Kind.ADVISORY, severity=Severity.HIGH),
            0.0,
            ["m1", "m2", "m3"],
            {"reports_addition_of": ["CVE-2025-1"]},
            RankSignals(path="catalogue_news"),
        ),
    ]
    rows = features(query, results)
    row = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    assert list(row["position"]) == [0, 1, 2]
    assert list(row["results"]) == [3, 3, 3]
    assert row["similarity"] == pytest.approx([0.8, 0.6, -0.2])
    assert row["similarity_below_best"] == pytest.approx([0.0, 0.2, 1.0])
    assert list(row["in_bm25"]) == [1, 0, 0]
    assert row["bm25_rank"] == pytest.approx([math.log1p(2), math.log1p(400), math.log1p(400)])
    assert list(row["path_ranked"]) == [1, 0, 0]
    assert list(row["path_late"]) == [0, 1, 0]
    assert list(row["path_catalogue_news"]) == [0, 0, 1]
    assert list(row["kind_asked"]) == [1, 1, 0]
    assert list(row["kind_other"]) == [0, 0, 1]
    assert list(row["by_vendor"]) == [1, 0, 0]
    assert list(row["source_kev"]) == [0, 0, 1]
    assert list(row["source_news"]) == [1, 1, 0]
    assert row["other_sources"] == pytest.approx([0, 0, math.log1p(3)])
    assert row["place_in_window"] == pytest.approx([0.9, 0.5, 0.3])
    assert list(row["share_of_words_in_title"]) == [1.0, 1.0, 1.0]
    assert row["severity"][2] == Severity.HIGH.rank


def test_when_a_question_is_asked_does_not_change_how_its_answer_is_judged():
    """Labellers ask near the events, so a feature of age against now would learn "old means wrong": "Okta
    breach" asked years later would be judged "nothing". Without a window, the rows do not depend on now."""
    results = [_result(1, 0.8), _result(30, 0.6, RankSignals(path="late")), _result(400, 0.5)]
    asked = [
        features(StructuredQuery(text="okta breach", until=NOW + timedelta(days=days), terms=["okta"]), results)
        for days in (0, 3 * 365)
    ]
    assert np.array_equal(asked[0], asked[1])


def test_features_of_no_results_are_no_rows():
    assert features(StructuredQuery(text="x", until=NOW), []).shape == (0, len(FEATURES))


def test_the_packaged_model_loads_and_judges():
    model = RelevanceModel.packaged()
    spec = json.loads((_package_data() / "relevance-model.json").read_text())
    assert spec["features"] == list(FEATURES)
    assert 0.0 < model.keep_threshold <= model.answer_threshold < 1.0
    assert spec["trained_on"]["questions"] >= 1000
    chances = model.probabilities(np.random.default_rng(0).uniform(-1, 5, (50, len(FEATURES))))
    assert ((chances > 0) & (chances < 1)).all()
    assert len(set(np.round(chances, 6))) > 1  # the trees split: not one answer for every row


def _package_data():
    from importlib import resources

    return resources.files("retrieval") / "data"


def test_facts_are_certain_and_near_misses_never_are():
    """A catalogue entry of the asked kind, asked for nothing else in a window, is the answer; a news story of the
    same kind, one about a subject, or a record the rules let in only as a near miss is the model's to judge."""
    today = TimeWindow(start=NOW - timedelta(hours=12), end=NOW, label="today")
    kev_today = StructuredQuery(text="what went into KEV today?", until=NOW, window=today, catalogue="kev")
    advisories_today = StructuredQuery(text="any new advisories today?", until=NOW, window=today, kinds=[Kind.ADVISORY])
    entry = SearchResult(_record(1, source="CISA KEV"), 0.05, [], {}, RankSignals())
    csaf = SearchResult(_record(2, source="CISA CSAF"), 0.04, [], {}, RankSignals())
    news = SearchResult(_record(3), 0.03, [], {}, RankSignals())
    assert certain(kev_today, entry) and certain(advisories_today, csaf) and certain(advisories_today, entry)
    assert not certain(kev_today, csaf) and not certain(advisories_today, news)
    fortinet_today = StructuredQuery(text="fortinet advisories today?", until=NOW, window=today, kinds=[Kind.ADVISORY],
                                     vendors=["Fortinet"])  # fmt: skip
    assert not certain(fortinet_today, csaf), "a subject asked: the words decide, not the catalogue"
    assert not certain(kev_today, SearchResult(entry.record, 0.05, [], {"near_miss": "topic"}, RankSignals()))
    cve = StructuredQuery(text="CVE-2025-1234 exploited?", until=NOW, cves=["CVE-2025-1234"])
    assert certain(cve, _result(4, 0.5, cves=["CVE-2025-1234"]))
    assert not certain(cve, _result(4, 0.5, cves=["CVE-2025-1234"], near_miss="kind"))


def test_a_status_page_is_the_answer_to_trouble_at_its_service_and_only_to_that():
    """ "github having problems today?" is answered by any incident GitHub's status page reports; a question about
    one part of a service ("github pages down today?") leaves whether another part's incident answers to the model."""
    today = TimeWindow(start=NOW - timedelta(hours=12), end=NOW, label="today")
    incident = SearchResult(
        _record(1, title="Incident with Codespaces", source="GitHub Status", kind=Kind.OUTAGE),
        0.05, [], {"vendors": ["GitHub"]}, RankSignals(),
    )  # fmt: skip
    whole = StructuredQuery(text="github having problems today?", until=NOW, window=today, vendors=["GitHub"])
    part = StructuredQuery(text="github pages down today? deploys stuck", until=NOW, window=today, vendors=["GitHub"],
                           terms=["pages", "deploys", "stuck"])  # fmt: skip
    assert certain(whole, incident)
    assert not certain(part, incident)
    news = SearchResult(
        _record(2, title="GitHub outage hits developers"), 0.04, [], {"vendors": ["GitHub"]}, RankSignals()
    )
    assert not certain(whole, news), "a story about the outage is a report, not the service's own word"


def test_a_subject_and_a_window_alone_are_answered_by_every_record_found_about_the_subject():
    """ "Exchange Online news this week" asks for everything about it in the week; a question that says more
    ("Exchange Online outage this week", "… spam filter") leaves the judgment to the model."""
    week = TimeWindow(start=NOW - timedelta(days=4), end=NOW, label="this week")
    story = SearchResult(_record(1, title="Microsoft scraps Exchange Online spam change"), 0.05, [],
                         {"products": ["Exchange"]}, RankSignals())  # fmt: skip
    only_subject = StructuredQuery(text="Exchange Online news this week", until=NOW, window=week,
                                   vendors=["Microsoft"], products=["Exchange"])  # fmt: skip
    assert certain(only_subject, story)
    assert not certain(dataclasses.replace(only_subject, kinds=[Kind.OUTAGE]), story)
    assert not certain(dataclasses.replace(only_subject, terms=["spam"]), story)
    assert not certain(dataclasses.replace(only_subject, window=None), story), "no window: the store's whole history"
    assert not certain(
        only_subject, SearchResult(story.record, 0.05, [], {"products": ["Exchange"], "near_miss": "topic"})
    )


def test_a_question_asking_for_nothing_in_particular_is_answered_by_the_newest_records_whatever_the_model_thinks():
    """ "latest", "anything new today?": no word, name or facet to judge a record by."""
    model = RelevanceModel(_spec(_stump("similarity", 0.5, -3.0, 3.0)))  # would judge every result unlikely
    latest = StructuredQuery(text="anything new today?", until=NOW)
    assert [r.record.id for r in model.judge(latest, [_result(0, 0.2), _result(1, 0.1)])] == ["r0", "r1"]
    about_fortinet = StructuredQuery(text="fortinet today?", until=NOW, vendors=["Fortinet"])
    assert model.judge(about_fortinet, [_result(0, 0.2), _result(1, 0.1)]) == []


def test_a_headline_naming_the_one_name_asked_over_a_window_is_certain():
    """ "what has muddywater been up to this week?" asks for whatever the week holds of it: a headline the rules
    let in that says the name answers. A place ("poland"), a name common in the store (no matched term), a second
    name, a kind asked or a near miss leave it to the model."""
    week = TimeWindow(start=NOW - timedelta(days=4), end=NOW, label="this week")

    def asked(text: str, terms: list[str], **facets) -> StructuredQuery:
        return StructuredQuery(text=text, until=NOW, window=week, terms=terms, **facets)

    def headline(title: str, **why) -> SearchResult:
        return SearchResult(_record(1, title=title), 0.05, [], why, RankSignals())

    muddywater = asked("what has muddywater been up to this week?", ["muddywater"])
    story = headline("Iran's 'MuddyWater' Levels Up With MuddyViper Backdoor", matched_terms=["muddywater"])
    assert certain(muddywater, story)
    assert not certain(muddywater, headline("Iranian hackers deploy a new backdoor", matched_terms=["muddywater"]))
    assert not certain(muddywater, headline(story.record.title, matched_terms=[]))
    assert not certain(muddywater, headline(story.record.title, matched_terms=["muddywater"], near_miss="topic"))
    assert not certain(dataclasses.replace(muddywater, window=None), story)
    assert not certain(dataclasses.replace(muddywater, kinds=[Kind.MALWARE]), story)
    assert not certain(asked("muddywater and oilrig this week?", ["muddywater", "oilrig"]), story)
    poland = asked("poland arrests this week?", ["poland", "arrests"])
    assert not certain(poland, headline("Poland arrests three hackers", matched_terms=["poland", "arrests"]))
