"""The relevance gate's general mechanisms, each on a few records shaped like the real sources.

Every case pairs a record that answers with one that must not, so a gate that lets everything through
fails as surely as one that lets nothing through.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from retrieval.aboutness import is_name, names_a_subject
from tests.conftest import needs_model

NOW = datetime(2025, 11, 20, 15, 0, tzinfo=UTC)


def _record(title: str, *, hours_ago: float = 3, summary: str = "", **fields: Any):
    from retrieval.records import ThreatRecord

    slug = "".join(c if c.isalnum() else "-" for c in title.lower())[:60]
    return ThreatRecord(
        title=title,
        summary=summary or title,
        published=NOW - timedelta(hours=hours_ago),
        url=f"https://news.example/{slug}",
        source=fields.pop("source", "Example News"),
        **fields,
    )


def _searcher_over(tmp_path, records):
    """A store of ``records`` in ``tmp_path`` and a searcher over it (close the store when done)."""
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    store.upsert(records)
    return store, Searcher(store)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path_factory.mktemp("gate") / "data"))
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True}
    store.upsert(
        [
            # KEV entries of the last days, and one long ago.
            _record(
                "Acme Gateway Path Traversal Vulnerability (CVE-2025-61001)",
                hours_ago=30,
                cves=["CVE-2025-61001"],
                vendors=["Acme"],
                products=["Gateway"],
                tags=["ransomware"],  # what enrichment reads from the catalogue's own flag
                **kev,
            ),
            _record(
                "Globex Router Command Injection Vulnerability (CVE-2025-61002)",
                hours_ago=50,
                cves=["CVE-2025-61002"],
                vendors=["Globex"],
                products=["Router"],
                **kev,
            ),
            _record(
                "Initech Portal Missing Authorization Vulnerability (CVE-2025-61003)",
                hours_ago=24 * 60,
                cves=["CVE-2025-61003"],
                vendors=["Initech"],
                products=["Portal"],
                **kev,
            ),
            # A bug the press calls "GlassBleed"; the catalogue only knows its CVE and product name.
            _record(
                "Critical GlassBleed flaw in Umbrella Cache exploited (CVE-2025-62010)",
                hours_ago=60,
                cves=["CVE-2025-62010"],
                kind="vulnerability",
            ),
            _record(
                "GlassBleed: attackers leak memory from Umbrella Cache servers, CVE-2025-62010",
                hours_ago=55,
                cves=["CVE-2025-62010"],
                kind="vulnerability",
            ),
            _record(
                "Umbrella Cache Out-of-Bounds Read Vulnerability (CVE-2025-62010)",
                hours_ago=20,
                cves=["CVE-2025-62010"],
                vendors=["Umbrella"],
                products=["Cache"],
                **kev,
            ),
            # A nickname whose bug is not (yet) in the catalogue.
            _record(
                "PaperCut-style TinLizard bug hits Hooli Print (CVE-2025-62020)",
                hours_ago=40,
                cves=["CVE-2025-62020"],
                kind="vulnerability",
            ),
            _record(
                "TinLizard exploitation spreads to Hooli Print servers, CVE-2025-62020",
                hours_ago=30,
                cves=["CVE-2025-62020"],
                kind="vulnerability",
            ),
            # A vendor's status page names its product without the vendor.
            _record(
                "Copilot's model has degraded performance",
                hours_ago=5,
                kind="outage",
                vendors=["GitHub"],
                products=["Copilot"],
                source="GitHub Status",
            ),
            _record(
                "Incident with Pages",
                hours_ago=4,
                kind="outage",
                vendors=["GitHub"],
                products=["Pages"],
                source="GitHub Status",
            ),
            # An ICS advisory that lists a third-party library's CVE.
            _record(
                "Siemens SINEC NMS",
                hours_ago=6,
                kind="vulnerability",
                vendors=["Siemens"],
                cves=["CVE-2023-0286", "CVE-2022-4304"],
                source="CISA CSAF",
                tags=["ICSA-24-044-01", "ICS"],  # as enrichment reads them from a CSAF id
            ),
            _record(
                "Siemens SCALANCE W700",
                hours_ago=6,
                kind="vulnerability",
                vendors=["Siemens"],
                cves=["CVE-2024-1111"],
                source="CISA CSAF",
            ),
            # The day's KEV news: a CISA story, but no ICS advisory.
            _record(
                "CISA adds two known exploited vulnerabilities to catalog",
                hours_ago=3,
                kind="vulnerability",
                summary="CISA added two vulnerabilities to its catalog based on evidence of active exploitation.",
            ),
            # An attack filed as an outage, and a botnet story that only says "outage".
            _record(
                "Emergency alert platform shut down following cyberattack on its vendor", hours_ago=8, kind="outage"
            ),
            _record("Botnet used the outage to spread to exposed routers", hours_ago=8, kind="malware"),
        ]
    )
    yield Searcher(store)
    store.close()


def _titles(searcher, text: str) -> list[str]:
    return [r.record.title for r in searcher.search(text, now=NOW).results]


def _rule_answers(searcher, text: str) -> list[str]:
    """The titles the ranking's rules accept, before the model's judgment and without its near misses."""
    from retrieval.query import parse_query

    query = parse_query(text, now=NOW, dictionary=searcher.dictionary)
    return [r.record.title for r in searcher.ranked(query) if "near_miss" not in r.why]


def _rule_answers_why(searcher, text: str) -> list[tuple[str, str | None]]:
    """Each result the ranking's rules give (before the model's judgment) and the window it was reported after."""
    from retrieval.query import parse_query

    results = searcher.ranked(parse_query(text, now=NOW, dictionary=searcher.dictionary))
    return [(r.record.title, r.why.get("reported_after")) for r in results]


def _told(searcher, text: str) -> list[str]:
    """Each result's title, then those of its cluster's other records (one incident, told by several), before
    the model's judgment."""
    from retrieval.query import parse_query

    results = searcher.ranked(parse_query(text, now=NOW, dictionary=searcher.dictionary))
    members = searcher.store.get_many([m for r in results for m in r.members])
    return [t for r in results for t in [r.record.title, *(members[m].title for m in r.members)]]


@pytest.mark.parametrize(
    ("word", "subject"),
    [("went", False), ("publish", False), ("include", False), ("hosted", False), ("water", True),
     ("hospital", True), ("rockwell", True), ("react2shell", True), ("cve-2025-1234", True), ("cyber incident", True)],
)  # fmt: skip
def test_only_words_that_can_name_something_name_the_subject(word: str, subject: bool) -> None:
    assert names_a_subject(word) is subject


@pytest.mark.parametrize(
    ("term", "name"),
    [("boeing", True), ("gainsight", True), ("europe-west4", True), ("snake", False), ("hospitals", False)],
)
def test_words_the_lexicon_does_not_know_may_be_names(term: str, name: bool) -> None:
    assert is_name(term) is name  # the search also asks the store how it capitalises them


@needs_model
def test_a_verb_in_the_question_does_not_gate(searcher) -> None:
    titles = _titles(searcher, "what went into KEV this week?")
    assert any("CVE-2025-61001" in t for t in titles) and any("CVE-2025-61002" in t for t in titles)
    assert not any("CVE-2025-61003" in t for t in titles), "the window still holds"


@needs_model
def test_words_no_catalogue_entry_of_the_window_uses_are_chatter_but_names_are_not(searcher) -> None:
    titles = _titles(searcher, "what landed in KEV this week? morning catch-up")
    assert any("CVE-2025-61001" in t for t in titles) and any("CVE-2025-61002" in t for t in titles)
    assert _titles(searcher, "any hooli bugs in KEV this week?") == [], "a name still has to match"


@needs_model
def test_a_catalogue_question_resolves_a_nickname_to_its_cve(searcher) -> None:
    response = searcher.search("did glassbleed make it into the KEV catalog?", now=NOW)
    assert [r.record.title for r in response.results] == [
        "Umbrella Cache Out-of-Bounds Read Vulnerability (CVE-2025-62010)"
    ]
    assert response.query.to_filters()["catalogue"] == "kev"
    not_listed = searcher.search("is tinlizard in KEV yet?", now=NOW)
    assert not_listed.results == [], "its CVE is not in the catalogue: the honest answer is no"
    # No record says the nickname with the asker's other words: the rarest word is the name, the rest chatter.
    chatter = searcher.search("is glassbleed in KEV yet or still just print servers exploitation?", now=NOW)
    assert [r.record.title for r in chatter.results] == [
        "Umbrella Cache Out-of-Bounds Read Vulnerability (CVE-2025-62010)"
    ]


def test_a_catalogue_question_about_a_cve_is_answered_by_that_cves_own_entry(tmp_path) -> None:
    """KEV's entry for one CVE names related ones in its notes; it is no entry for them."""
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True, "vendors": ["Microsoft"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Microsoft SharePoint Improper Authentication Vulnerability (CVE-2025-49706)", hours_ago=30,
                    cves=["CVE-2025-49706", "CVE-2025-53771"], summary="Related: CVE-2025-53771.", **kev),
            _record("SharePoint ToolShell chain explained", hours_ago=20, cves=["CVE-2025-49706"],
                    summary="Researchers detail the SharePoint ToolShell chain."),
        ],
    )  # fmt: skip
    assert _titles(searcher, "is CVE-2025-53771 on KEV?") == []
    assert _titles(searcher, "is CVE-2025-49706 on KEV?")[0].endswith("(CVE-2025-49706)")
    assert _titles(searcher, "CVE-2025-53771 exploited?") != [], "outside a catalogue question the entry tells of it"
    store.close()


