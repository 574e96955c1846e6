"""Ranking on real data: labeled questions over slices of the 2023 news, KEV and ransomware posts.

The slices hold a few days around each labeled incident plus everything else published on those
days, so every question competes with a real day's news. The labels are the benchmark's
(``bench/questions.jsonl``); the benchmark runs them over the full 27k-record store.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO, needs_fixtures, needs_model

pytestmark = [needs_fixtures, needs_model]

NEWS_DAYS = [
    ("2023-07-10", "2023-07-21"),  # Exchange Online outage, a crypto-exchange hack, Exchange hacks
    ("2023-10-20", "2023-10-25"),  # Okta support breach
    ("2023-06-01", "2023-06-06"),  # MOVEit mass exploitation
    ("2023-11-01", "2023-11-05"),  # Cloudflare outage
    ("2023-09-13", "2023-09-14"),  # Teams outage, MGM
]
QUESTIONS = {q["id"]: q for q in map(json.loads, (REPO / "bench" / "questions.jsonl").read_text().splitlines())}
IN_SLICE = [
    "exo-today",
    "exo-today-none",
    "exo-yesterday-none",
    "exo-last-week",
    "exo-la",
    "exo-tokyo-none",
    "okta-this-week",
    "okta-march-none",
    "moveit-2022-none",
    "moveit-cve",
    "cloudflare-this-week",
    "cloudflare-today-none",
    "teams-yesterday",
    "github-outage-none",
    "kev-yesterday",
    "lockbit-posts",
    "fortinet-today-none",
]


def _slice_records():
    from retrieval.formats import parse_source

    news = []
    with (FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            day = json.loads(line)["date_published"][:10]
            if any(start <= day <= end for start, end in NEWS_DAYS):
                news.append(line)
    records = parse_source("".join(news).encode(), origin="news-2023 slice").records
    kev = parse_source((FIXTURES / "kev" / "known_exploited_vulnerabilities.json").read_bytes(), origin="kev")
    records += [r for r in kev.records if "2023-06-01" <= r.published.date().isoformat() <= "2023-07-31"]
    posts = json.loads((FIXTURES / "ransomware" / "ransomwatch_posts_2024-04-23.json").read_text())
    day_posts = [p for p in posts if p["discovered"].startswith(("2023-06-01", "2023-05-31"))]
    records += parse_source(json.dumps(day_posts).encode(), origin="ransomwatch slice").records
    return records


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    from bot.config import Settings
    from retrieval.enrich import enrich
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    data_dir = tmp_path_factory.mktemp("search") / "data"
    store = RecordStore(Settings.from_env(data_dir))
    store.upsert([enrich(r) for r in _slice_records()])
    yield Searcher(store)
    store.close()


def _relevant(store, label) -> set[str]:
    if not label:
        return set()
    start = datetime.fromisoformat(label["from"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(label["to"]).replace(tzinfo=UTC) + timedelta(days=1)
    pattern = re.compile(label.get("title", "^$"))
    rows = store.db.query(
        "SELECT id, json_extract(data, '$.title') AS title FROM records WHERE published >= ? AND published < ?",
        (start.timestamp(), end.timestamp()),
    )
    return {r["id"] for r in rows if pattern.search(r["title"])} | set(label.get("ids", []))


def _ask(searcher, question):
    now = datetime.fromisoformat(question["now"].replace("Z", "+00:00"))
    return searcher.search(question["query"], now=now, tz=question["tz"])


@pytest.mark.parametrize("question_id", IN_SLICE)
def test_labeled_question(searcher, question_id):
    question = QUESTIONS[question_id]
    response = _ask(searcher, question)
    relevant = _relevant(searcher.store, question["relevant"])
    returned = [[r.record.id, *r.members] for r in response.results]
    if not question["relevant"]:
        assert returned == [], f"expected no answer, got {[r.record.title for r in response.results]}"
        return
    assert relevant, "the label must match something in the slice"
    hits = [any(i in relevant for i in ids) for ids in returned[:5]]
    assert hits and hits[0], f"top result is not relevant: {[r.record.title for r in response.results[:5]]}"
    assert sum(hits) / len(hits) >= 0.6


def test_exchange_means_microsoft_not_a_crypto_exchange(searcher):
    from retrieval.query import parse_query

    now = datetime(2023, 7, 21, 12, tzinfo=UTC)
    titles = [r.record.title for r in searcher.search("exchange outage this week", now=now).results]
    assert any("Exchange Online" in t for t in titles)
    assert not any("Crypto" in t or "crypto" in t for t in titles)
    # What the rules accept: the model's verdict on the one story (a chance of 0.73-0.78, as models are retrained)
    # is not what this tests.
    crypto_question = parse_query("crypto exchange hack this month", now=now, tz="UTC", dictionary=searcher.dictionary)
    crypto = [r.record.title for r in searcher.ranked(crypto_question) if "near_miss" not in r.why]
    assert any("Crypto Exchange Hack" in t for t in crypto)
    assert not any("Exchange Online" in t for t in crypto)


def test_none_today_can_name_the_latest_earlier_match(searcher):
    from retrieval.query import parse_query

    now = datetime(2023, 7, 20, 12, tzinfo=UTC)
    query = parse_query("any Exchange outages today?", now=now, tz="UTC")
    assert searcher.run(query) == []
    latest = searcher.latest_before_window(query)
    assert latest is not None and "Exchange Online hit by new outage" in latest.record.title
    assert latest.record.published < query.window.start


def test_now_hides_the_future(searcher):
    before = datetime(2023, 7, 18, 8, tzinfo=UTC)  # the outage story is published at 09:06 UTC
    titles = [r.record.title for r in searcher.search("Exchange Online outage", now=before).results]
    assert not any("hit by new outage" in t for t in titles)
    assert all(r.record.published <= before for r in searcher.search("outage", now=before).results)


def test_results_explain_why_they_matched(searcher):
    now = datetime(2023, 7, 18, 20, tzinfo=UTC)
    result = searcher.search("any Exchange outages today?", now=now).results[0]
    assert result.why["window"] == "today"
    assert result.why["kind"] == "outage"
    assert result.why["products"] == ["Exchange"]


def test_a_cluster_is_one_result_listing_its_other_sources(searcher):
    now = datetime(2023, 10, 25, 12, tzinfo=UTC)
    results = searcher.search("Okta support system breach", now=now).results
    top = results[0]
    assert "Okta" in top.record.title and top.members
    members = searcher.store.get_many(top.members)
    assert all("okta" in m.title.lower() for m in members.values())
    assert len({r.record.cluster_id for r in results}) == len(results)


def test_cli_batch_json_contract(searcher, tmp_path):
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"query": "any Exchange outages today?", "now": "2023-07-18T20:00:00Z"},
                {"query": "any Exchange outages today?", "now": "2023-07-20T12:00:00Z", "tz": "Europe/Berlin"},
                {"query": "Okta breach"},
            ]
        )
    )
    data_dir = str(searcher.store.config.data_dir)
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "search", "--batch", str(batch), "--json", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(REPO),
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert set(first) >= {"query", "filters", "results", "took_ms"}
    assert first["filters"]["window"]["label"] == "today"
    assert set(first["results"][0]) >= {"id", "title", "published", "source", "url", "kind", "severity", "score"}
    assert "Exchange Online" in first["results"][0]["title"]
    assert second["results"] == []
    assert second["filters"]["window"]["start"].endswith("+02:00")
    assert third["results"] and third["took_ms"] > 0


def _seed_record():
    """The seed's threat-radar page (a real Exchange Online outage, 2026-06-02) as a canonical record."""
    from retrieval.records import ThreatRecord

    text = (FIXTURES / "seed" / "exchange-online-outage-radar-page.txt").read_text()
    lines = [line.strip() for line in text.splitlines()]
    title = next(line for line in lines if "Exchange Online outage" in line)
    published = re.search(r"\((\d\d)/(\d\d)/(\d{4}), (\d\d:\d\d:\d\d) UTC\)", text)
    month, day, year, clock = published.groups()
    description = lines[lines.index("Description") + 2]
    url = json.loads(next(line for line in lines if line.startswith('{"url"')))["url"]
    return ThreatRecord(
        title=title,
        published=f"{year}-{month}-{day}T{clock}+00:00",
        summary=description,
        source=re.search(r"Source: (.+)", text).group(1).strip(),
        url=url,
    )


