"""A CVE question also gets the stories about that bug which never print its id, ranked after those that do.

Real data: a week of the 2023 news around the MOVEit mass exploitation (CVE-2023-34362), plus the KEV
entries of that summer. Many write-ups say "MOVEit Transfer zero-day" and no id; they tell the same
incident, so they answer the question, but below the records that name the CVE.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import FIXTURES, needs_fixtures, needs_model

pytestmark = [needs_fixtures, needs_model]

CVE = "CVE-2023-34362"
DAYS = ("2023-05-31", "2023-06-07")


def _searcher_over(directory, news_days: tuple[str, str], kev_days: tuple[str, str]):
    """A store of the 2023 news published on ``news_days`` and the KEV entries added on ``kev_days``."""
    from bot.config import Settings
    from retrieval.enrich import enrich
    from retrieval.formats import parse_source
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    news = []
    with (FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if news_days[0] <= json.loads(line)["date_published"][:10] <= news_days[1]:
                news.append(line)
    records = parse_source("".join(news).encode(), origin="news-2023 slice").records
    kev = parse_source((FIXTURES / "kev" / "known_exploited_vulnerabilities.json").read_bytes(), origin="kev")
    records += [r for r in kev.records if kev_days[0] <= r.published.date().isoformat() <= kev_days[1]]
    store = RecordStore(Settings.from_env(directory / "data"))
    store.upsert([enrich(r) for r in records])
    return Searcher(store)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    searcher = _searcher_over(tmp_path_factory.mktemp("cve-relatives"), DAYS, ("2023-05-25", "2023-06-30"))
    yield searcher
    searcher.store.close()


def _ask(searcher, text, now="2023-06-08T12:00:00+00:00"):
    return searcher.search(text, now=datetime.fromisoformat(now).astimezone(UTC))


def test_stories_about_the_bug_without_its_id_follow_those_that_print_it(searcher):
    results = _ask(searcher, f"what do we know about {CVE}?").results
    printing = [CVE in r.record.cves for r in results]
    assert printing[0], "a record naming the CVE comes first"
    assert not all(printing), "stories about the same bug that do not print the id are eligible"
    first_relative = printing.index(False)
    assert all(not p for p in printing[first_relative:]), "every record naming the CVE ranks above every relative"
    for r in results[first_relative:]:
        assert r.why["same_vulnerability_as"] == [CVE]
        assert "moveit" in f"{r.record.title} {r.record.summary}".lower(), r.record.title
        assert not r.record.cves, "a record naming only other CVEs is about another bug"


def test_a_cve_nobody_names_still_gets_the_honest_nothing(searcher):
    assert _ask(searcher, "anything on CVE-2023-39999?").results == []


def test_a_cve_nobody_names_is_not_answered_by_records_of_other_cves(searcher):
    """The question describes the bug ("moveit transfer sqli"), so its reports answer; the KEV entries of
    other Progress CVEs name another bug, and do not."""
    from retrieval.query import parse_query

    now = datetime.fromisoformat("2023-06-08T12:00:00+00:00")
    question = parse_query(
        "CVE-2023-39999 moveit transfer sqli - any info yet?", now=now, dictionary=searcher.dictionary
    )
    results = searcher.ranked(question)  # the ranking's answer: whether each report is likely enough is the model's
    assert results, "the reports of the bug it describes answer"
    assert all(not r.record.cves or len(r.record.cves) > 3 for r in results)
    assert all(r.record.source != "CISA KEV" for r in results)


def test_relatives_need_a_record_that_names_the_cve_by_then(searcher):
    # Before any record printed the id, nothing says which stories are about it.
    first = min(r.published for r in searcher.store.iter_records() if CVE in r.cves)
    before = _ask(searcher, f"{CVE}?", now=(first - timedelta(seconds=1)).isoformat())
    assert before.results == []


def test_kind_operator_still_excludes_relatives(searcher):
    results = _ask(searcher, f"{CVE} kind:ransomware").results
    assert all(r.record.kind.value == "ransomware" for r in results)


@pytest.mark.parametrize("text", [f"cve:{CVE}", f"what do we know about cve:{CVE}?", f"CVE:{CVE.lower()} MOVEit"])
def test_a_typed_cve_operator_is_a_hard_filter(searcher, text):
    # Typed as an operator, the id is a filter the user means: stories that never print it are left out,
    # while the plain question about the same id (above) also gets them.
    results = _ask(searcher, text).results
    assert results, "records naming the CVE answer the operator"
    for r in results:
        assert CVE in r.record.cves, r.record.title
        assert "same_vulnerability_as" not in r.why
    members = searcher.store.get_many([m for r in results for m in r.members])
    assert all(CVE in m.cves for m in members.values())


@pytest.fixture(scope="module")
def october_2023(tmp_path_factory):
    """The week of the HTTP/2 Rapid Reset disclosure (CVE-2023-44487, listed in KEV on 10 October 2023)."""
    directory = tmp_path_factory.mktemp("cve-relatives-october")
    searcher = _searcher_over(directory, ("2023-10-03", "2023-10-14"), ("2023-10-01", "2023-10-14"))
    yield searcher
    searcher.store.close()


def test_the_first_days_stories_naming_the_bugs_own_product_are_relatives(october_2023):
    """ "HTTP/2 zero-day exploited for DDoS attacks" tells Rapid Reset in other words than KEV's entry: it says
    the entry's rare words, in the week of the listing, so it answers though it reads less alike."""
    results = _ask(october_2023, "CVE-2023-44487 anyone actually exploiting it?", now="2023-10-14T16:00:00+00:00")
    relatives = [r for r in results.results if "same_vulnerability_as" in r.why]
    assert relatives, [r.record.title for r in results.results]
    assert any(r.why["similarity"] < 0.6 for r in relatives), "a relative read less alike than the plain bar"
    for r in relatives:
        text = f"{r.record.title} {r.record.summary}".lower()
        assert "rapid reset" in text or "http/2" in text, r.record.title


@pytest.mark.parametrize(
    ("cve", "product"),
    [
        ("CVE-2023-22515", "confluence"),
        ("CVE-2023-42793", "teamcity"),
        ("CVE-2023-20109", "cisco"),
        ("CVE-2023-4211", "mali"),
    ],
)
def test_only_the_bugs_own_rarely_said_name_lowers_the_bar(october_2023, cve, product):
    """The week's Patch Tuesday round-up, Apple's and Qualcomm's zero-days read alike to any bug of that week:
    what they say ("kernel", "zero-day", "Windows") is said by many stories, or is not what the records
    printing the id agree the bug is in, so they are no relatives."""
    results = _ask(october_2023, f"{cve} what is it?", now="2023-10-14T16:00:00+00:00").results
    for r in results:
        if "same_vulnerability_as" in r.why:
            assert product in f"{r.record.title} {r.record.summary}".lower(), r.record.title