@needs_model
def test_common_words_of_the_context_do_not_keep_records_from_the_gate(tmp_path) -> None:
    """ "what did cisa add to KEV yesterday? need it for the vuln call": "need" and "call" are in most of
    the store; as in the gate, they cannot require a text hit before it."""
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True}
    entries = [
        _record(
            f"Quokka {name} Remote Code Execution Vulnerability (CVE-2025-6100{n})",
            hours_ago=30,
            cves=[f"CVE-2025-6100{n}"],
            **kev,
        )
        for n, name in enumerate(["Gateway", "Portal", "Router"])
    ]
    chatter = [_record(f"Story {n}: we need a call about it", hours_ago=24 * (n + 5),
                       summary="Teams need to call their vendor.") for n in range(60)]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, [*entries, *chatter])
    assert sorted(_titles(searcher, "what did cisa add to KEV yesterday? need it for the vuln call")) == sorted(
        e.title for e in entries
    )
    store.close()


@needs_model
def test_a_catalogue_entry_that_ransomware_uses_answers_a_ransomware_question(searcher) -> None:
    titles = _titles(searcher, "any KEV additions this week used by ransomware?")
    assert titles == ["Acme Gateway Path Traversal Vulnerability (CVE-2025-61001)"]


@needs_model
def test_an_ics_advisory_question_wants_ics_advisories(searcher, monkeypatch) -> None:
    from retrieval import aboutness

    # In a real store "ICS" is too common a word to gate (thousands of advisories carry it): only the facet decides.
    monkeypatch.setattr(aboutness, "COMMON_SHARE", 0.0)
    monkeypatch.setattr(aboutness, "COMMON_FLOOR", 0)
    assert _titles(searcher, "any new CISA ICS advisories today?") == ["Siemens SINEC NMS"]
    kev_of_the_day = _titles(searcher, "any new advisories today?")
    assert "Siemens SINEC NMS" in kev_of_the_day and len(kev_of_the_day) > 1, "without 'ICS' other advisories count"


@needs_model
def test_a_product_matches_its_vendors_own_naming(searcher) -> None:
    titles = _titles(searcher, "github copilot having problems today?")
    assert "Copilot's model has degraded performance" in titles
    assert "Incident with Pages" not in titles, "another product of the same vendor is not this one"


@needs_model
def test_a_named_cve_is_enough_beside_another_vendors_name(searcher) -> None:
    titles = _titles(searcher, "ICS advisories this week that include the OpenSSL bug CVE-2023-0286")
    assert titles == ["Siemens SINEC NMS"]


@needs_model
def test_an_inferred_kind_admits_an_attack_filed_as_an_outage_but_not_a_botnet_story(searcher) -> None:
    assert "Emergency alert platform shut down following cyberattack on its vendor" in _titles(
        searcher, "emergency alert platform ransomware attack?"
    )
    assert "Botnet used the outage to spread to exposed routers" not in _titles(searcher, "router outage today?")


@pytest.fixture(scope="module")
def breach_searcher(tmp_path_factory):
    """A vendor's breach through a third party, the weekly round-ups that name the vendor, other attacks."""
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path_factory.mktemp("focus") / "data"))
    breach = {"kind": "breach", "vendors": ["Salesforce"]}
    store.upsert(
        [
            _record("Salesforce confirms new breach linked to Glimmerlink apps", hours_ago=20, **breach,
                    summary="Attackers used stolen Glimmerlink OAuth tokens to reach Salesforce customer data."),
            _record("Salesforce customers hacked again via Glimmerlink", hours_ago=18, **breach,
                    summary="A second wave of data theft through the Glimmerlink integration hit Salesforce tenants."),
            *[
                _record(f"Week {n} breach round-up", hours_ago=24 * (7 * k + 1), **breach,
                        summary=f"Week {n}: Salesforce data theft claims, a hospital leak, a telecom breach.")
                for k, n in enumerate((47, 46, 45))
            ],
            _record("Ransomware gang hits regional hospital systems", hours_ago=30, kind="ransomware",
                    summary="A ransomware attack encrypted systems at a regional hospital network this week."),
        ]
    )  # fmt: skip
    yield Searcher(store)
    store.close()


@needs_model
def test_a_rare_word_that_carries_the_question_is_in_every_answer(breach_searcher, monkeypatch) -> None:
    from retrieval import search

    question = "salesforce hacked through glimmerlink?"
    focused = _titles(breach_searcher, question)
    assert sorted(focused) == ["Salesforce confirms new breach linked to Glimmerlink apps",
                               "Salesforce customers hacked again via Glimmerlink"]  # fmt: skip
    monkeypatch.setattr(search, "FOCUS_SHARE", 2.0)  # the mechanism off: the round-ups naming Salesforce come back
    monkeypatch.setattr(search, "FOCUS_BEST_COVERAGE", 2.0)
    monkeypatch.setattr(search.Searcher, "_is_name", lambda self, term: False)  # and the names rule
    assert any(t.startswith("Week") for t in _titles(breach_searcher, question))


@needs_model
def test_meaning_alone_does_not_stand_in_for_a_name(breach_searcher, monkeypatch) -> None:
    from retrieval.search import Searcher

    question = "was Hooli hit by ransomware this week?"
    assert _titles(breach_searcher, question) == []
    monkeypatch.setattr(Searcher, "_is_name", lambda self, term: False)  # the mechanism off
    monkeypatch.setattr(Searcher, "_saying_what_is_asked", lambda self, query, kept, reasons, context: kept)  # and this
    unjudged = Searcher(breach_searcher.store, judged=False)  # (the relevance model would drop it too: the rules alone)
    assert _titles(unjudged, question) == ["Ransomware gang hits regional hospital systems"]


@needs_model
def test_a_story_that_calls_the_product_by_its_own_word_is_a_cve_relative(tmp_path) -> None:
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    store.upsert(
        [
            _record("Hooli ArrayGate AG OS Command Injection Vulnerability (CVE-2025-63001)", hours_ago=30,
                    source="CISA KEV", kind="vulnerability", exploited=True, cves=["CVE-2025-63001"],
                    vendors=["Hooli"], products=["ArrayGate AG"],
                    summary="Hooli ArrayGate AG contains an OS command injection vulnerability that allows "
                            "attackers to execute commands on the VPN gateway."),
            _record("Hackers exploit ArrayGate VPN command injection flaw to plant webshells", hours_ago=20,
                    kind="vulnerability", exploited=True,
                    summary="Attackers are exploiting a command injection flaw in ArrayGate VPN gateways to "
                            "execute commands and plant webshells."),
            _record("Hooli reports record quarterly earnings", hours_ago=20, vendors=["Hooli"]),
        ]
    )  # fmt: skip
    titles = [r.record.title for r in Searcher(store).search("CVE-2025-63001 exploited?", now=NOW).results]
    store.close()
    assert titles == [
        "Hooli ArrayGate AG OS Command Injection Vulnerability (CVE-2025-63001)",
        "Hackers exploit ArrayGate VPN command injection flaw to plant webshells",
    ]


@needs_model
def test_a_report_published_at_the_moment_of_asking_is_in_a_window_that_runs_to_now(tmp_path) -> None:
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    store.upsert([_record("Incident with blocked GitHub.com traffic", hours_ago=0, kind="outage", vendors=["GitHub"])])
    searcher = Searcher(store)
    for question in ("github outage since last night?", "github outage today?", "github outage?"):
        assert _titles(searcher, question) == ["Incident with blocked GitHub.com traffic"], question
    store.close()


@needs_model
def test_a_status_page_names_the_product_it_reports_on(tmp_path) -> None:
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    store.upsert(
        [
            _record("Multiple services experiencing elevated latency in us-west1", hours_ago=3, kind="outage",
                    vendors=["Google"], products=["Cloud Build", "BigQuery"], source="Google Cloud Status"),
            _record("Multiple services experiencing elevated latency in us-east4", hours_ago=3, kind="outage",
                    vendors=["Google"], products=["Cloud Build"], source="Google Workspace Updates"),
        ]
    )  # fmt: skip
    assert _titles(Searcher(store), "google cloud having issues rn?") == [
        "Multiple services experiencing elevated latency in us-west1"
    ]
    store.close()


def test_a_status_page_that_reports_by_place_answers_a_question_about_a_place_only_there(tmp_path) -> None:
    """ "quokkaflare tunnel problems in lisbon?": its status page names the place of local trouble, so its
    trouble elsewhere (or everywhere) is no answer; a page that never names places answers for every place."""
    from retrieval import search

    flare: dict[str, Any] = {"kind": "outage", "vendors": ["Cloudflare"], "source": "Cloudflare Status"}
    hub: dict[str, Any] = {"kind": "outage", "vendors": ["GitHub"], "source": "GitHub Status"}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Tunnel connectivity issues in South America", hours_ago=5, **flare),
            _record("Tunnel connectivity issues for Zero Trust customers", hours_ago=6, **flare),
            *[_record(f"Network performance issues in {city}", hours_ago=24 * (n + 9), **flare)
              for n, city in enumerate(["Warsaw, Poland (WAW)", "Lisbon, Portugal (LIS)", "Seoul (ICN)"])],
            _record("Incident with avatars not loading", hours_ago=4, **hub),
            *[_record(f"Incident with Actions {n}", hours_ago=24 * (n + 9), **hub) for n in range(5)],
        ],
    )  # fmt: skip
    assert _titles(searcher, "cloudflare tunnel problems in lisbon today?") == []
    assert _titles(searcher, "cloudflare tunnel problems in brazil today?") == [
        "Tunnel connectivity issues in South America"  # a region around the asked country
    ]
    assert len(_titles(searcher, "cloudflare tunnel problems today?")) == 2  # no place asked: both
    assert _titles(searcher, "github avatars broken for our riyadh office today?") == [
        "Incident with avatars not loading"
    ]
    searcher._place_reporting.clear()
    searcher._place_reporting["Cloudflare Status"] = False
    assert len(_titles(searcher, "cloudflare tunnel problems in lisbon today?")) == 2, "the rule is what cuts"
    assert search.PLACE_REPORTING_SHARE < 1
    store.close()