def test_the_seed_outage_is_today_s_answer_and_only_on_its_day(searcher):
    from retrieval.enrich import enrich

    seed = enrich(_seed_record())
    assert seed.kind.value == "outage" and not seed.exploited
    searcher.store.upsert([seed])
    asked = datetime(2026, 6, 2, 18, 0, tzinfo=UTC)
    results = searcher.search("any Exchange outages today?", now=asked, tz="Europe/Berlin").results
    assert [r.record.id for r in results] == [seed.id]
    assert searcher.search("any Exchange outages today?", now=asked + timedelta(days=2)).results == []
    assert searcher.search("any Exchange outages today?", now=asked - timedelta(hours=2)).results == []
    assert searcher.search("exchange vulnerabilities today", now=asked).results == []
    assert searcher.search("crypto exchange outage today", now=asked).results == []


def test_the_relevance_model_has_the_last_word_except_on_facts(searcher):
    """The judgment decides what stays, in the ranking's order; a record printing the asked CVE is a fact it keeps."""
    from retrieval.relevance import FEATURES, RelevanceModel
    from retrieval.search import Searcher

    def model(threshold: float) -> RelevanceModel:  # no trees: every result's chance is 0.5
        spec = {"answer_threshold": threshold, "keep_threshold": threshold, "baseline": 0.0, "trees": []}
        return RelevanceModel(spec | {"features": list(FEATURES)})

    unjudged = Searcher(searcher.store, judged=False)
    keeps_all, keeps_none = (
        Searcher(searcher.store, relevance=model(0.5)),
        Searcher(searcher.store, relevance=model(0.6)),
    )
    okta = {"now": datetime(2023, 10, 25, 12, tzinfo=UTC), "tz": "UTC"}
    ranked = [r.record.id for r in unjudged.search("Okta breach this week", **okta).results]
    assert ranked
    judged = keeps_all.search("Okta breach this week", **okta).results
    assert [r.record.id for r in judged] == ranked
    assert {r.why["relevance"] for r in judged} == {0.5}
    assert keeps_none.search("Okta breach this week", **okta).results == []
    moveit = keeps_none.search("is CVE-2023-34362 exploited?", now=datetime(2023, 7, 1, tzinfo=UTC)).results
    assert moveit and all("CVE-2023-34362" in r.record.cves for r in moveit)