def test_a_status_report_answers_by_its_service_alone_only_a_question_about_trouble(tmp_path) -> None:
    """ "did github ever unmask the quokka repo leaker?" names GitHub, and "Incident with Codespaces"
    is GitHub's; but it is no answer to anything but a question about GitHub in trouble."""
    hub: dict[str, Any] = {"kind": "outage", "vendors": ["GitHub"], "source": "GitHub Status"}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Incident with Codespaces", hours_ago=4, **hub),
            *[_record(f"Incident with Actions {n}", hours_ago=24 * (n + 9), **hub) for n in range(5)],
        ],
    )  # fmt: skip
    assert _titles(searcher, "did github ever unmask the quokka repo leaker? anything today") == []
    assert _titles(searcher, "github codespaces erroring for our monorepo today?") == ["Incident with Codespaces"]
    assert _titles(searcher, "github codespaces and our monorepo today?") == [], "no trouble asked about"
    assert _titles(searcher, "any github incidents today?") == ["Incident with Codespaces"]
    store.close()


def test_a_status_report_is_about_the_pages_owner_unless_it_names_another_alone(tmp_path) -> None:
    from retrieval.search import _status_report_about

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Issues linking GitHub accounts to Cloudflare Pages", hours_ago=3, kind="outage",
                    vendors=["Cloudflare", "GitHub"], source="Cloudflare Status"),
            _record("Mandiant.com was inaccessible globally", hours_ago=3, kind="outage",
                    vendors=["Google", "Mandiant"], source="Google Cloud Status"),
        ],
    )  # fmt: skip
    assert _titles(searcher, "is github having a bad day today? pushes timing out") == []
    assert _titles(searcher, "cloudflare pages broken today?") == ["Issues linking GitHub accounts to Cloudflare Pages"]
    assert _titles(searcher, "mandiant.com down today?") == ["Mandiant.com was inaccessible globally"]
    record = _record("Issues linking GitHub accounts to Cloudflare Pages", source="Cloudflare Status")
    assert _status_report_about(record, "Cloudflare") and not _status_report_about(record, "GitHub")
    assert _status_report_about(_record("Issues linking GitHub accounts", source="Example News"), "GitHub")
    store.close()


@needs_model
def test_an_answer_that_says_little_of_what_the_best_one_says_is_about_something_else(tmp_path, monkeypatch) -> None:
    from bot.config import Settings
    from retrieval import search
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    ransomware = {"kind": "ransomware"}
    store.upsert(
        [
            _record("Glimmerton International Airport purportedly compromised by Qilin ransomware", hours_ago=5,
                    **ransomware),
            _record("Qilin's Linux encryptor now targets VMware ESXi hosts", hours_ago=30, **ransomware),
            _record("Qilin affiliates recruit pentesters on underground forums", hours_ago=50, **ransomware),
            _record("Leaked Qilin panel shows how affiliates split payments", hours_ago=70, **ransomware),
            *[_record(f"Patch round-up {n}: browser and office fixes", hours_ago=80 + n) for n in range(12)],
        ]
    )  # fmt: skip
    searcher = search.Searcher(store)
    question = "was glimmerton airport hit by qilin ransomware?"
    assert _titles(searcher, question) == [
        "Glimmerton International Airport purportedly compromised by Qilin ransomware"
    ]
    monkeypatch.setattr(search, "FOCUS_BEST_COVERAGE", 2.0)  # the mechanism off: other Qilin stories come back
    monkeypatch.setattr(search, "FOCUS_SHARE", 2.0)
    assert len(_titles(searcher, question)) > 1
    store.close()


@needs_model
def test_a_name_says_what_the_question_is_about_more_than_the_vendors_beside_it(tmp_path) -> None:
    from bot.config import Settings
    from retrieval.search import Searcher
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"))
    store.upsert(
        [
            _record("GlassLogo flaws in UEFI image parsers let attackers plant bootkits", hours_ago=5,
                    kind="vulnerability"),
            _record("Dell ships new laptops with longer battery life", hours_ago=5, vendors=["Dell"]),
            *[_record(f"Patch round-up {n}: browser and office fixes", hours_ago=80 + n) for n in range(12)],
        ]
    )  # fmt: skip
    titles = _titles(Searcher(store), "glasslogo - are our dell/lenovo fleets affected?")
    assert titles[0] == "GlassLogo flaws in UEFI image parsers let attackers plant bootkits", titles
    store.close()


@needs_model
def test_a_question_with_no_subject_reads_only_the_newest_records(searcher, monkeypatch) -> None:
    from retrieval import search

    reads: list[int | None] = []
    store = searcher.store
    original = store.candidate_rows

    def counting(where, **kwargs):
        reads.append(kwargs.get("limit"))
        return original(where, **kwargs)

    monkeypatch.setattr(store, "candidate_rows", counting)
    monkeypatch.setattr(search, "WIDE_CANDIDATES", 2)
    titles = _titles(searcher, "what went into KEV?")
    assert reads[0] == 2, "topic-less: the newest WIDE_CANDIDATES rows, not every match"
    assert titles[:2] == [
        "Umbrella Cache Out-of-Bounds Read Vulnerability (CVE-2025-62010)",
        "Acme Gateway Path Traversal Vulnerability (CVE-2025-61001)",
    ]
    reads.clear()
    _titles(searcher, "path traversal vulnerability")
    assert reads == [None], "a question with a subject still reads every match"


@needs_model
def test_words_no_ics_advisory_of_the_window_uses_are_chatter(searcher, monkeypatch) -> None:
    from retrieval import aboutness
    from retrieval.search import Searcher

    monkeypatch.setattr(aboutness, "COMMON_SHARE", 0.0)  # as in a real store: "ICS" and "CISA" are common words
    monkeypatch.setattr(aboutness, "COMMON_FLOOR", 0)
    question = "what ICS advisories did cisa drop today?"
    assert _rule_answers(searcher, question) == ["Siemens SINEC NMS"]
    monkeypatch.setattr(Searcher, "_only_chatter", lambda self, query, candidates: False)
    assert _rule_answers(searcher, question) == [], "without the mechanism 'drop' gates: no advisory says it"


@needs_model
def test_a_record_answers_for_its_own_vendor_the_dictionary_does_not_know(tmp_path, monkeypatch) -> None:
    from retrieval import search

    csaf: dict[str, Any] = {"kind": "vulnerability", "source": "CISA CSAF", "tags": ["ICS"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Quorvex SmartGrid Manager", hours_ago=30, vendors=["Quorvex"], **csaf,
                    summary="Successful exploitation could allow an attacker to execute arbitrary SQL commands."),
            _record("Quorvex Relay Studio", hours_ago=50, vendors=["Quorvex"], **csaf,
                    summary="Exploitation could let an attacker read arbitrary files on the engineering station."),
            _record("Hollis Marlow Quorvex 3500 Rack", hours_ago=45, vendors=["Hollis Marlow - Quorvex Systems"], **csaf,
                    summary="An attacker could change the rack's configuration."),
            _record("Zentrix Edge Gateway", hours_ago=40, vendors=["Zentrix"], **csaf,
                    summary="Quorvex-compatible gateways let an attacker bypass authentication."),
            _record("Water plant operators warned about exposed HMIs", hours_ago=20, kind="advisory",
                    summary="Operators at water plants should take HMIs off the internet, the agency said."),
        ]
    )  # fmt: skip
    question = "quorvex advisories this week? our plant runs their kit on line three"
    titles = _rule_answers(searcher, question)
    assert sorted(titles[:3]) == [
        "Hollis Marlow Quorvex 3500 Rack",
        "Quorvex Relay Studio",
        "Quorvex SmartGrid Manager",
    ]
    assert "Water plant operators warned about exposed HMIs" not in titles
    monkeypatch.setattr(search, "_own_names_said", lambda record, terms, names: [])
    assert len(_rule_answers(searcher, question)) < 3, "without the mechanism the context words gate"
    store.close()


def test_names_outside_the_clause_that_asks_for_the_catalogue_are_context(searcher, monkeypatch) -> None:
    from retrieval import search

    question = "morning catch-up - what landed in KEV this week? heard there's a hooli one lol"
    titles = _titles(searcher, question)
    assert any("CVE-2025-61001" in t for t in titles) and any("CVE-2025-61002" in t for t in titles)
    assert _titles(searcher, "any hooli bugs in KEV this week?") == [], "in the asking clause a name still gates"
    # ("hooli" would resolve to TinLizard's CVE: its stories say both; but it is outside the asking clause.)
    monkeypatch.setattr(search, "_catalogue_clause", lambda text, catalogue: None)
    assert _titles(searcher, question) == [], "without the mechanism the name gates"


def test_two_word_names_are_the_consecutive_question_words_the_best_answer_says_together() -> None:
    from retrieval.search import _two_word_names

    terms, carried = ["amaranth", "dragon", "chinese", "group"], ["amaranth", "dragon", "group"]
    assert _two_word_names(terms, carried, "new amaranth-dragon group exploits winrar") == [["amaranth", "dragon"]]
    assert _two_word_names(terms, carried, "new amaranth dragon group") == [["amaranth", "dragon"]]
    assert _two_word_names(terms, carried, "a dragon, an amaranth and a group") == [], "apart they are no name"
    assert _two_word_names(terms, ["amaranth"], "amaranth dragon") == [], "the best must say both"


@needs_model
def test_entries_that_answer_by_their_vendor_are_not_cut_for_the_questions_other_words(tmp_path, monkeypatch) -> None:
    """ "craft cms kev entries? client runs like 6 craft sites": one entry happens to say "client"."""
    from retrieval import search

    monkeypatch.setattr(search, "SAME_STORY_SIMILARITY", 1.01)  # templated entries all read alike: not the reason

    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True, "vendors": ["Craft CMS"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Craft CMS Code Injection Vulnerability (CVE-2025-1001)", hours_ago=24 * 90,
                    cves=["CVE-2025-1001"], **kev, summary="Craft CMS contains a code injection vulnerability."),
            _record("Craft CMS External Control of Web Parameter (CVE-2025-1002)", hours_ago=24 * 60,
                    cves=["CVE-2025-1002"], **kev,
                    summary="Craft CMS lets a remote client control a web parameter that should be immutable."),
            _record("Craft CMS Path Traversal Vulnerability (CVE-2024-1003)", hours_ago=24 * 300,
                    cves=["CVE-2024-1003"], **kev, summary="Craft CMS contains a path traversal vulnerability."),
            _record("Globex Router Command Injection Vulnerability (CVE-2025-2001)", hours_ago=24 * 30,
                    cves=["CVE-2025-2001"], **{**kev, "vendors": ["Globex"]}),
            # As in a real store, the question's other words are everywhere and "client" is rare.
            *[_record(f"Round-up {n}: which sites to check", hours_ago=24 * (7 * n + 3),
                      summary="Like every week: check these sites, see which cves each runs.") for n in range(20)],
        ]
    )  # fmt: skip
    titles = _titles(searcher, "craft cms kev entries? a client runs like 6 craft sites, which cves do i check")
    assert sorted(t.split(" (")[1] for t in titles) == ["CVE-2024-1003)", "CVE-2025-1001)", "CVE-2025-1002)"]
    store.close()


@needs_model
def test_a_two_letter_name_does_not_stand_in_for_the_vendor_beside_it(tmp_path) -> None:
    """ "what went wrong at github yesterday? our CI was red": a story that says "CI" is not about GitHub."""

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("CISA warns of exploited GitLab CI runner flaw", hours_ago=30, kind="vulnerability",
                    vendors=["GitLab"], summary="Attackers abuse a CI runner bug in GitLab."),
            _record("Stop malicious packages in your CI/CD pipeline", hours_ago=28, kind="other"),
            *[_record(f"Round-up {n}: browser fixes", hours_ago=24 * (n + 3)) for n in range(20)],
        ]
    )  # fmt: skip
    assert _titles(searcher, "what went wrong at github yesterday? our CI was red all afternoon") == []
    store.close()


@needs_model
def test_words_of_a_later_clause_do_not_cut_records_about_what_the_first_clause_asks(tmp_path, monkeypatch) -> None:
    """ "apache ofbiz auth bypass - exploited yet? we have an old ofbiz erp box": "erp" is context."""
    from retrieval import search

    monkeypatch.setattr(search, "SAME_STORY_SIMILARITY", 1.01)  # not the reason the records stay
    vuln: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Apache"], "products": ["OFBiz"], "exploited": True}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Critical zero-day in Apache OFBiz ERP system exposes businesses", hours_ago=30, **vuln),
            _record("Apache OFBiz RCE flaw exploited to find vulnerable Confluence servers", hours_ago=10, **vuln),
            _record("Critical Apache OFBiz vulnerability in attackers' crosshairs", hours_ago=5, **vuln),
            *[_record(f"Round-up {n}: an old box, a new phone", hours_ago=24 * (n + 3),
                      summary="We have an old box here and a new phone there.") for n in range(20)],
        ]
    )  # fmt: skip
    question = "apache ofbiz auth bypass - is it being exploited already? we have an old ofbiz erp box"
    assert len(_rule_answers(searcher, question)) == 3
    monkeypatch.setattr(search, "_first_clause", lambda text: text)  # every word is the question's
    assert len(_rule_answers(searcher, question)) == 1, "without the mechanism 'erp' cuts the other reports"
    store.close()


@needs_model
def test_a_common_word_of_a_product_name_is_not_that_name_in_another_sense(tmp_path, monkeypatch) -> None:
    """ "list every d-link entry in KEV this year - router/NAS cleanup": "router" is a word of "DIR-600 Router"."""
    from retrieval import search

    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True, "vendors": ["D-Link"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("D-Link DIR-600 Router Cross-Site Request Forgery (CSRF) Vulnerability (CVE-2014-100005)",
                    hours_ago=24 * 30, cves=["CVE-2014-100005"], products=["DIR-600 Router"], **kev),
            _record("D-Link Multiple NAS Devices Command Injection Vulnerability (CVE-2024-3273)",
                    hours_ago=24 * 40, cves=["CVE-2024-3273"], products=["Multiple NAS Devices"], **kev),
            *[_record(f"Round-up {n}: inventory and cleanup tips", hours_ago=24 * (n + 3),
                      summary="Every week: inventory, cleanup, every checklist.") for n in range(20)],
        ],
    )  # fmt: skip
    question = "list every d-link entry cisa added to KEV this year - router/NAS inventory cleanup"
    assert len(_titles(searcher, question)) == 2
    monkeypatch.setattr(search.Searcher, "_names_alone", lambda self, word: True)
    assert len(_titles(searcher, question)) == 1, "without the mechanism 'router' reads as the other sense"
    store.close()


@needs_model
def test_exploited_in_words_ranks_for_a_subject_and_filters_a_listing(tmp_path) -> None:
    """ "superset default key - exploited?": the honest answer is the advisory, which says nothing of exploitation."""
    vuln: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Apache"], "products": ["Superset"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Apache Superset insecure default configuration exposes servers to RCE", hours_ago=20,
                    summary="Superset instances keep a default secret key.", **vuln),
            _record("Ivanti EPMM flaw exploited in the wild", hours_ago=30, kind="vulnerability", exploited=True,
                    vendors=["Ivanti"]),
        ],
    )  # fmt: skip
    assert _titles(searcher, "superset default secret key - exploited yet?") == [
        "Apache Superset insecure default configuration exposes servers to RCE"
    ]
    assert _titles(searcher, "any exploited bugs this week?") == ["Ivanti EPMM flaw exploited in the wild"]
    assert _titles(searcher, "superset is:exploited") == [], "an operator still filters"
    store.close()


@needs_model
def test_a_cve_question_about_exploitation_wants_the_reports_of_it_and_else_the_cves_records(tmp_path) -> None:
    vuln: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Progress"], "products": ["MOVEit Transfer"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("MOVEit Transfer zero-day CVE-2023-34362 exploited in mass attacks", hours_ago=20, exploited=True,
                    cves=["CVE-2023-34362"], **vuln),
            _record("New MOVEit Transfer SQL injection flaws found after CVE-2023-34362", hours_ago=10,
                    cves=["CVE-2023-34362", "CVE-2023-35036"], **vuln),
            _record("Superset default secret key flaw CVE-2023-27524 exposes servers", hours_ago=30,
                    cves=["CVE-2023-27524"], kind="vulnerability"),
        ],
    )  # fmt: skip
    assert _titles(searcher, "is CVE-2023-34362 exploited?") == [
        "MOVEit Transfer zero-day CVE-2023-34362 exploited in mass attacks"
    ]
    assert _titles(searcher, "CVE-2023-27524 - exploited yet?") == [
        "Superset default secret key flaw CVE-2023-27524 exposes servers"
    ], "no report of exploitation: the CVE's records are the honest answer"
    store.close()


@needs_model
def test_a_standing_query_filters_on_exploitation(tmp_path) -> None:
    """A channel subscribed to "exploited fortinet bugs" gets reports of exploitation only."""
    from retrieval.query import parse_query

    vuln: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Fortinet"], "products": ["FortiOS"]}
    records = [
        _record("FortiOS SSL-VPN flaw exploited in attacks", hours_ago=2, exploited=True, **vuln),
        _record("Fortinet patches FortiOS denial-of-service bug", hours_ago=1, **vuln),
    ]
    store, searcher = _searcher_over(tmp_path, records)
    query = parse_query("exploited fortinet bugs", now=NOW)
    assert [r.record.title for r in searcher.matching(query, records)] == ["FortiOS SSL-VPN flaw exploited in attacks"]
    store.close()


@needs_model
def test_news_of_an_entrys_addition_follows_the_catalogue_entry(tmp_path) -> None:
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True, "vendors": ["IETF"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Service Location Protocol (SLP) Denial-of-Service Vulnerability (CVE-2023-29552)",
                    hours_ago=48, cves=["CVE-2023-29552"], **kev,
                    summary="SLP lets an attacker register services and use spoofed requests for amplification."),
            _record("CISA adds SLP flaw CVE-2023-29552 to its Known Exploited Vulnerabilities catalog",
                    hours_ago=30, cves=["CVE-2023-29552"], kind="vulnerability"),
            _record("SLP amplification research: CVE-2023-29552 explained", hours_ago=24 * 200,
                    cves=["CVE-2023-29552"], kind="vulnerability"),
            _record("SLP reflection attacks keep growing, says CVE-2023-29552 researcher", hours_ago=20,
                    cves=["CVE-2023-29552"], kind="vulnerability"),
        ],
    )  # fmt: skip
    results = searcher.search("did cisa add the SLP amplification bug to known exploited?", now=NOW).results
    titles = [
        t for r in results for t in [r.record.title, *(searcher.store.get_many(r.members)[m].title for m in r.members)]
    ]
    assert titles[0].startswith("Service Location Protocol (SLP)"), titles
    assert "CISA adds SLP flaw CVE-2023-29552 to its Known Exploited Vulnerabilities catalog" in titles
    assert not any("research" in t or "keep growing" in t for t in titles), "stories that only name the CVE"
    assert _titles(searcher, "is CVE-2023-12345 in KEV yet?") == [], "no entry: still an honest no"
    store.close()


@needs_model
def test_the_context_after_the_question_does_not_dilute_its_anchor(tmp_path, monkeypatch) -> None:
    """ "velvetsoft server sql injection - what can an attacker get? we keep all our creds in VSPX"."""
    from retrieval import search
    from retrieval.query import parse_query

    monkeypatch.setattr(search, "SAME_STORY_SIMILARITY", 1.01)  # not the reason others go
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Velvetsoft Server hit by SQL injection flaw allowing data theft", hours_ago=5, kind="vulnerability"),
            *[_record(f"Product {n} SQL injection vulnerability", hours_ago=24 * (n + 2), kind="vulnerability")
              for n in range(4)],
            *[_record(f"Round-up {n}: what an attacker can get", hours_ago=24 * (n + 9),
                      summary="An attacker can get in; we keep notes.") for n in range(20)],
        ],
    )  # fmt: skip
    question = "velvetsoft server sql injection - what can an attacker get? we keep all our creds in VSPX"
    assert _rule_answers(searcher, question) == ["Velvetsoft Server hit by SQL injection flaw allowing data theft"]
    ranked = searcher.ranked(parse_query(question, now=NOW, dictionary=searcher.dictionary))
    unfocused = {r.record.title for r in ranked if r.why.get("near_miss") == "unfocused"}
    assert {f"Product {n} SQL injection vulnerability" for n in range(4)} <= unfocused, "they go to the model"
    monkeypatch.setattr(search, "_first_clause", lambda text: "")
    assert len(_rule_answers(searcher, question)) > 1, "weighed against the context too, the anchor is too light"
    store.close()