def test_near_misses_follow_the_answer_for_the_model_alone_to_keep(searcher):
    """A record the rules almost accept (MOVEit's mass exploitation, told without the word "ransomware") ends the
    unjudged answer as a near miss; a subscription or a "latest" never takes one."""
    from retrieval.query import parse_query
    from retrieval.search import Searcher

    unjudged = Searcher(searcher.store, judged=False)
    asked = datetime(2023, 6, 10, tzinfo=UTC)
    results = unjudged.search("moveit ransomware victims", now=asked).results
    near = [r for r in results if "near_miss" in r.why]
    assert near and results[: len(results) - len(near)] == [r for r in results if "near_miss" not in r.why]
    assert all(r.signals is not None and r.signals.path == "near_miss" for r in near)
    moveit = next(r for r in near if "Mass exploitation of critical MOVEit flaw" in r.record.title)
    assert moveit.why["near_miss"] == "kind"
    clusters = [r.record.cluster_id or r.record.id for r in results]
    assert len(clusters) == len(set(clusters))  # a near miss is never an incident the answer already has
    query = parse_query("moveit ransomware victims", now=asked, dictionary=unjudged.dictionary)
    assert unjudged.matching(query, [moveit.record]) == []
    judged = searcher.search("moveit ransomware victims", now=asked).results
    assert {r.record.id for r in judged} <= {r.record.id for r in results}
    assert all(r.why["relevance"] >= searcher.relevance.keep_threshold for r in judged if "near_miss" in r.why)