@needs_model
def test_an_answer_says_what_the_asking_sentence_asks_not_only_the_context(tmp_path, monkeypatch) -> None:
    """ "quokkalock ransomware - anything new this week? heard they use some byovd trick to kill edr"."""
    from retrieval import search

    ransomware: dict[str, Any] = {"kind": "ransomware"}
    records = [
        _record("Reynolds ransomware embeds BYOVD driver to disable EDR tools", hours_ago=20, **ransomware,
                summary="The Reynolds ransomware ships a vulnerable driver (BYOVD) to kill EDR processes."),
        _record("Black Basta integrates BYOVD technique to evade EDR", hours_ago=30, **ransomware,
                summary="Black Basta affiliates now load a vulnerable driver to switch off EDR agents."),
        _record("Quokkalock ransomware claims a logistics firm", hours_ago=24 * 40, **ransomware,
                summary="The Quokkalock gang listed a logistics company on its leak site."),
        _record("Akira affiliates kill EDR with a BYOVD driver", hours_ago=24 * 10, **ransomware,
                summary="Akira ransomware loads a vulnerable driver (BYOVD) to kill EDR before encryption."),
        *[_record(f"Round-up {n}: new gangs, new tricks", hours_ago=24 * (n + 9),
                  summary="Ransomware news of the week.", **ransomware) for n in range(12)],
    ]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, records)
    question = "quokkalock ransomware - anything new this week? heard they use some byovd trick to kill edr"
    assert _titles(searcher, question) == [], "this week's BYOVD stories say only the context"
    # "none this week; the latest was …" names the gang's own latest story, not a newer one of the context's
    latest = searcher.latest_before_window(searcher.search(question, now=NOW).query)
    assert latest is not None and latest.record.title == "Quokkalock ransomware claims a logistics firm"
    with monkeypatch.context() as off:
        off.setattr(search.Searcher, "_saying_what_is_asked", lambda self, query, kept, reasons, context: kept)
        assert "Reynolds ransomware embeds BYOVD driver to disable EDR tools" in _titles(searcher, question)
    store.upsert([_record("Quokkalock ransomware now kills EDR with a BYOVD driver", hours_ago=10, **ransomware)])
    assert _titles(searcher, question)[0] == "Quokkalock ransomware now kills EDR with a BYOVD driver"
    store.close()


@needs_model
def test_a_name_the_question_leads_with_is_said_by_every_answer(tmp_path, monkeypatch) -> None:
    """ "quokkafit treadmills - any vulns disclosed?": a close story about another brand's treadmills reads
    like the question (and says "treadmills") but is no answer; the leading name must be said."""
    from retrieval import search

    vulnerability: dict[str, Any] = {"kind": "vulnerability"}
    records = [
        _record("Vulnerabilities exposed Velotron treadmills to malware and DoS attacks", hours_ago=20,
                summary="Flaws in Velotron treadmills let attackers install malware and crash the machines.",
                **vulnerability),
        _record("D-Link DSL routers exploited, no patch for end-of-life models", hours_ago=30,
                vendors=["D-Link"], **vulnerability),
        *[_record(f"Round-up {n}: fitness apps leak data", hours_ago=24 * (n + 9),
                  summary="Weekly news.", **vulnerability) for n in range(12)],
    ]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, records)
    assert _titles(searcher, "quokkafit treadmills - any vulns disclosed?") == []
    assert _titles(searcher, "CVE-2099-0001 quokkafit treadmills - any vulns?") == [], "a CVE nothing names"
    monkeypatch.setattr(search.Searcher, "_leading_name", lambda self, asking, asked, context, **kw: None)
    assert _titles(searcher, "quokkafit treadmills - any vulns disclosed?") != [], "the rule is what cuts it"
    monkeypatch.undo()
    # a record that reads as the question itself answers though it calls the lead otherwise (a nickname)
    jailed = "Australian Man Jailed for Running Fake Wi-Fi Attacks at Airports and Onboard Flights"
    store.upsert([_record(jailed, hours_ago=50, summary=f"{jailed}. He ran fake Wi-Fi at airports and on flights.")])
    nickname = "the aussie guy who ran fake wifi at airports and on flights - how long did he get?"
    assert _titles(searcher, nickname) == [jailed]
    monkeypatch.setattr(search, "LEAD_NAME_UNSAID_SIMILARITY", 1.01)
    assert _titles(searcher, nickname) == []
    monkeypatch.undo()
    # the story of the name itself answers; and a vendor written without its hyphen is that vendor
    assert _titles(searcher, "velotron treadmills - any vulns disclosed?")[0].startswith("Vulnerabilities exposed")
    assert _titles(searcher, "dlink dsl routers getting popped?") == [
        "D-Link DSL routers exploited, no patch for end-of-life models"
    ]
    store.close()


@needs_model
def test_a_vendor_named_only_in_the_context_is_no_mere_mention(tmp_path, monkeypatch) -> None:
    """ "quokkalock ransomware up to anything new? heard they are hitting veeam boxes": Veeam is context, so
    a story of the gang *using* a Veeam exploit answers; asked about Veeam itself, it would be a mention."""
    from retrieval import search

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Quokkalock ransomware uses Veeam exploit against US organizations", hours_ago=48,
                    kind="ransomware", vendors=["Veeam"],
                    summary="The Quokkalock gang exploits a Veeam Backup flaw to reach critical organizations."),
            _record("Veeam Backup & Replication Missing Authentication Vulnerability (CVE-2023-27532)",
                    hours_ago=30, kind="vulnerability", source="CISA KEV", exploited=True,
                    vendors=["Veeam"], cves=["CVE-2023-27532"]),
        ],
    )  # fmt: skip
    question = "quokkalock ransomware up to anything new? heard they are hitting veeam boxes"
    assert _titles(searcher, question) == ["Quokkalock ransomware uses Veeam exploit against US organizations"]
    dashed = "quokkalock ransomware - the veeam exploit thing?"  # after the dash: context too
    assert _titles(searcher, dashed) == ["Quokkalock ransomware uses Veeam exploit against US organizations"]
    monkeypatch.setattr(search, "_first_clause", lambda text: text)  # every word asks: Veeam is the subject
    assert "Quokkalock ransomware uses Veeam exploit against US organizations" not in _titles(searcher, question)
    store.close()


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("40m condé nast records", "40m conde nast records"),  # accents, as questions are typed
        ("hawai'i community college", "hawaii community college"),  # a word's inner apostrophe
        ("ivanti's gateway; we don't know", "ivanti's gateway; we don't know"),  # not a possessive or contraction
    ],
)
def test_record_text_is_read_as_questions_are_typed(text: str, folded: str) -> None:
    from retrieval.gate_text import fold

    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "term", "name", "said"),
    [
        ("cisco unified communications flaw", "unifi", True, False),  # a name is not a stem of another word
        ("cisco unified communications flaw", "unifi", False, True),  # an English word's stem is
        ("sonoma county breach", "sonos", True, False),
        ("porsche owners in russia", "porsches", True, True),  # a plural name says the name
        ("lockbit3 posted a victim", "lockbit", True, True),  # and a version of it
        ("ivanti's gateway", "ivanti", True, True),
        ("switches reboot in a loop", "rebooting", False, True),
    ],
)
def test_names_match_whole_and_words_by_their_stems(text: str, term: str, name: bool, said: bool) -> None:
    from retrieval.search import _matches_term

    assert _matches_term(text, term, name=name) is said


@pytest.mark.parametrize(
    ("text", "term", "said"),
    [
        ("network performance issues in melbourne", "perf", True),  # a shortening starts a longer word
        ("cisco unified communications flaw", "unifi", False),  # but no inflection of it
        ("unifi os consoles", "unifi", True),
        ("the univ of hawaii", "univ", True),
    ],
)
def test_an_unknown_word_in_a_base_form_matches_whole_or_shortened(text: str, term: str, said: bool) -> None:
    from retrieval.search import _matches_term

    assert _matches_term(text, term, shortened=True) is said


@needs_model
def test_a_name_in_a_base_form_is_matched_whole(tmp_path) -> None:
    """ "unifi os bugs on KEV yet?": the Cisco Unified and Arcserve Unified entries are no UniFi bugs."""
    from retrieval.search import Searcher

    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Cisco Unified Communications Products Code Injection Vulnerability (CVE-2026-20045)",
                    hours_ago=24 * 20, vendors=["Cisco"], cves=["CVE-2026-20045"], **kev),
            _record("Arcserve Unified Data Protection Directory Traversal Vulnerability (CVE-2023-26258)",
                    hours_ago=24 * 50, vendors=["Arcserve"], cves=["CVE-2023-26258"], **kev),
        ],
    )  # fmt: skip
    assert _titles(searcher, "unifi os bugs on KEV yet?") == []
    searcher = Searcher(store)
    assert searcher._said_shortened("unifi") and not searcher._said_shortened("rebooting")
    store.close()


@needs_model
def test_a_cve_no_record_names_yet_is_answered_by_the_reports_of_the_bug_it_describes(tmp_path) -> None:
    """ "CVE-2023-38408 openssh agent forwarding rce - details?": the news of the day did not print the CVE."""
    vuln: dict[str, Any] = {"kind": "vulnerability", "vendors": ["OpenBSD"], "products": ["OpenSSH"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("New OpenSSH flaw lets attackers run code through a forwarded ssh-agent", hours_ago=30, **vuln,
                    summary="Qualys found a remote code execution flaw in OpenSSH's forwarded ssh-agent."),
            _record("OpenSSH 9.3 fixes a double free in sshd", hours_ago=24 * 90, **vuln),
            _record("7-Zip fixes a symbolic link flaw (CVE-2025-11001)", hours_ago=24 * 20, kind="vulnerability",
                    cves=["CVE-2025-11001"], vendors=["7-Zip"]),
            _record("7-Zip adds a dark mode", hours_ago=20, vendors=["7-Zip"]),
        ],
    )  # fmt: skip
    titles = _titles(searcher, "CVE-2023-38408 openssh agent forwarding rce - details?")
    assert titles == ["New OpenSSH flaw lets attackers run code through a forwarded ssh-agent"]
    # A CVE that records name, only not in the window, keeps its honest nothing.
    assert _titles(searcher, "CVE-2025-11001 (7zip) - anything new this week, exploitation?") == []
    # A product alone describes no bug: not every OpenSSH story answers for an unknown CVE.
    assert _titles(searcher, "CVE-2023-99999 openssh - exploited?") == []
    store.close()


@needs_model
def test_vendors_named_only_after_the_first_clause_are_context_not_a_requirement(tmp_path, monkeypatch) -> None:
    """ "wp migration plugin flaw - we use the google drive add-ons, are we exposed?": Google is context."""
    from retrieval import search

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Migration plugin flaw leaks cloud storage access tokens", hours_ago=30, kind="vulnerability",
                    summary="Extensions of a popular migration plugin exposed access tokens of backup storage."),
            _record("Google Drive adds a new sharing dialog", hours_ago=20, vendors=["Google"], products=["Drive"]),
        ],
    )  # fmt: skip
    question = "migration plugin token flaw - we use the google drive add-ons for backups, are we exposed?"
    # By the rules, the plugin's story answers; Google's story is at most a near miss, the model's to judge.
    assert _rule_answers(searcher, question) == ["Migration plugin flaw leaks cloud storage access tokens"]
    assert _titles(searcher, question)[0] == "Migration plugin flaw leaks cloud storage access tokens"
    monkeypatch.setattr(search, "_first_clause", lambda text: text)  # Google asked: only its records answer
    assert "Migration plugin flaw leaks cloud storage access tokens" not in _titles(searcher, question)
    store.close()


@needs_model
def test_a_name_stands_in_for_the_vendor_beside_it_only_when_rarer(tmp_path) -> None:
    """ "outlook rce poc out??": every PoC story says "poc"; only the Outlook one answers."""
    vuln: dict[str, Any] = {"kind": "vulnerability"}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("PoC released for Outlook MonikerLink RCE flaw", hours_ago=6, vendors=["Microsoft"],
                    products=["Outlook"], **vuln),
            _record("Researchers publish PoC for Acme VPN gateway RCE", hours_ago=20, vendors=["Acme"], **vuln),
            _record("PoC code for Globex router RCE lands on GitHub", hours_ago=40, vendors=["Globex"], **vuln),
            _record("Initech print server RCE gets a public PoC", hours_ago=60, vendors=["Initech"], **vuln),
            _record("Umbrella CMS RCE: PoC drops days after the patch", hours_ago=80, vendors=["Umbrella"], **vuln),
            *[_record(f"Round-up {n}: patches and advisories", hours_ago=24 * (n + 5)) for n in range(20)],
        ],
    )  # fmt: skip
    assert _titles(searcher, "outlook rce poc out??") == ["PoC released for Outlook MonikerLink RCE flaw"]
    store.close()


@needs_model
def test_a_kev_question_is_answered_by_its_entry_whatever_kind_its_words_suggest(tmp_path) -> None:
    """ "wordpad ntlm hash leak CVE-… - on the KEV list yet?": "leak" suggests a breach; the entry is the answer."""
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Quokkasoft WordPad Information Disclosure Vulnerability (CVE-2023-99563)", hours_ago=30,
                    source="CISA KEV", kind="vulnerability", exploited=True, cves=["CVE-2023-99563"],
                    vendors=["Quokkasoft"], products=["WordPad"],
                    summary="Quokkasoft WordPad contains an information disclosure vulnerability that exposes NTLM hashes."),
        ],
    )  # fmt: skip
    titles = _titles(searcher, "wordpad ntlm hash leak CVE-2023-99563 - on the KEV list yet?")
    assert titles == ["Quokkasoft WordPad Information Disclosure Vulnerability (CVE-2023-99563)"]
    store.close()


@needs_model
def test_a_word_the_store_writes_capitalised_names_the_subject_of_a_question_that_names_nothing_else(
    tmp_path, monkeypatch
) -> None:
    """ "any paramount breach updates this week?": English knows "paramount" only as an adjective, but the
    store writes it capitalised, as a company's name; the week's other breaches are no answer. A word the
    store writes in lower case ("flaky") stays chatter, and a question that names something keeps it context."""
    from retrieval import search

    breach: dict[str, Any] = {"kind": "breach"}
    records = [
        _record("Paramount discloses data breach", hours_ago=24 * 12, **breach,
                summary="Entertainment giant Paramount disclosed a breach; Paramount says personal data was taken."),
        _record("Airline investigates after hacker leaks staff data", hours_ago=20, **breach,
                summary="An airline is investigating a hacker's leak of staff records."),
        _record("Bookstore chain discloses data breach", hours_ago=30, **breach,
                summary="A bookstore chain says customer data was stolen."),
        _record("Flaky logins at a retailer were a credential-stuffing breach", hours_ago=40, **breach,
                summary="Customers reported flaky logins before the retailer confirmed the flaky sessions were a breach."),
        _record("Security is of paramount importance, says regulator", hours_ago=24 * 60,
                summary="Security is of paramount importance, the regulator said."),
        *[_record(f"Round-up {n}: breaches of the week", hours_ago=24 * (n + 20), summary="Weekly news.", **breach)
          for n in range(12)],
    ]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, records)
    assert _titles(searcher, "any paramount breach updates this week?") == []
    assert _titles(searcher, "any paramount breach updates this month?") == ["Paramount discloses data breach"]
    assert _titles(searcher, "any flaky breach updates this week?") != [], "a lower-case word is chatter"
    monkeypatch.setattr(search, "CAPITALISED_MAJORITY", 1.0)
    # (A searcher remembers what it read of a question's words. Unjudged: the relevance model would also drop the
    # week's other breaches, and this shows that the rule alone does.)
    fresh = search.Searcher(store, judged=False)
    assert _titles(fresh, "any paramount breach updates this week?") != [], "the rule is what cuts it"
    store.close()


@needs_model
def test_the_name_leads_the_sentence_that_asks_not_the_context_before_it(tmp_path, monkeypatch) -> None:
    """ "After TRITON hit the petrochem site, Schneider has been quiet. Did ICS-CERT finally publish a Triconex
    advisory this week?": the question leads with Triconex; TRITON is the context no advisory says. And when
    the sentence that asks names nothing ("… which ransomware gang is behind it?"), the context still leads."""
    advisory: dict[str, Any] = {"kind": "vulnerability", "source": "CISA CSAF", "tags": ["ICS"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Quokka Electric Triconex Tricon", hours_ago=30, vendors=["Quokka Electric"], **advisory,
                    summary="Successful exploitation of these vulnerabilities could allow an attacker to misinform the "
                            "Triconex Tricon safety instrumented system."),
            _record("Globex Ransomware gang leaks hospital patient records", hours_ago=40, kind="ransomware",
                    summary="A ransomware gang threatens patients of a hospital with leaking their records."),
        ],
    )  # fmt: skip
    context_first = (
        "After TRITON hit the petrochem site, Quokka has been quiet. Did ICS-CERT finally publish a Triconex "
        "Tricon advisory this week, and what does it cover?"
    )
    assert _titles(searcher, context_first) == ["Quokka Electric Triconex Tricon"]
    elliptic = (
        "fred hutch patients are getting extortion emails about their records. which ransomware gang is behind it?"
    )
    assert _titles(searcher, elliptic) == [], "the name of the context still leads an elliptic question"
    from retrieval import search

    monkeypatch.setattr(search, "_question_sentence", lambda text: None)  # the first sentence, as before
    assert _titles(searcher, context_first) == [], "the rule is what finds it"
    store.close()


@needs_model
def test_a_severity_word_filters_a_listing_but_not_the_reports_of_a_named_cve(tmp_path) -> None:
    """ "vRealize Log Insight CVE-… - VMware says critical unauth RCE. anything beyond the advisory?": the CVE
    says which bug and "critical" describes it; a report that states no severity still answers. "critical
    bugs this week" is a listing, and there the word filters. About a subject ("critical quokkasoft bugs this
    week?"), the word ranks the critical records first and excludes none: sources rate one bug differently, and
    in chat "critical" means "worth acting on". (The listing's filter is ``test_query``'s.)"""
    vulnerability: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Quokkasoft"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Quokkasoft patches Log Insight flaws", hours_ago=30, cves=["CVE-2022-91706"], **vulnerability,
                    summary="Quokkasoft fixed remote code execution flaws in Log Insight (CVE-2022-91706)."),
            _record("Critical Quokkasoft gateway flaw", hours_ago=20, severity="critical", **vulnerability),
            _record("Quokkasoft fixes a low-risk dashboard flaw", hours_ago=10, severity="low", **vulnerability),
        ],
    )  # fmt: skip
    question = "Log Insight CVE-2022-91706 - quokkasoft says critical unauth RCE. anything beyond the advisory so far?"
    assert _titles(searcher, question) == ["Quokkasoft patches Log Insight flaws"]
    about_the_vendor = _rule_answers(searcher, "critical quokkasoft bugs this week?")
    assert about_the_vendor[0] == "Critical Quokkasoft gateway flaw"
    assert "Quokkasoft fixes a low-risk dashboard flaw" in about_the_vendor, "a rating read from words excludes none"
    assert "Quokkasoft patches Log Insight flaws" in about_the_vendor, "no rating stated: it may be the critical one"
    assert _titles(searcher, "severity:critical quokkasoft bugs this week") == ["Critical Quokkasoft gateway flaw"]
    store.close()


@needs_model
def test_a_message_that_opens_with_names_alone_asks_about_them(tmp_path, monkeypatch) -> None:
    """ "Quokkacruft / APT99 - pull together everything reported on them this year so far for the DPRK
    section": the request after the dash says how to answer; the names say what about, and a report that
    says one of them answers though it says nothing of pulling, sections or the DPRK."""
    from retrieval import search

    records = [
        _record("Quokkacruft's evolving arsenal", hours_ago=24 * 30, kind="malware",
                summary="Researchers detail new tooling of the Quokkacruft group."),
        _record("Lazarus targets crypto firms", hours_ago=24 * 20, kind="malware",
                summary="North Korean hackers go after crypto companies."),
    ]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, records)
    question = "Quokkacruft / APT99 - pull together everything reported on them this year so far for the DPRK section"
    assert _titles(searcher, question) == ["Quokkacruft's evolving arsenal"]
    monkeypatch.setattr(search.Searcher, "_first_clause_names", staticmethod(lambda *a: ()))
    unjudged = search.Searcher(store, judged=False).search(question, now=NOW).results
    assert [r.why.get("near_miss") for r in unjudged] == ["topic"], "the rule is what makes it an answer"
    store.close()


@needs_model
def test_an_identifier_most_of_the_window_says_is_what_was_asked_not_a_templates_word(tmp_path) -> None:
    """ "is quokka-east9 (melbourne) on fire? pubsub and bigtable timing out": a region's outage is told once
    per product, so most of the window says the region; that makes it the answer, not a word that tells none."""
    outage: dict[str, Any] = {"kind": "outage", "source": "Example Cloud Status"}
    products = ["Pub/Sub", "Bigtable", "Load Balancing", "Compute", "Filestore", "Networking", "Dataflow",
                "Spanner", "Functions", "Run", "Storage", "Dataproc"]  # fmt: skip
    records = [
        _record(f"{p} issues in quokka-east9", hours_ago=2 + n / 10, **outage,
                summary=f"We are experiencing an issue with {p} in quokka-east9. Customers may see errors.")
        for n, p in enumerate(products)
    ] + [
        _record(f"{p} issues in wombat-west{n}", hours_ago=24 * (n + 5), **outage,
                summary=f"We are experiencing an issue with {p} in wombat-west{n}.")
        for n, p in enumerate(products * 4)
    ]  # fmt: skip
    store, searcher = _searcher_over(tmp_path, records)
    titles = _titles(searcher, "is quokka-east9 on fire right now? pubsub and bigtable timing out for us")
    assert "Pub/Sub issues in quokka-east9" in titles and len(titles) >= 5
    store.close()


@needs_model
def test_the_name_after_anything_on_is_what_is_asked_wherever_it_stands(tmp_path, monkeypatch) -> None:
    """ "After yesterday's Netcomm / Quokkalink router RCE news: anything on Wombatsys?": the names before
    "anything on" are context, and a story about them is no answer; one about the name asked for is."""
    from retrieval import search

    vulnerability: dict[str, Any] = {"kind": "vulnerability"}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Critical flaws found in Netcomm and Quokkalink routers", hours_ago=20, **vulnerability,
                    summary="Researchers disclosed remote code execution flaws in Netcomm and Quokkalink routers."),
            *[_record(f"Round-up {n}: router patches", hours_ago=24 * (n + 9), summary="Weekly news.",
                      **vulnerability) for n in range(12)],
        ],
    )  # fmt: skip
    question = "After yesterday's Netcomm / Quokkalink router RCE news: anything on Wombatsys? our branches run them"
    assert _titles(searcher, question) == []
    monkeypatch.setattr(search, "_ASKED_ABOUT", re.compile(r"(?!)"))
    assert _titles(searcher, question) != [], "the rule is what cuts it"
    monkeypatch.undo()
    store.upsert([_record("Wombatsys mesh routers hit by RCE flaw", hours_ago=10, **vulnerability)])
    assert _titles(searcher, question) == ["Wombatsys mesh routers hit by RCE flaw"]
    store.close()


@needs_model
def test_asked_whether_a_catalogued_bug_is_exploited_its_exploitation_reports_follow_the_entry(tmp_path) -> None:
    """ "CVE-… quokkadb - exploited in the wild? is it on KEV yet?": the entry answers the catalogue part,
    and the bug's reports (not saying "KEV") the rest. "Is it on KEV?" alone asks about the catalogue, and gets
    the entry only."""
    cve = "CVE-2025-61077"
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True}
    news: dict[str, Any] = {"kind": "vulnerability", "cves": [cve]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record(f"QuokkaDB Security Feature Bypass Vulnerability ({cve})", hours_ago=20, cves=[cve], **kev),
            _record("Hackers exploit QuokkaDB storage flaw to breach servers", hours_ago=24 * 12, **news,
                    summary=f"Attackers are exploiting {cve} in QuokkaDB to take over storage servers."),
            _record("QuokkaDB ships 9.2 with faster replication", hours_ago=24 * 14, **news,
                    summary=f"The release also fixes {cve}, found by an internal audit."),
            _record("Hackers exploit QuokkaDB flaw, months ago", hours_ago=24 * 60, **news,
                    summary=f"Attacks on {cve} in QuokkaDB, reported long before the entry."),
        ],
    )  # fmt: skip

    entry = f"QuokkaDB Security Feature Bypass Vulnerability ({cve})"
    answer = _told(searcher, f"{cve} quokkadb — exploited in the wild? is it on KEV yet?")
    assert answer[0] == entry and "Hackers exploit QuokkaDB storage flaw to breach servers" in answer, answer
    assert "QuokkaDB ships 9.2 with faster replication" in answer, "the bug's other reports say what it is"
    assert _told(searcher, f"{cve} quokkadb — is it on KEV yet?") == [entry]
    store.close()


@needs_model
def test_a_past_window_says_when_it_happened_and_late_news_of_it_follows(tmp_path) -> None:
    """ "quokkadb rce that wombat dropped friday": Monday's write-ups answer too, after Friday's story and
    marked as reported after it; an advisory dated Sunday is its own event, and news a week on is not late
    news of Friday any more."""
    vulnerability: dict[str, Any] = {"kind": "vulnerability"}
    friday = NOW - timedelta(days=6, hours=3)  # Fri 14 Nov 12:00; NOW is Thu 20 Nov
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Wombat fixes critical QuokkaDB remote code execution flaw", hours_ago=6 * 24 + 3, **vulnerability,
                    summary="Wombat released QuokkaDB 4.2 to fix a critical RCE in its replication service."),
            _record("Patch QuokkaDB now: RCE details published by researchers", hours_ago=3 * 24 + 3, **vulnerability,
                    summary="Researchers published the details of the QuokkaDB RCE; admins should update."),
            _record("QuokkaDB RCE: vendor advisory", hours_ago=4 * 24 + 3, source="CISA CSAF", **vulnerability,
                    summary="QuokkaDB remote code execution in the replication service."),
            _record("QuokkaDB RCE attacks seen a week on", hours_ago=20, **vulnerability,
                    summary="Attackers now exploit the QuokkaDB RCE in the wild."),
            *[_record(f"Round-up {n}: database patches", hours_ago=24 * (n + 9), summary="Weekly news.",
                      **vulnerability) for n in range(12)],
        ],
    )  # fmt: skip
    results = searcher.search("quokkadb rce that wombat dropped friday - patch tonight?", now=NOW).results
    shown = [(r.record.title, r.why.get("reported_after")) for r in results]
    assert shown == [
        ("Wombat fixes critical QuokkaDB remote code execution flaw", None),
        ("Patch QuokkaDB now: RCE details published by researchers", "Friday"),
    ]
    assert results[0].record.published.date() == friday.date()
    store.close()


@needs_model
def test_news_of_a_past_outage_told_after_its_window_follows_the_incident_and_never_makes_one(tmp_path) -> None:
    """ "what caused yesterday's github outage?": the status page reported it yesterday, the write-ups of its
    cause came today; they follow it, marked as reported after. Asked of a day without an incident, today's
    news of today's outage is another outage, and the honest "none yesterday" stays."""
    hub: dict[str, Any] = {"kind": "outage", "vendors": ["GitHub"], "source": "GitHub Status"}
    news: dict[str, Any] = {"kind": "outage", "vendors": ["GitHub"]}
    yesterday, two_days_ago = 15 + 9, 15 + 24 + 9  # hours before NOW (Thu 15:00) to Wed 06:00 and Tue 06:00

    def incident_then_story(incident_hours_ago: float, story: str, summary: str) -> list:
        return [
            _record("Incident with Git Operations and Pull Requests", hours_ago=incident_hours_ago, **hub,
                    summary="We are investigating degraded performance for Git Operations and Pull Requests."),
            _record(story, hours_ago=5, **news, summary=summary),
            *[_record(f"Round-up {n}: cloud news", hours_ago=24 * (n + 9), summary="Weekly news.") for n in range(12)],
        ]  # fmt: skip

    store, searcher = _searcher_over(
        tmp_path / "one",
        incident_then_story(yesterday, "GitHub blames outage on a failed database failover",
                            "GitHub said a database failover left Git operations and pull requests failing for hours."),
    )  # fmt: skip
    assert _rule_answers_why(searcher, "what caused yesterday's github outage?") == [
        ("Incident with Git Operations and Pull Requests", None),
        ("GitHub blames outage on a failed database failover", "yesterday"),
    ]
    store.close()

    store, searcher = _searcher_over(
        tmp_path / "two",
        incident_then_story(two_days_ago, "GitHub down for thousands of developers",
                            "GitHub went down this morning; Git operations and pull requests failed."),
    )  # fmt: skip
    assert _rule_answers_why(searcher, "any github outages yesterday?") == []
    store.close()


@needs_model
def test_an_entry_printing_the_asked_cve_means_the_product_named_beside_it(tmp_path) -> None:
    """ "CVE-… confluence ognl - in KEV already?": "confluence" alone is also an English word, so the parser does
    not read it as Atlassian's product, and the entry never says "ognl". Without the CVE that reads as the same
    word in another meaning; with the asked CVE printed, the entry is the asked bug's."""
    cve = "CVE-2025-61234"
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True}
    entry = f"Atlassian Confluence Server Remote Code Execution Vulnerability ({cve})"
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record(entry, hours_ago=20, cves=[cve], vendors=["Atlassian"], products=["Confluence"], **kev,
                    summary="Atlassian Confluence Server contains a remote code execution vulnerability."),
            *[_record(f"Round-up {n}: wiki patches", hours_ago=24 * (n + 9), summary="Weekly news.")
              for n in range(12)],
        ],
    )  # fmt: skip
    assert _rule_answers_why(searcher, f"{cve} confluence ognl - exploited? in KEV already?") == [(entry, None)]
    store.close()


@needs_model
def test_a_security_story_headlined_with_the_asked_name_is_not_excluded_by_the_questions_kind_word(
    tmp_path, monkeypatch
) -> None:
    """ "0quokka — real ransomware crew or fake?": the story that answers is filed as a breach ("Group 0Quokka
    accused of faking breach claims"). Its headline names the crew and it reads like the question, so the kind
    word does not exclude it; without the rule, the kind word leaves it a near miss, for the model alone to keep."""
    from retrieval import search
    from retrieval.search import Searcher

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("New cybercrime group 0Quokka accused of faking hundreds of breach claims", hours_ago=30,
                    kind="breach", summary="Researchers say the 0Quokka group invents the companies it names."),
            *[_record(f"Round-up {n}: ransomware news", hours_ago=24 * (n + 9), summary="Weekly news.",
                      kind="ransomware") for n in range(12)],
        ],
    )  # fmt: skip
    question = "0quokka — real ransomware crew or fake? they list two of our clients"
    assert _titles(searcher, question) == ["New cybercrime group 0Quokka accused of faking hundreds of breach claims"]
    monkeypatch.setattr(search, "KIND_UNSAID_SIMILARITY", 1.1)
    unjudged = Searcher(store, judged=False).search(question, now=NOW).results
    assert [r.why.get("near_miss") for r in unjudged] == ["kind"], "the rules alone no longer answer with it"
    store.close()


@needs_model
def test_a_status_page_incident_is_about_the_parts_its_title_lists(tmp_path) -> None:
    """GitHub's page titles an incident by the parts it hit ("Incident with Actions, …, Codespaces, Git
    Operations …"): that is a report about each, not a story that merely mentions them; and on GitHub's page,
    "git" is the git the asker means. A news story that only mentions the parts stays out."""
    hub: dict[str, Any] = {"kind": "outage", "vendors": ["GitHub", "Git"], "source": "GitHub Status"}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Incident with Actions, API Requests, Codespaces, Git Operations, Issues, Pages and Pull Requests",
                    hours_ago=2, products=["Actions", "Codespaces", "Git Operations", "Pages", "Pull Requests"],
                    summary="We are investigating reports of degraded performance for Git Operations.", **hub),
            _record("Incident with Git Operations, Issues and Pull Requests", hours_ago=1,
                    products=["Git Operations", "Issues", "Pull Requests"],
                    summary="We are investigating reports of degraded performance for Git Operations.", **hub),
            _record("Crypto miners abuse GitHub Codespaces and Actions", hours_ago=2, kind="malware",
                    vendors=["GitHub"], summary="Attackers run miners through Codespaces and Actions runners."),
        ],
    )  # fmt: skip
    everything = _titles(
        searcher, "git push hanging, PRs + actions + codespaces all degraded - github-wide incident now?"
    )
    assert everything[0].startswith("Incident with Actions, API Requests, Codespaces")
    assert "Crypto miners abuse GitHub Codespaces and Actions" not in everything
    clones = _titles(searcher, "git clones hanging and PR pages erroring today - github problem or our vpn?")
    assert "Incident with Git Operations, Issues and Pull Requests" in clones
    store.close()


@needs_model
def test_a_cve_asked_if_exploited_gets_the_reports_of_exploitation_first_then_the_bugs_other_reports(tmp_path) -> None:
    """ "CVE-… exploited yet?": exploitation ranks, it excludes nothing; the disclosure says what the bug is."""
    vulnerability: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Acme"], "products": ["Gateway"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Acme patches critical Gateway flaw CVE-2025-61001", hours_ago=24 * 6, cves=["CVE-2025-61001"],
                    **vulnerability),
            _record("Attackers exploit Acme Gateway flaw CVE-2025-61001", hours_ago=20, cves=["CVE-2025-61001"],
                    exploited=True, **vulnerability),
            _record("Globex router flaw CVE-2025-62002 exploited", hours_ago=10, cves=["CVE-2025-62002"],
                    exploited=True, kind="vulnerability"),
        ],
    )  # fmt: skip
    exploitation, disclosure = (
        "Attackers exploit Acme Gateway flaw CVE-2025-61001",
        "Acme patches critical Gateway flaw",
    )
    asked = _told(searcher, "CVE-2025-61001 exploited yet?")
    assert asked[0] == exploitation and any(t.startswith(disclosure) for t in asked), asked
    assert _told(searcher, "exploited:yes CVE-2025-61001") == [exploitation], "as an operator, exploitation excludes"
    store.close()


@needs_model
def test_a_catalogue_question_asking_more_gets_the_bugs_reports_after_its_entry(tmp_path) -> None:
    """ "CVE-… - patched? on KEV?": the entry answers the catalogue, the bug's reports the rest."""
    kev: dict[str, Any] = {"source": "CISA KEV", "kind": "vulnerability", "exploited": True, "vendors": ["Acme"]}
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Acme Gateway Path Traversal Vulnerability (CVE-2025-61001)", hours_ago=30,
                    cves=["CVE-2025-61001"], **kev),
            _record("Acme ships Gateway fix for path traversal CVE-2025-61001", hours_ago=50,
                    cves=["CVE-2025-61001"], kind="vulnerability", vendors=["Acme"]),
            _record("Acme Portal flaw CVE-2025-61009 disclosed", hours_ago=40, cves=["CVE-2025-61009"],
                    kind="vulnerability", vendors=["Acme"]),
        ],
    )  # fmt: skip
    entry, report = "Acme Gateway Path Traversal Vulnerability (CVE-2025-61001)", "Acme ships Gateway fix for path"
    asked_more = _told(searcher, "CVE-2025-61001 - is it patched and is it on KEV?")
    assert asked_more[0] == entry and any(t.startswith(report) for t in asked_more[1:]), asked_more
    assert _told(searcher, "is CVE-2025-61001 on KEV yet?") == [entry], "the catalogue alone: its entry"
    assert _told(searcher, "CVE-2025-61009 - is it patched and on KEV?") == [], "not listed: still an honest no"
    store.close()


@needs_model
def test_what_the_gate_passed_but_the_focus_drops_and_a_vendors_record_not_naming_the_product_are_near_misses(
    tmp_path,
) -> None:
    """The rules' doubts go to the model as near misses, ranked after every answer the rules accept."""
    from retrieval.query import parse_query

    store, searcher = _searcher_over(
        tmp_path,
        [
            _record("Veeam Backup & Replication RCE flaw patched", hours_ago=20, kind="vulnerability",
                    vendors=["Veeam"], products=["Backup & Replication"]),
            _record("Veeam security advisory (AV26-008)", hours_ago=30, kind="advisory", vendors=["Veeam"],
                    summary="Veeam published security updates."),
            _record("Globex security advisory (AV26-009)", hours_ago=30, kind="advisory", vendors=["Globex"],
                    summary="Globex published security updates."),
            _record("Veeam ONE Missing Authentication Vulnerability (CVE-2025-61010)", hours_ago=30, source="CISA KEV",
                    kind="vulnerability", vendors=["Veeam"], products=["ONE"], cves=["CVE-2025-61010"]),
        ],
    )  # fmt: skip
    query = parse_query("veeam backup & replication rce patched this week?", now=NOW, dictionary=searcher.dictionary)
    ranked = searcher.ranked(query)
    assert [r.record.title for r in ranked] == ["Veeam Backup & Replication RCE flaw patched",
                                                "Veeam security advisory (AV26-008)"]  # fmt: skip
    assert "near_miss" not in ranked[0].why and ranked[1].why["near_miss"] == "product"
    # (The catalogue's entry states its product: another of the vendor's products is not this one.)
    store.close()


@needs_model
def test_a_story_naming_only_the_bugs_vendor_is_a_relative_only_within_days_of_the_cve(tmp_path) -> None:
    """ "Google fixes two Android zero-days" is the Framework CVE's story on the day CISA lists it; three weeks
    later, a story of the same words is another of the vendor's bugs."""
    cve = "CVE-2025-48572"
    android: dict[str, Any] = {"kind": "vulnerability", "vendors": ["Android"], "exploited": True}
    story = "Android zero-days exploited in targeted attacks fixed by Google in the monthly security update"
    store, searcher = _searcher_over(
        tmp_path,
        [
            _record(f"Android Framework Privilege Escalation Vulnerability ({cve})", hours_ago=24 * 21, cves=[cve],
                    source="CISA KEV", products=["Framework"], summary="Android Framework zero-day exploited.",
                    **android),
            _record("Google fixes two Android zero-days exploited in attacks", hours_ago=24 * 21 - 5, summary=story,
                    **android),
            _record("Google fixes another Android zero-day exploited in attacks", hours_ago=5, summary=story,
                    **android),
        ],
    )  # fmt: skip
    told = _told(searcher, f"{cve} - exploited? patch level?")
    assert "Google fixes two Android zero-days exploited in attacks" in told, told
    assert "Google fixes another Android zero-day exploited in attacks" not in told, told
    store.close()
