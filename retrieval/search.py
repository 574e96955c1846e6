"""Ranking: from an analyst's question to the few stories that answer it, or to none.

The pipeline, each step for a reason:

1. **Understand** the question (``retrieval.query``): window, kinds, CVEs, vendors, terms.
2. **Hard filters** in SQLite: published before ``now`` and inside the window, the CVE ids, and what
   was written as an operator (``kind:``, ``severity:``, ``exploited:``). Read from words, exploitation
   and severity filter only a listing with no subject ("exploited bugs this week", "critical advisories
   today?"); about a subject they rank. (A CVE id read from the question is the one soft filter: records
   about the same bug that never print its id follow those that do; see ``_cve_relatives``. Typed as
   ``cve:CVE-…`` it is hard.) A record outside them does not exist for this question — that is what makes
   "none today" possible. A question about the KEV catalogue is answered by its entries, and, when it asks
   more of the bug (who exploits it, how, whether it is fixed), by the bug's reports after them.
3. **Candidates**: when the filters leave few records (a narrow window), all of them are
   scored directly from the vectors kept in SQLite — exact, and far faster than Chroma's
   filtered query. Otherwise Chroma's nearest neighbours and the BM25 (FTS5) matches are
   taken and filtered.
4. **Relevance gate**: a question that names a vendor or product only gets records about it;
   one with topic words only gets records that contain them or are close in meaning. Some of its
   rules are judgments rather than facts (a security story about the subject that its kind's words
   miss; one that says too little of the question; a vendor's record that does not name the asked
   product; one that lacks the rare word the best answer carries): the best records they reject follow
   the answer as *near misses*, which only the relevance model (step 7) can keep. An empty result is an
   answer.
5. **Score**: reciprocal rank fusion of dense and BM25 ranks, plus small boosts for a
   vendor/product match, severity, exploitation and recency.
6. **Collapse clusters**: one result per incident, listing the other records as ``members``.
7. **Judge** (``retrieval.relevance``): a model learned from labelled questions weighs what the ranking
   knew of each result against the others, and keeps the results likely to answer; an answer with none
   likely enough is "nothing".
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from retrieval.aboutness import (
    SECURITY_EVENTS,
    TermWeights,
    about_ics,
    contains_word,
    is_name,
    kind_fits,
    kinds_overlap,
    names_a_subject,
    only_mentioned,
    related_kinds,
    word_pattern,
)
from retrieval.cve import CVE_PATTERN
from retrieval.enrich import is_status_source, source_type
from retrieval.formats.kev import KEV_SOURCE
from retrieval.gate_text import GateText, GateTexts, fold
from retrieval.places import Place, may_be_about, names_a_place, places_in
from retrieval.query import StructuredQuery, is_trouble_question, parse_query
from retrieval.records import Kind, Severity, ThreatRecord
from retrieval.relevance import RankSignals, RelevanceModel
from retrieval.store import RecordFilter, RecordStore
from retrieval.vendors import VendorDictionary, name_forms

#: The relevance model judges answers of at least this many results (as many as it learned from).
JUDGED_RESULTS = 10
#: How many near misses (records the rules almost accept) an answer can end with, for the model to judge.
NEAR_MISSES = 10
#: At or below this many filtered records, score them all directly instead of asking Chroma.
DIRECT_SCORING_LIMIT = 5000
#: How many nearest neighbours / BM25 hits to take in the wide (unfiltered) path.
WIDE_CANDIDATES = 400
#: Texts whose dictionary matches a searcher remembers (a few MB; the same records come up question after question).
ENTITY_CACHE_SIZE = 16_384
#: Dense similarity that counts as "about this" when no topic word matches…
SEMANTIC_GATE = 0.55
#: …and when other candidates do contain the words, so the words are how this topic is written.
STRICT_SEMANTIC_GATE = 0.65
#: A record about the asked vendor or product that contains none of the question's other words still
#: answers at this similarity: they may be phrased differently.
ENTITY_TOPIC_GATE = 0.25
RRF_K = 60
#: A record that does not print the asked CVE id still answers when it is this close in meaning to one that does…
CVE_RELATIVE_SIMILARITY = 0.60
#: …and was published within this span around the records that print it (news follows a disclosure).
CVE_RELATIVE_BEFORE = timedelta(days=7)
CVE_RELATIVE_AFTER = timedelta(days=60)
#: One that names the bug's product within this span of a record printing the id is read as its relative at a
#: lower similarity: the first days' write-ups tell the same bug in their own words ("HTTP/2 zero-day exploited
#: for DDoS attacks" the day after KEV lists Rapid Reset)…
CVE_RELATIVE_NAMED_SPAN = timedelta(days=7)
#: …this low.
CVE_RELATIVE_NAMED_SIMILARITY = 0.40
#: A name said by more stories than this in that span ("Windows", "Oracle") names a product, not this bug.
CVE_RELATIVE_NAMED_RARITY = 5
#: A record that names only the bug's vendor ("Google fixes two Android zero-days" for the Framework CVE) tells
#: the same bug only when published this close to a record that prints it, and read as closely as a relative…
CVE_RELATIVE_VENDOR_SPAN = timedelta(days=2)
#: …of which this many, at most, are read (a vendor as large as Microsoft fills two days with stories).
CVE_RELATIVE_VENDOR_ROWS = 200
#: Records naming more CVEs than this are round-ups; as in clustering, they do not say what one CVE is.
MAX_LINKING_CVES = 3
#: A catalogue window with more entries than this is no short list a word can be chatter beside.
MAX_CATALOGUE_WINDOW = 200
#: A rare word that carries at least this share of a question's informative weight must be in every answer.
FOCUS_SHARE = 0.5
#: When the best answer says at least this share of the question's informative weight, an answer that says
#: less than this fraction of what the best says is about something else…
FOCUS_BEST_COVERAGE = 0.5
FOCUS_RELATIVE = 0.5
#: …unless it reads like the best answer this closely: the same story told without the word. Stricter than
#: :data:`CVE_RELATIVE_SIMILARITY`: stories on one product ("WinRAR flaw exploited") read alike at 0.6.
SAME_STORY_SIMILARITY = 0.65
#: A record that does not say the name a question leads with still answers when it reads this much like the
#: question (above :data:`STRICT_SEMANTIC_GATE`: a lookalike brand's story reads at 0.62–0.66).
LEAD_NAME_UNSAID_SIMILARITY = 0.70
#: A word the lexicon does not know is a name when the store writes it capitalised at least this often.
NAME_CAPITALISED_SHARE = 0.6
#: A word English knows, but not as a noun ("paramount"), names a subject when the store's summaries write it
#: capitalised mid-sentence more often than not: a plain adjective or verb there is almost never capitalised.
CAPITALISED_MAJORITY = 0.5
#: A name this long or longer may stand in for the vendor named beside it ("logofail … dell/lenovo");
#: two letters ("CI", "OS") are everywhere and say nothing about what a record is about.
MIN_NAME_BESIDE_VENDOR = 3
#: A catalogue question's nickname for a bug resolves to a CVE printed by at least this share of the focused
#: records that use the name (of at most :data:`NAME_RESOLUTION_RECORDS`, newest first).
NAME_RESOLUTION_AGREEMENT = 0.5
NAME_RESOLUTION_RECORDS = 200
#: A word used by at most this share of the store's records can name a bug ("n8n", "ni8mare", "fortiweb").
CHARACTERISTIC_SHARE = 0.01
#: What a record reporting exploitation gains when the question asks about exploitation: as much as the
#: asked kind (0.008) and a little more, so such reports lead without hiding the rest.
EXPLOITED_ASKED_BOOST = 0.01
#: What a record rated at least the asked severity gains when the words asked for one about a subject: as much
#: as the asked kind, since a rating is a facet of the record as its kind is.
ASKED_SEVERITY_BOOST = 0.008
#: How close in meaning a security story whose headline names the question's subject must be for the question's
#: kind word not to exclude it (``Searcher._headline_names_the_subject``).
KIND_UNSAID_SIMILARITY = 0.45
#: How long after an entry's date news of its addition to KEV is still news of the addition.
CATALOGUE_NEWS_AFTER = timedelta(days=7)
#: How long after a past window news of its events may still come out: as long as the window lasted, within these.
LATE_REPORTS_MIN = timedelta(days=3)
LATE_REPORTS_MAX = timedelta(days=31)
#: How long before an entry's date a report of the bug's exploitation is why it went in (CISA adds a bug
#: days or weeks after the first reports of attacks).
CATALOGUE_EXPLOITATION_BEFORE = timedelta(days=30)
#: CVEs of a catalogue answer whose addition news is looked up (an answer lists at most a page of entries).
MAX_CATALOGUE_CVES = 50
#: How far back "the latest was …" looks, in records that could answer (newest first).
MAX_LATEST_SCAN = 2_000
#: A status page reports local trouble by place when this share of its latest reports (of this many) name one.
PLACE_REPORTING_SHARE = 0.05
PLACE_REPORTING_SAMPLE = 100
#: A KEV entry's own CVE, which its title ends with ("… Vulnerability (CVE-2025-49706)").
_KEV_ENTRY_CVE = re.compile(r"\((CVE-\d{4}-\d{4,})\)\s*$", re.IGNORECASE)
_MENTIONS_KEV = re.compile(r"\bkev\b|known[\s-]+exploited", re.IGNORECASE)
#: A question asking whether a bug is exploited, once the catalogue's name ("known exploited") is taken out.
_ASKS_EXPLOITED = re.compile(r"\bexploit(?:ed|ing|ation)\b|in[\s-]the[\s-]wild|\bitw\b", re.IGNORECASE)
#: A catalogue question that also asks about the bug itself: who exploits it, how, whether it is fixed.
_ASKS_BEYOND_CATALOGUE = re.compile(
    r"\b(?:who|how|patch(?:ed|es)?|fix(?:ed|es)?|poc|exploit(?:ed|ing|ation)?|in[\s-]the[\s-]wild|itw|hit|victims?)\b",
    re.IGNORECASE,
)
_SAYS_EXPLOITED = re.compile(
    r"\bexploit(?:ed|ing|s|ation)\b|\bzero[\s-]?days?\b|\b0-?days?\b|in[\s-]the[\s-]wild", re.IGNORECASE
)

_SEVERITY_BOOST = {0: 0.0, 1: 0.0, 2: 0.002, 3: 0.004, 4: 0.006}


@dataclass
class SearchResult:
    """One incident in an answer: the best record of its cluster plus why it matched."""

    record: ThreatRecord
    score: float
    members: list[str] = field(default_factory=list)
    why: dict[str, object] = field(default_factory=dict)
    #: What the ranking knew when it chose this result: what the relevance model judges it by.
    signals: RankSignals | None = field(default=None, repr=False, compare=False)

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
    #: When nothing answers: stories that name the question's subject without being what it asked for.
    mentions: list[SearchResult] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query.text,
            "filters": self.query.to_filters(),
            "results": [r.to_json() for r in self.results],
            "mentions": [m.to_json() for m in self.mentions],
            "took_ms": round(self.took_ms, 2),
        }


@dataclass(frozen=True)
class _GateContext:
    generic: frozenset[str] = frozenset()
    #: The question's informative words less the generic ones (``Searcher._subject_terms``): what the gate weighs.
    informative: tuple[str, ...] = ()
    semantic_gate: float = SEMANTIC_GATE
    weights: TermWeights = field(default_factory=lambda: TermWeights({}))
    #: The question's informative words that are names (``Searcher._is_name``), judged once per question.
    names: frozenset[str] = frozenset()
    #: Every word of the question's alternative phrases ("cash app"), common ones included.
    alternative_words: frozenset[str] = frozenset()
    #: The vendors and products (lowercased) that the asking sentence names; the rest of a message is context.
    asked_names: frozenset[str] = frozenset()
    #: The names that only match whole (``Searcher._said_whole``).
    whole: frozenset[str] = frozenset()
    #: Names no summary writes, in a base form ("perf", "unifi"): whole, or shortened from a longer word.
    shortened: frozenset[str] = frozenset()
    #: The vendors and products of the first clause ("big head ransomware - fake windows update lure?": none).
    first_names: frozenset[str] = frozenset()
    #: The question's vendors and products are all named after a first clause that asks about something else.
    entities_are_context: bool = False
    #: Names rarer in the store than every vendor and product the question names: they say what it is about
    #: ("logofail" beside "dell/lenovo"), where a commoner one ("poc" beside "outlook") does not.
    names_beside_entities: frozenset[str] = frozenset()
    #: The informative words of a first clause that says names and nothing else ("ScarCruft / APT37 - …").
    first_clause_names: tuple[str, ...] = ()
    #: The places the asking sentence names ("cloudflare slow in lisbon?"): a status page's report must be
    #: about trouble there.
    asked_places: tuple[Place, ...] = ()

    def says(self, text: str, term: str) -> bool:
        """Whether ``text`` says the question word ``term``, read as a name, a shortening or a word."""
        return _matches_term(text, term, name=term in self.whole, shortened=term in self.shortened)


@dataclass(slots=True)
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
    #: The record's texts as the gate reads them (set with ``record``).
    texts: GateText | None = None
    coverage: float = 0.0
    #: The question's words this record says (set by the relevance gate).
    said: frozenset[str] = frozenset()
    #: The largest share of the question's informative weight that one word the record does not say carries.
    missed: float = 0.0


class Searcher:
    """Answers structured queries over a :class:`RecordStore`."""

    def __init__(
        self,
        store: RecordStore,
        dictionary: VendorDictionary | None = None,
        *,
        relevance: RelevanceModel | None = None,
        judged: bool = True,
    ) -> None:
        """``judged=False`` answers with every ranked result, unjudged: what the relevance model learns from."""
        self.store = store
        self.dictionary = dictionary or VendorDictionary.default()
        self.relevance = (relevance or RelevanceModel.packaged()) if judged else None
        self._frequencies: dict[str, int] = {}
        self._names: dict[str, tuple[bool, float | None]] = {}
        self._capitalised: dict[tuple[str, ...], frozenset[str]] = {}
        self._frequency_total = 0
        self._place_reporting: dict[str, bool] = {}
        # What the dictionary finds in a text depends on nothing else: found once per process, not once per question.
        self._text_entities = functools.lru_cache(maxsize=ENTITY_CACHE_SIZE)(self._find_entities)
        self._gate_texts = GateTexts()

    # -- public ------------------------------------------------------------------------------

    def search(self, text: str, *, now: datetime | None = None, tz: str = "UTC", limit: int = 10) -> SearchResponse:
        """Answer ``text``; raises :class:`QuestionTooLong` past the caps and ValueError for a limit below 1."""
        started = time.perf_counter()
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = parse_query(text, now=now or datetime.now(UTC), tz=tz, dictionary=self.dictionary)
        results = self.run(query, limit=limit)
        mentions = self.mentions(query) if not results else []
        return SearchResponse(query, results, (time.perf_counter() - started) * 1000, mentions)

    def warm_up(self) -> None:
        """Load the model, the vector index and the database pages before the first real question.

        The first Chroma query of a process reads its HNSW index from disk (a second or more at
        30k records); a chat process pays that at start-up, not on an analyst's first question.
        """
        vector = self.store.embedder.embed_one("warm up")
        self.store.index.query(vector, 10)
        self.store.warm_up()
        self.dictionary.find("warm up")
        is_name("warm")  # the English lexicon loads on first use: half a second, paid here and not by a question
        places_in("warm up")  # and so do the places (CLDR's, through Babel)

    def run(self, query: StructuredQuery, *, limit: int = 10) -> list[SearchResult]:
        """Rank records for an already-understood query, and keep those the relevance model judges to answer.

        The model learned from answers of :data:`JUDGED_RESULTS` results, so it always judges at least that many.
        """
        if self.relevance is None:
            return self.ranked(query, limit=limit)
        return self.relevance.judge(query, self.ranked(query, limit=max(limit, JUDGED_RESULTS)))[:limit]

    def ranked(self, query: StructuredQuery, *, limit: int = 10) -> list[SearchResult]:
        """The ranking's answer before the relevance model's judgment."""
        query = self.resolve_catalogue_names(query)
        start, end = self._bounds(query)
        near_misses: list[SearchResult] = []
        results = self._rank(query, start, end, limit=limit, near_misses=near_misses)
        if not results and query.cves and not query.cves_required and query.catalogue != "kev":
            without = dataclasses.replace(query, cves=[])
            describes_the_bug = any(self._names_a_subject(t, query) for t in query.terms)
            if describes_the_bug and not self.store.count_matching(
                RecordFilter(end=end, cves=tuple(query.cves)), at_most=1
            ):
                # "CVE-2023-38408 openssh agent forwarding rce - details?" when no record has printed the CVE yet:
                # the reports of the bug it describes answer, found by its product and words as any question's.
                # A product alone describes no bug ("CVE-2026-2441 chrome - exploited?" is not every Chrome
                # story), and a CVE that records name, only not in the window, keeps its honest "nothing".
                results = self._rank(without, start, end, limit=limit)
                # A report that names other CVEs instead is about another bug (VMware's KEV entry for another
                # CVE answers no "CVE-2023-20869 vmware workstation" question); a round-up names too many to say.
                results = [r for r in results if not r.record.cves or len(r.record.cves) > MAX_LINKING_CVES]
        if (
            query.catalogue == "kev"
            and results
            and len(results) < limit
            and self._has_subject(query)
            and _ASKS_BEYOND_CATALOGUE.search(_MENTIONS_KEV.sub(" ", query.text))
        ):
            results += self._reports_beside_entries(query, start, end, results, limit=limit - len(results))
        if len(results) < limit:
            results += self._late_reports(query, results, limit=limit - len(results))
        if len(results) < limit:
            # Last, the near misses: the rules alone would drop them, the relevance model judges them.
            shown = {r.record.cluster_id or r.record.id for r in results}
            results += [r for r in near_misses if (r.record.cluster_id or r.record.id) not in shown][
                : limit - len(results)
            ]
        return results

    def _reports_beside_entries(
        self, query: StructuredQuery, start: float | None, end: float, entries: list[SearchResult], *, limit: int
    ) -> list[SearchResult]:
        """The asked bug's own reports, after the catalogue's entries for it, when the question asks more than
        the catalogue ("CVE-2023-41064 - the blastpass one? patched? on KEV?", "winter vivern roundcube 0day -
        who got hit, is it in kev?"): the entry says the bug is listed; its reports say who exploits it, how,
        and whether a fix exists. Asked of a bug the catalogue does not hold, the honest answer stays "not in
        KEV" (no entries, so this is never reached).
        """
        shown = {i for r in entries for i in [r.record.id, *r.members]}
        entry_of_cluster = {r.record.cluster_id or r.record.id: r for r in entries}
        reports = self._rank(dataclasses.replace(query, catalogue=None), start, end, limit=limit + len(entries))
        added: list[SearchResult] = []
        for report in reports:
            told = [i for i in [report.record.id, *report.members] if i not in shown]
            entry = entry_of_cluster.get(report.record.cluster_id or report.record.id)
            if entry is not None:
                entry.members.extend(told)  # the same incident as an entry: more sources of it
            elif told and report.record.id not in shown:
                added.append(report)
            shown.update(told)
        return added[:limit]

    def _late_reports(self, query: StructuredQuery, shown: list[SearchResult], *, limit: int) -> list[SearchResult]:
        """News of a past window's events published after it: a window says when it happened, not when it was told.

        "fortinac rce that fortinet dropped friday" is reported on Monday, "october ransomware numbers" in
        November, "how many KEV additions over 2025" in January. Past the window's end, for as long as the
        window lasted (at least :data:`LATE_REPORTS_MIN`, at most :data:`LATE_REPORTS_MAX`), news that passes the
        same gate answers after the window's own records. Status pages, catalogue entries and advisories are
        dated by the event itself, so their later records are later events. Outages are reported while they
        last: "any Exchange outages yesterday?" is not answered by today's outage stories, and with no incident
        in the window the honest "none yesterday" stays. With one, the news told after it (its cause, its
        post-mortem: "what caused yesterday's cloudflare outage?") follows it, for the model to judge.
        """
        window = query.window
        outage_asked = Kind.OUTAGE in query.kinds
        if window is None or window.end >= query.until or (outage_asked and not shown):
            return []
        span = min(max(window.end - window.start, LATE_REPORTS_MIN), LATE_REPORTS_MAX)
        start, end = window.end.timestamp(), min(window.end + span, query.until).timestamp() + 0.001
        incident_of = {r.record.cluster_id or r.record.id: r for r in shown}
        late: list[SearchResult] = []
        for r in self._rank(query, start, end, limit=limit + len(shown)):
            if _dated_by_event(r.record.source) or (r.record.kind is Kind.OUTAGE and not outage_asked):
                continue
            incident = incident_of.get(r.record.cluster_id or r.record.id)
            if incident is not None:  # a later report of an incident in the answer: one more source of it
                incident.members.extend([r.record.id, *r.members])
                continue
            r.why["reported_after"] = window.label
            r.signals = dataclasses.replace(r.signals or RankSignals(), path="late")
            late.append(r)
        return late[:limit]

    def resolve_catalogue_names(self, query: StructuredQuery) -> StructuredQuery:
        """A bug named by its nickname in a catalogue question becomes its CVE ("is react2shell in KEV?").

        The catalogue entry carries only the CVE and the vendor's product name, never the name the
        press gave the bug; the stories that use that name print its CVE. A CVE counts when the records
        containing every rare word of the question (or its rarest, when no record says them all; focused
        records, naming few CVEs) agree on it; the
        words it resolves no longer gate. When the catalogue uses the words itself, or the records do
        not agree, the query is left as it is.
        """
        if query.catalogue != "kev" or query.cves or not query.terms:
            return query
        weights = self._term_weights(query.terms)
        used = [t for t in weights.informative(query.terms) if self._frequencies.get(t, 0) > 0]
        names = self._subject_terms(used, frozenset(), query)  # words no record uses resolve nothing
        if not names:
            return query
        # No record says every word ("is react2shell in KEV yet or still just poc noise?"): the rarest is the
        # name, and the others, said by no record of it, are the asker's chatter; but only a word of the clause
        # that asks for the catalogue ("what landed in KEV this week? heard there's a hooli one" asks of no bug).
        rarest = max(names, key=lambda n: weights.weights.get(n, 0.0))
        clause = _catalogue_clause(query.text, query.catalogue) or ""
        in_clause = contains_word(clause.lower(), rarest)
        for said in [names, [rarest]] if len(names) > 1 and in_clause else [names]:
            expression = _fts_phrases(said, all_of=True)
            if expression is None:
                return query  # no word to look for (a name of symbols alone)
            where = RecordFilter(end=query.until.timestamp() + 0.001, text=expression)
            catalogue = dataclasses.replace(where, source=KEV_SOURCE)
            if self.store.candidate_rows(catalogue, limit=1):
                return query  # the catalogue uses the name itself ("Notepad++"): no nickname to resolve
            rows = self.store.candidate_rows(where, newest_first=True, limit=NAME_RESOLUTION_RECORDS)
            if rows:
                break
        records = self.store.get_many([r["id"] for r in rows]).values()
        focused = [r for r in records if 0 < len(r.cves) <= MAX_LINKING_CVES]
        counts: dict[str, int] = {}
        for record in focused:
            for cve in record.cves:
                counts[cve] = counts.get(cve, 0) + 1
        agreed = [c for c, n in counts.items() if n >= max(2, NAME_RESOLUTION_AGREEMENT * len(focused))]
        if not agreed:
            return query
        return dataclasses.replace(query, cves=sorted(agreed), terms=[t for t in query.terms if t not in names])

    def mentions(self, query: StructuredQuery, *, limit: int = 3) -> list[SearchResult]:
        """Stories in the window that name the question's subject but are not what it asked for.

        An empty answer says what was found: "No Cloudflare outage today; 2 stories mention Cloudflare".
        Only for a question with a subject (vendor, product, CVE) and something more specific about it
        (a kind, exploitation, severity, the KEV catalogue); the same search without those.
        """
        if not (query.vendors or query.products or query.cves):
            return []
        if not (query.kinds or query.exploited or query.min_severity or query.catalogue):
            return []
        relaxed = dataclasses.replace(
            query, kinds=[], kinds_required=False, exploited=None, min_severity=None, catalogue=None
        )
        return [r for r in self.ranked(relaxed, limit=limit) if "near_miss" not in r.why]

    def latest_before_window(self, query: StructuredQuery) -> SearchResult | None:
        """The most recent match published before the query's window: "none today; the latest was …".

        Walks back through time, newest first, over the records that pass the filters and contain
        the question's words (a record findable only by meaning is not looked for here: that walk
        would read the whole history), until one passes the relevance gate and says what is asked.
        Only records saying a word of the asking sentence can pass, so only those are read; and the
        walk stops after :data:`MAX_LATEST_SCAN` records (a "latest" further back than that is no help).
        """
        if query.window is None:
            return None
        informative = self._term_weights(query.terms).informative(query.terms) if query.terms else []
        asked = _asked_terms(self._subject_terms(informative, frozenset(), query), query.text)
        narrowed = dataclasses.replace(query, vendors=[], products=[], terms=asked) if asked else query
        where = dataclasses.replace(
            self._filter(query, None, query.window.start.timestamp()), text=_fts_expression(narrowed) or None
        )
        vector = self._query_vector(query)
        offset = 0
        while offset < MAX_LATEST_SCAN:
            rows = self.store.candidate_rows(where, newest_first=True, limit=200, offset=offset)
            if not rows:
                return None
            candidates = [_candidate(r) for r in rows]
            self._score_dense_direct(candidates, vector)
            self._score_bm25(query, candidates)
            self._load_records(candidates)
            context = self._gate_context(query, candidates)
            for candidate in candidates:  # already newest first
                why = self._answers(query, candidate, context)
                # A higher bar than an answer's: the latest of the subject says what the question asks, so a story
                # that only names its vendor or reads like it ("ransomware kills EDR" for DeadLock) is not it.
                if why is not None and self._saying_what_is_asked(
                    query, [candidate], {candidate.id: why}, context, strict=True
                ):
                    return self._collapse(query, [candidate], {candidate.id: why}, limit=1)[0]
            offset += len(rows)
        return None

    def matching(self, query: StructuredQuery, records: Sequence[ThreatRecord]) -> list[SearchResult]:
        """Which of ``records`` (e.g. just ingested) answer a standing query, best first.

        Subscriptions use this: the same filters and relevance gate as search, applied to new
        records only, so a channel subscribed to "exchange outage" gets what search would show.
        A standing query is a filter, so "exploited" in it always filters ("exploited fortinet bugs").
        """
        if query.exploited:
            query = dataclasses.replace(query, exploited_required=True)
        start, end = self._bounds(query)
        wanted = list(dict.fromkeys(r.id for r in records))
        rows = self.store.candidate_rows(self._filter(query, start, end), any_of_ids=wanted) if wanted else []
        candidates = [_candidate(r) for r in rows]
        if not candidates:
            return []
        self._score_dense_direct(candidates, self._query_vector(query))
        self._score_bm25(query, candidates)
        self._rank_dense(candidates)
        self._load_records(candidates)
        context = self._gate_context(query, candidates)
        reasons = {c.id: why for c in candidates if (why := self._answers(query, c, context)) is not None}
        return self._collapse(query, [c for c in candidates if c.id in reasons], reasons, limit=len(candidates))

    # -- steps -------------------------------------------------------------------------------

    @staticmethod
    def _bounds(query: StructuredQuery) -> tuple[float | None, float]:
        """Start (inclusive) and end (exclusive) in POSIX seconds: the window, never past ``now``."""
        end = query.until.timestamp() + 0.001  # a record published at the very moment of asking exists
        start = None
        if query.window is not None:
            start = query.window.start.timestamp()
            if query.window.end < query.until:  # a window that runs up to now ("since last night") keeps that moment
                end = query.window.end.timestamp()
        return start, end

    def _filter(self, query: StructuredQuery, start: float | None, end: float) -> RecordFilter:
        """The records that exist for this question: its window, and the facets that exclude."""
        kinds: tuple[str, ...] = ()
        if query.kinds and query.kinds_required:
            # Written as ``kind:``, kinds exclude. Read from words, they only rank: sources file one event
            # under different kinds, so the relevance gate asks each record's own words (``kind_fits``).
            kinds = tuple(sorted(k.value for k in query.kinds))
        severity = query.min_severity
        return RecordFilter(
            end=end,
            start=start,
            kinds=kinds,
            # A question about the KEV catalogue is answered by the catalogue's own entries.
            source=KEV_SOURCE if query.catalogue == "kev" else None,
            # "exploited yet?" asks about a subject, so it ranks; it filters only a listing ("exploited bugs this
            # week"). "Is CVE-… exploited?" is answered by the reports of exploitation first, then by the bug's
            # other reports: they say what it is and whether anyone has seen it used.
            exploited=bool(query.exploited)
            and (query.exploited_required or query.catalogue == "kev" or not self._has_subject(query)),
            # A CVE says which bug; "VMware says critical unauth RCE" describes it and excludes none of its reports.
            # Read from words about a subject ("intel patch day - anything critical?"), a rating ranks and excludes
            # nothing: sources rate one bug differently, and "critical" in chat means "worth acting on". Written as
            # an operator (``severity:critical``), or in a listing ("critical advisories today?"), it excludes.
            min_severity_rank=severity.rank
            if severity is not None
            and severity is not Severity.UNKNOWN
            and not query.cves
            and (query.severity_required or not self._has_subject(query))
            else None,
            cves=tuple(query.cves),
            has_cve=bool(query.has_cve) and not query.cves,
        )

    def _rank(
        self,
        query: StructuredQuery,
        start: float | None,
        end: float,
        *,
        limit: int,
        near_misses: list[SearchResult] | None = None,
    ) -> list[SearchResult]:
        """The records that answer by the rules, best first; ``near_misses`` collects the best of those that
        almost do (a security story about the subject in other words than the kind's, or one saying too little
        of the question)."""
        where = self._filter(query, start, end)
        # Only which path matters: a count that stops past the limit costs nothing when most records pass.
        total = self.store.count_matching(where, at_most=DIRECT_SCORING_LIMIT + 1)
        if total == 0:
            return []
        vector = self._query_vector(query)
        if total <= DIRECT_SCORING_LIMIT:
            # A question with no subject ("what went into KEV?") is answered by the newest records: reading
            # thousands of older ones only to rank them below would cost what the wide path never pays.
            newest = None if self._has_subject(query) else WIDE_CANDIDATES
            candidates = [
                _candidate(r) for r in self.store.candidate_rows(where, newest_first=bool(newest), limit=newest)
            ]
            if vector is not None:
                self._score_dense_direct(candidates, vector)
            self._score_bm25(query, candidates)
        else:
            candidates = self._wide_candidates(query, vector, where)
        if not candidates:
            return []
        if self._only_chatter(query, candidates):
            query = dataclasses.replace(query, terms=[])
        self._rank_dense(candidates)
        gating = self._pre_gate_terms(query)
        candidates = [c for c in candidates if self._could_match(query, c, gating)]
        self._load_records(candidates)
        reasons: dict[str, dict[str, object]] = {}
        kept: list[_Candidate] = []
        near: list[_Candidate] = []
        context = self._gate_context(query, candidates)
        for candidate in candidates:
            why = self._gate(query, candidate, context)
            if why is not None:
                reasons[candidate.id] = why
                (near if "near_miss" in why else kept).append(candidate)
        # A record that says nothing of what the asking sentence asks is no answer ("quokkalock ransomware -
        # anything new? heard they use some byovd trick": the week's BYOVD stories); when none says it, the
        # honest answer is that there is none.
        kept = self._saying_what_is_asked(query, kept, reasons, context)
        passed = kept
        kept = self._focused(query, kept, reasons, context)
        # One that says less of the question than the best is a near miss, not a wrong answer: "Yokogawa CAMS
        # for HIS" for "yokogawa centum - every ics advisory this year?" is the model's to judge.
        staying = {c.id for c in kept}
        for candidate in passed:
            if candidate.id not in staying:
                reasons[candidate.id]["near_miss"] = "unfocused"
                near.append(candidate)
        results = self._collapse(query, kept, reasons, limit=limit)
        if near_misses is not None and near:
            answered = {c.cluster_id for c in kept}
            near = [c for c in near if c.cluster_id not in answered]
            for result in self._collapse(query, near, reasons, limit=NEAR_MISSES):
                result.signals = dataclasses.replace(result.signals or RankSignals(), path="near_miss")
                near_misses.append(result)
        if query.cves and not query.cves_required and query.catalogue is None and len(results) < limit:
            # (A catalogue question is answered by the entries: news of the bug says nothing of the catalogue.)
            results += self._cve_relatives(query, start, end, results, limit=limit - len(results))
        if query.catalogue == "kev" and results and len(results) < limit:
            # Asked whether one bug is exploited ("CVE-2023-28434 minio - exploited? on KEV yet?"), the reports of its
            # exploitation answer too: they are why it went in. "Is it on KEV?" alone asks about the catalogue.
            asks_exploitation = bool(_ASKS_EXPLOITED.search(_MENTIONS_KEV.sub(" ", query.text)))
            exploitation = asks_exploitation and self._has_subject(query)
            results += self._catalogue_news(results, end, limit=limit - len(results), exploitation=exploitation)
        return results

    def _catalogue_news(
        self, entries: list[SearchResult], end: float, *, limit: int, exploitation: bool = False
    ) -> list[SearchResult]:
        """News that reports the catalogue adding the answer's entries ("CISA adds SLP flaw to KEV"), after them.

        The entry is the answer to a catalogue question; a report of its addition is a useful second source
        (it says why, and what CISA ordered). A report counts when it names an entry's CVE, says KEV or "known
        exploited", and was published from the day before the entry's date to :data:`CATALOGUE_NEWS_AFTER` after.
        """
        cves = sorted({c for r in entries for c in r.record.cves})[:MAX_CATALOGUE_CVES]
        if not cves:
            return []
        added = [r.record.published.timestamp() for r in entries]
        first = min(added) - (CATALOGUE_EXPLOITATION_BEFORE if exploitation else timedelta(days=1)).total_seconds()
        last = min(end, max(added) + CATALOGUE_NEWS_AFTER.total_seconds())
        rows = self.store.candidate_rows(RecordFilter(end=last, start=first, cves=tuple(cves)))
        shown = {r.record.id for r in entries} | {m for r in entries for m in r.members}
        entry_of_cluster = {r.record.cluster_id or r.record.id: r for r in entries}
        candidates = [c for c in map(_candidate, rows) if c.id not in shown]
        self._load_records(candidates)
        news: dict[str, SearchResult] = {}
        for c in sorted(candidates, key=lambda c: c.published):
            record = c.record
            if record is None or record.source == KEV_SOURCE:
                continue
            text = f"{record.title}\n{record.summary}"
            if not (_MENTIONS_KEV.search(text) or (exploitation and (c.exploited or _SAYS_EXPLOITED.search(text)))):
                continue  # names the CVE, but neither its addition to the catalogue nor its exploitation
            if c.cluster_id in entry_of_cluster:
                entry_of_cluster[c.cluster_id].members.append(c.id)  # the same incident: one more source of it
                continue
            if c.cluster_id in news:
                news[c.cluster_id].members.append(c.id)
                continue
            news[c.cluster_id] = SearchResult(
                record,
                0.0,
                [],
                {"reports_addition_of": sorted(set(record.cves) & set(cves))},
                RankSignals(path="catalogue_news"),
            )
        return list(news.values())[:limit]

    def _cve_relatives(
        self, query: StructuredQuery, start: float | None, end: float, shown: list[SearchResult], *, limit: int
    ) -> list[SearchResult]:
        """Records about the asked vulnerability that do not print its id, ranked after those that do.

        A write-up calls the bug by its product and its own words ("critical n8n flaw"), not by its id.
        What the bug is comes from the records that name the CVE, whenever published (the KEV entry,
        the advisory): a record counts when it tells the same incident (their cluster), or names their
        product (or vendor) and is close in meaning to one of them, was published around them, and
        names no other CVE instead (then it is about another bug). One that names only their vendor, where
        they name a product, must be published within :data:`CVE_RELATIVE_VENDOR_SPAN` of one of them. One
        that says a name at least half of them give the bug, within :data:`CVE_RELATIVE_NAMED_SPAN` of one of
        them, when few stories of those days say it, may read less alike (:data:`CVE_RELATIVE_NAMED_SIMILARITY`).
        """
        subject_rows = self.store.candidate_rows(RecordFilter(end=end, cves=tuple(query.cves)))
        if not subject_rows:
            return []
        subjects = [_candidate(r) for r in subject_rows]
        self._load_records(subjects)
        # Round-ups ("the week's vulnerabilities") name many CVEs: they say little about this one.
        focused = [s for s in subjects if s.record is not None and len(s.record.cves) <= MAX_LINKING_CVES]
        about = focused or [s for s in subjects if s.record is not None]
        records = [s.record for s in about if s.record is not None]
        vectors = self.store.vectors_for([r.id for r in records])
        if not records or not vectors:
            return []
        matrix = np.stack(list(vectors.values()))
        clusters = {s.cluster_id for s in subjects}
        names = _subject_names(records)
        vendors = {v.lower() for r in records for v in r.vendors} - names
        product_words = self._product_words(records)
        words = self._characteristic_words(records) | product_words
        published = sorted(s.published for s in about)
        first = published[0] - CVE_RELATIVE_BEFORE.total_seconds()
        last = published[-1] + CVE_RELATIVE_AFTER.total_seconds()
        span_start = first if start is None else max(start, first)
        span_end = min(end, last)
        related = dataclasses.replace(self._filter(query, start, end), cves=())
        member_ids = [m.id for c in clusters for m in self.store.cluster_members(c)]
        rows = self.store.candidate_rows(related, any_of_ids=member_ids) if member_ids else []
        if (names or words) and span_start < span_end:
            expression = _fts_phrases(sorted(names | words))
            if expression:
                around = dataclasses.replace(related, start=span_start, end=span_end, text=expression)
                rows += self.store.candidate_rows(around)
        vendor_start = published[0] - CVE_RELATIVE_VENDOR_SPAN.total_seconds()
        vendor_end = min(end, published[-1] + CVE_RELATIVE_VENDOR_SPAN.total_seconds())
        if start is not None:
            vendor_start = max(start, vendor_start)
        expression = _fts_phrases(sorted(vendors))
        if expression and vendor_start < vendor_end:
            near = dataclasses.replace(related, start=vendor_start, end=vendor_end, text=expression)
            rows += self.store.candidate_rows(near, newest_first=True, limit=CVE_RELATIVE_VENDOR_ROWS)
        subject_says = [(f"{r.title}\n{r.summary}".lower(), self._entities(r)[0]) for r in records]
        # What the records printing the id agree the bug is in: not the other products one of them mentions.
        own_names = {
            n
            for n in names | product_words
            if 2 * sum(n in found or contains_word(text, n) for text, found in subject_says) >= len(subject_says)
        }
        named_span = RecordFilter(
            start=published[0] - CVE_RELATIVE_NAMED_SPAN.total_seconds(),
            end=min(end, published[-1] + CVE_RELATIVE_NAMED_SPAN.total_seconds()),
        )

        @functools.cache
        def rare_in_span(name: str) -> bool:
            """Whether few stories around the disclosure say this name: then saying it names this bug."""
            phrase = _fts_phrases([name])
            if phrase is None:
                return False
            where = dataclasses.replace(named_span, text=phrase)
            return self.store.count_matching(where, at_most=CVE_RELATIVE_NAMED_RARITY + 1) <= CVE_RELATIVE_NAMED_RARITY

        seen = {r.record.id for r in shown} | {m for r in shown for m in r.members} | {s.id for s in subjects}
        shown_clusters = {r.record.cluster_id or r.record.id for r in shown}
        candidates = list({c.id: c for c in map(_candidate, rows) if c.id not in seen}.values())
        self._load_records(candidates)
        candidate_vectors = self.store.vectors_for([c.id for c in candidates])
        reasons: dict[str, dict[str, object]] = {}
        kept: list[_Candidate] = []
        for c in candidates:
            record, vector = c.record, candidate_vectors.get(c.id)
            if record is None or vector is None or (record.cves and not set(record.cves) & set(query.cves)):
                continue
            text = f"{record.title}\n{record.summary}"
            if query.exclude_terms and _exclusions(tuple(query.exclude_terms)).search(text.lower()):
                continue
            if query.kinds and not query.kinds_required and not kind_fits(record.kind, query.kinds, text):
                continue
            similarity = float(np.max(matrix @ vector))
            same_incident = c.cluster_id in clusters
            entities = self._entities(record)[0]
            says_the_product = bool(names & entities) or any(contains_word(text.lower(), w) for w in words)
            # Only the vendor: the same bug when told within days of a record printing it ("Google fixes two
            # Android zero-days" the day CISA lists the Framework CVE); later, another of the vendor's bugs.
            says_the_vendor = bool(vendors & entities) and _within(published, c.published, CVE_RELATIVE_VENDOR_SPAN)
            # Its product's own name, said by few stories around the disclosure, names this bug: "GoAnywhere" the
            # week Fortra's bug is exploited, but not "Windows" or "Oracle" (a vendor, when no product is named).
            # A status page's incident ("Git Operations") is about a service, never a bug.
            named_early = (
                similarity < CVE_RELATIVE_SIMILARITY
                and not is_status_source(record.source)
                and _within(published, c.published, CVE_RELATIVE_NAMED_SPAN)
                and any(
                    rare_in_span(name) for name in own_names if name in entities or contains_word(text.lower(), name)
                )
            )
            bar = CVE_RELATIVE_NAMED_SIMILARITY if named_early else CVE_RELATIVE_SIMILARITY
            if not same_incident and (similarity < bar or not (says_the_product or says_the_vendor)):
                continue
            c.dense = similarity
            reasons[c.id] = {"cves": [], "same_vulnerability_as": query.cves, "similarity": round(similarity, 3)}
            kept.append(c)
        kept.sort(key=lambda c: (c.cluster_id not in clusters, -(c.dense or 0.0)))
        results: list[SearchResult] = []
        by_cluster: dict[str, SearchResult] = {}
        for c in kept:
            assert c.record is not None
            if c.cluster_id in shown_clusters:
                continue  # its incident is already in the answer
            if c.cluster_id in by_cluster:
                by_cluster[c.cluster_id].members.append(c.id)
                continue
            result = SearchResult(c.record, (c.dense or 0.0) * 1e-3, [], reasons[c.id], RankSignals(path="same_bug"))
            by_cluster[c.cluster_id] = result
            results.append(result)
        return results[:limit]

    def _only_chatter(self, query: StructuredQuery, candidates: list[_Candidate]) -> bool:
        """A catalogue question over a window whose words no entry of the window uses: they are chatter.

        "what landed in KEV yesterday? morning catch-up", "what ICS advisories did cisa drop yesterday?": the
        window's catalogue entries (KEV's, or the ICS advisories) are the answer, and "catch-up" or "drop" is
        in none of them. Only plain English words are chatter; a name ("any Hooli bugs in KEV
        today?") still has to match, so an honest "none" stays one.
        """
        if query.catalogue is None or query.window is None or not query.terms:
            return False
        if query.vendors or query.products or query.cves:
            return False
        subject = self._subject_terms(self._term_weights(query.terms).informative(query.terms), frozenset(), query)
        if not subject:
            return False
        asked = _catalogue_clause(query.text, query.catalogue)
        if asked is not None and not any(contains_word(asked.lower(), t.lower()) for t in subject):
            # "what landed in KEV yesterday? heard there's a VBA one": the clause that asks for the catalogue
            # names nothing, so the rest is context, names included.
            return True
        if any(self._is_name(t) for t in subject):
            return False
        self._load_records(candidates)  # the gate reads them next anyway
        entries = [c.record for c in candidates if c.record is not None]
        if query.catalogue == "ics":  # the window's ICS advisories, not the day's other stories
            entries = [r for r in entries if about_ics(f"{r.title} {' '.join(r.tags)}\n{r.summary}")]
        if len(entries) > MAX_CATALOGUE_WINDOW:
            return False  # a window that long is no catch-up: its words must say what to look for
        texts = [f"{r.title}\n{r.summary}".lower() for r in entries]
        return bool(texts) and not any(_matches_term(text, t.lower()) for text in texts for t in subject)

    def _saying_what_is_asked(
        self,
        query: StructuredQuery,
        kept: list[_Candidate],
        reasons: dict[str, dict[str, object]],
        context: _GateContext,
        *,
        strict: bool = False,
    ) -> list[_Candidate]:
        """Only answers that say something of what the question asks, not merely of its context.

        "deadlock ransomware - anything new this week? heard they use some byovd trick to kill edr": the
        week's BYOVD stories pass the gate on the context's words and say nothing of DeadLock. A record must
        say a subject word of the asking sentence (up to the first question mark), unless it answers some
        other way: by a vendor, product or CVE that sentence names; by an identifier of the context (a
        region "australia-southeast2" for "melbourne"); by reading like the question (similarity of at
        least :data:`STRICT_SEMANTIC_GATE`); or by telling the story of a record that says the word.
        When no record says it, the honest answer is that there is none. A name the sentence leads with
        (:meth:`_leading_name`) allows no such exception: if no record says it, only a record answering by
        the sentence's vendor, product or CVE stays. ``strict`` keeps only the records that say it (or the
        asked CVE).
        """
        if not query.terms or not kept:
            return kept
        asking = _asking_sentence(query.text).lower()
        asked = _asked_terms(
            self._subject_terms(context.weights.informative(query.terms), context.generic, query), query.text
        )
        if not asked:
            return kept
        named = context.asked_names
        said_alternative = {
            w for group in query.alternatives for phrase in group for w in phrase.split() if contains_word(asking, w)
        }
        sayers = [c for c in kept if any(t in c.said for t in asked) or c.said & said_alternative]
        if strict:
            return [c for c in kept if c in sayers or reasons[c.id].get("cves")]
        # The name leads the sentence that asks, when that sentence says a name ("After TRITON hit the site,
        # Schneider has been quiet. Did ICS-CERT publish a Triconex advisory?" leads with Triconex).
        question = _question_sentence(query.text)
        lead_text = question.group(1).lower() if question is not None else asking
        if not any(t in context.names and word_pattern(t).search(lead_text) for t in asked):
            lead_text = asking
        lead = self._leading_name(lead_text, asked, context, cve_known=any(reasons[c.id].get("cves") for c in kept))
        if lead is not None and not any(lead in c.said or self._names_squashed(c, lead) for c in kept):
            # No record says the name the question leads with: the rest are lookalikes (Peloton for
            # "nordictrack / ifit treadmills", K7 for "avast av vulns"), unless one reads as the question
            # itself (a nickname: "the aussie guy who ran fake wifi at airports" for "Australian Man Jailed
            # for Running Fake Wi-Fi Attacks"), and then the records telling its story.
            story = self._told_by_or_alike([], kept)
            kept = [
                c
                for c in kept
                if _answers_by_entity_in(reasons[c.id], asking) or reasons[c.id].get("cves") or c.id in story
            ]
            if not kept:
                return kept
        kept = self._about_what_is_named(query, asked, kept, reasons, context)
        if not kept:
            return kept
        # A status page's report answers by its service alone only a question about trouble with it: "did
        # github ever unmask the twitter source code leaker?" is not answered by "Incident with Codespaces".
        asks_trouble = is_trouble_question(query.kinds, query.text)

        def by_entity(c: _Candidate) -> bool:
            if not asks_trouble and c.record is not None and is_status_source(c.record.source):
                return False
            return bool(named & {n.lower() for n in _entity_names(reasons[c.id])}) or _answers_by_entity_in(
                reasons[c.id], asking
            )

        lacking = [
            c
            for c in kept
            if c not in sayers
            and not by_entity(c)
            and not reasons[c.id].get("cves")
            and not any(re.search(r"\d", t) for t in c.said)  # an identifier ("australia-southeast2") is a name
            and not (c.dense is not None and c.dense >= STRICT_SEMANTIC_GATE)
        ]
        if not lacking:
            return kept
        close = self._same_story(sayers, lacking)  # the same story told without the word ("Denmark" for "danish")
        off = {c.id for c in lacking if c.id not in close}
        return [c for c in kept if c.id not in off]

    def _about_what_is_named(
        self,
        query: StructuredQuery,
        asked: Sequence[str],
        kept: list[_Candidate],
        reasons: dict[str, dict[str, object]],
        context: _GateContext,
    ) -> list[_Candidate]:
        """Answers about the name a question asks "anything on" ("After yesterday's Netcomm / TP-Link router
        news: anything on Linksys?", "intel and amd put out advisories - anything from nvidia today?").

        Wherever it stands, the name after "anything on / about / from" is what is asked; the names before it
        are context. A record answers when it says that name, is about it as a vendor or product, names a CVE
        asked, or tells the story of one that does; else when it reads as the question itself
        (:data:`LEAD_NAME_UNSAID_SIMILARITY`).
        """
        match = _ASKED_ABOUT.search(query.text)
        if match is None:
            return kept
        focus = match.group(1).lower()
        named = [t for t in asked if t in context.names and contains_word(focus, t)]
        entities = [n for n in [*query.vendors, *query.products] if _answers_by_entity_in({"vendors": [n]}, focus)]
        if not named and not entities:
            return kept
        wanted = {e.lower() for e in entities}
        about = [
            c
            for c in kept
            if any(t in c.said for t in named)
            or (c.record is not None and wanted & self._entities(c.record)[0])
            or _answers_by_entity_in(reasons[c.id], focus)
        ]
        story = self._told_by_or_alike(about, kept)
        return [c for c in kept if c.id in story or reasons[c.id].get("cves")]

    def _told_by_or_alike(self, anchors: list[_Candidate], kept: list[_Candidate]) -> set[str]:
        """The ids of ``anchors``, of the records that read as the question itself (a nickname, a name written
        otherwise: :data:`LEAD_NAME_UNSAID_SIMILARITY`), and of the records telling the same story as either."""
        alike = [c for c in kept if c.dense is not None and c.dense >= LEAD_NAME_UNSAID_SIMILARITY]
        return self._same_story([*anchors, *alike], kept)

    def _same_story(self, anchors: list[_Candidate], candidates: list[_Candidate]) -> set[str]:
        """The ids of ``anchors`` and of the ``candidates`` that read like one of them (the same story)."""
        if not anchors:
            return set()
        vectors = self.store.vectors_for(list(dict.fromkeys(c.id for c in [*anchors, *candidates])))
        anchor_vectors = [v for c in anchors if (v := vectors.get(c.id)) is not None]
        return {c.id for c in anchors} | {
            c.id
            for c in candidates
            if (v := vectors.get(c.id)) is not None
            and any(float(v @ w) >= SAME_STORY_SIMILARITY for w in anchor_vectors)
        }

    def _leading_name(
        self, asking: str, asked: Sequence[str], context: _GateContext, *, cve_known: bool = True
    ) -> str | None:
        """The name the asking sentence leads with, before any vendor, product or CVE ("wyze cam v3 rce exploit
        out?", "wealthfront breached too??"): what the question is about. Not an identifier ("k7", "win10"),
        which records write in too many ways, nor a word of three letters or fewer ("hse", "gcs")."""
        positions = {t: m.start() for t in asked if (m := word_pattern(t).search(asking))}
        if not positions:
            return None
        first = min(positions, key=positions.__getitem__)
        if first not in context.names or len(first) < 4 or re.search(r"\d", first):
            return None
        before = asking[: positions[first]]
        if (cve_known and CVE_PATTERN.search(before)) or self.dictionary.find(before, lenient=True):
            return None  # (a CVE no answer names says nothing: "CVE-… keepass - …" leads with KeePass)
        return first

    def _names_squashed(self, candidate: _Candidate, name: str) -> bool:
        """Whether a vendor or product of the candidate is ``name`` written without its separators ("dlink")."""
        if candidate.record is None:
            return False
        names, _ = self._entities(candidate.record)
        return any(re.sub(r"\W", "", n) == name for n in names)

    def _focused(
        self,
        query: StructuredQuery,
        kept: list[_Candidate],
        reasons: dict[str, dict[str, object]],
        context: _GateContext,
    ) -> list[_Candidate]:
        """Answers about what the best one is about: the question's words decide which words count.

        Two signs that a candidate is about something else, measured against the best candidate:

        * it lacks the rare word that carries the question ("salesforce customers hacked through gainsight?":
          every weekly round-up naming Salesforce passes the gate, only the stories saying "Gainsight"
          answer). The word is the rarest subject word the best contains, when it carries at least
          :data:`FOCUS_SHARE` of the question's informative weight; a two-word name the best says as one
          ("amaranth dragon") carries both words' weight, and its rarer word is the one required;
        * the best says most of the question and it says little of it ("tulsa airport hit by qilin?": every
          Qilin story says "qilin"): under :data:`FOCUS_RELATIVE` of the best's coverage, when the best
          covers at least :data:`FOCUS_BEST_COVERAGE`.

        Such a candidate still stays when it reads like the best one (the same story told in other words).
        """
        if not query.terms or len(kept) < 2:
            return kept
        subject = self._subject_terms(context.weights.informative(query.terms), context.generic, query)
        weight = context.weights.weights
        now = query.until.timestamp()
        best = max(kept, key=lambda c: self._score(query, c, now))
        off: set[str] = set()
        matched = reasons[best.id].get("matched_terms")
        carried = [t for t in matched if t in subject] if isinstance(matched, list) else []

        def lacks(c: _Candidate, words: Sequence[str]) -> bool:
            """Whether ``c`` says none of ``words``, where a word of an alternative stands for its group."""
            for word in words:
                groups = [g for g in query.alternatives if any(word in phrase.split() for phrase in g)]
                if any(
                    all(w in c.said for w in phrase.split()) and any(weight.get(w, 1.0) > 0 for w in phrase.split())
                    for g in groups
                    for phrase in g
                ):
                    return False  # said one of the alternatives ("cisa/nsa": a common word says nothing)
                if not groups and word in c.said:
                    return False
            return True

        # What the question asks comes first; later clauses give context ("apache ofbiz auth bypass - exploited
        # yet? we have an old ofbiz erp box"). A record that answers by a vendor, product or CVE the first
        # clause names is cut only for words of that clause, never for the context's.
        first = _first_clause(query.text).lower()
        asked_entity = {c.id for c in kept if _answers_by_entity_in(reasons[c.id], first)}

        def cut(words: Sequence[str]) -> set[str]:
            asked_words = [w for w in words if contains_word(first, w)]
            return {
                c.id
                for c in kept
                if lacks(c, words) and (c.id not in asked_entity or (asked_words and lacks(c, asked_words)))
            }

        if carried:
            # A name of two words ("amaranth dragon") that the best says as one carries both words' weight.
            best_text = f"{best.record.title}\n{best.record.summary}".lower() if best.record is not None else ""
            # The anchor is what the best is about: a word of its title, or a name ("client" in an entry's
            # summary is an accident of wording).
            title = best.record.title.lower() if best.record is not None else ""
            anchors = [t for t in carried if t in context.names or _matches_term(title, t)]
            units = [[t] for t in anchors] + _two_word_names(query.terms, anchors, best_text)
            anchor = max(units, key=lambda u: sum(weight.get(t, 1.0) for t in u)) if units else []
            # An anchor the first clause says is weighed against that clause alone: the context after it
            # ("… we keep all our privileged creds in DVLS") does not dilute what is asked.
            asked_subject = [t for t in subject if contains_word(first, t)]
            weighed = asked_subject if anchor and all(t in asked_subject for t in anchor) else subject
            if anchor and sum(weight.get(t, 1.0) for t in anchor) >= FOCUS_SHARE * sum(
                weight.get(t, 1.0) for t in weighed
            ):
                off |= cut([max(anchor, key=lambda t: weight.get(t, 1.0))])  # "MGM" stands for "MGM Resorts"
        said = [t for t in carried if t in context.names]
        if said:
            off |= cut(said)
        if best.coverage >= FOCUS_BEST_COVERAGE:
            # A record that answers by its vendor, product or CVE may word the rest differently.
            by_entity = {c.id for c in kept if _entity_names(reasons[c.id])}
            off |= {c.id for c in kept if c.coverage < FOCUS_RELATIVE * best.coverage and c.id not in by_entity}
        others = [c for c in kept if c.id in off and c.cluster_id != best.cluster_id]
        if not others:
            return kept
        close = self._same_story([best], others)
        return [c for c in kept if c.id not in off or c.cluster_id == best.cluster_id or c.id in close]

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
        self, query: StructuredQuery, vector: np.ndarray | None, where: RecordFilter
    ) -> list[_Candidate]:
        ids: dict[str, float] = {}
        if vector is not None:
            ids = dict(self.store.index.query(vector, WIDE_CANDIDATES))
        fts = self._fts_hits(query, limit=WIDE_CANDIDATES)
        if not ids and not fts:
            # No topic at all ("anything new?"): the newest records are the answer.
            rows = self.store.candidate_rows(where, newest_first=True, limit=WIDE_CANDIDATES)
            return [_candidate(r) for r in rows]
        rows = self.store.candidate_rows(where, any_of_ids=list(ids), any_of_rowids=list(fts))
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
        vectors = self.store.vectors_by_rowid([c.rowid for c in candidates])
        scored = [c for c in candidates if c.rowid in vectors]
        if not scored:
            return
        # One matrix product: a catalogue question scores thousands, one by one they cost more than reading them.
        similarities = np.stack([vectors[c.rowid] for c in scored]) @ vector
        for c, similarity in zip(scored, similarities.tolist(), strict=True):
            c.dense = similarity

    @staticmethod
    def _rank_dense(candidates: list[_Candidate]) -> None:
        scored = sorted((c for c in candidates if c.dense is not None), key=lambda c: -(c.dense or 0.0))
        for rank, c in enumerate(scored):
            c.dense_rank = rank

    def _fts_hits(
        self, query: StructuredQuery, *, limit: int | None = None, among: Sequence[int] | None = None
    ) -> dict[int, float]:
        """BM25 scores (lower is better, as FTS5 gives them) of the records containing the topic words.

        ``among``: only these rowids' scores are needed (the store reads just the spans they lie in).
        """
        expression = _fts_expression(query)
        if not expression:
            return {}
        if among is not None:
            return self.store.text_scores(expression, among=among)
        return self.store.text_scores(expression, limit=limit)

    def _score_bm25(self, query: StructuredQuery, candidates: list[_Candidate]) -> None:
        if not candidates:
            return
        hits = self._fts_hits(query, among=[c.rowid for c in candidates])
        ordered = sorted((c for c in candidates if c.rowid in hits), key=lambda c: hits[c.rowid])
        for rank, c in enumerate(ordered):
            c.bm25_rank = rank

    def _pre_gate_terms(self, query: StructuredQuery) -> list[str]:
        """The words a record must hit (in BM25) to reach the relevance gate: those that can name a subject,
        less the context's common ones ("what did cisa add to KEV this week? need it for the call")."""
        informative = set(self._term_weights(query.terms).informative(query.terms))
        asking = _asking_sentence(query.text).lower()
        return [
            t for t in query.terms if self._names_a_subject(t, query) and (t in informative or contains_word(asking, t))
        ]

    @staticmethod
    def _could_match(query: StructuredQuery, candidate: _Candidate, subject_terms: Sequence[str]) -> bool:
        """A cheap pre-gate: without a text hit or close meaning, no record can pass the relevance gate.

        Vendor, product and topic words all go into the text query, and a record's canonical
        vendors and products are indexed with it, so a record about them has a BM25 hit.
        """
        if not (query.products or query.vendors or subject_terms or query.cves):
            return True  # "what went into KEV last week?": the filters chose them
        if query.cves and not (query.products or query.vendors or subject_terms):
            return True  # the CVE filter already chose them
        return candidate.bm25_rank is not None or (candidate.dense or 0.0) >= SEMANTIC_GATE

    def _load_records(self, candidates: list[_Candidate]) -> None:
        wanted = [c for c in candidates if c.record is None]
        records = self.store.get_many([c.id for c in wanted])
        for c in wanted:
            c.record = records.get(c.id)
            c.texts = self._gate_texts.of(c.record) if c.record is not None else None

    def _gate(self, query: StructuredQuery, candidate: _Candidate, context: _GateContext) -> dict[str, object] | None:
        """Why this record answers the question, or None when it does not."""
        record, texts = candidate.record, candidate.texts
        if record is None or texts is None:
            return None
        text = texts.folded
        if query.exclude_terms and _exclusions(tuple(query.exclude_terms)).search(text):
            return None
        why: dict[str, object] = {}
        near_miss: str | None = None
        if query.window is not None:
            why["window"] = query.window.label
        if query.kinds:
            why["kind"] = record.kind.value
        if query.cves:
            why["cves"] = [c for c in record.cves if c in query.cves]
            entry = _KEV_ENTRY_CVE.search(record.title) if record.source == KEV_SOURCE else None
            if query.catalogue == "kev" and entry is not None and entry.group(1).upper() not in query.cves:
                return None  # "is CVE-2025-53771 on KEV?": the entry of a related CVE whose notes name it is not
        if query.exploited and candidate.exploited:
            why["exploited"] = True
        text_words = texts.words
        if query.catalogue == "ics" and not about_ics(text_words):
            return None  # "any ICS advisories today?": a KEV story of the day is no ICS advisory
        if (
            query.kinds
            and not query.kinds_required
            and not (query.catalogue == "kev" and record.source == KEV_SOURCE and Kind.RANSOMWARE not in query.kinds)
            and not texts.kind_fits(query.kinds)
            and not self._headline_names_the_subject(query, candidate, context)
        ):
            # A KEV question is answered by its entries, whatever kind its words suggest ("wordpad ntlm hash
            # leak CVE-… - on the KEV list yet?" is no breach question; the entry says "information disclosure").
            # Only ransomware is a kind an entry states (its "known ransomware use" flag, read into its tags).
            if source_type(record.source) != "news" or not kinds_overlap(record.kind, query.kinds):
                return None  # a catalogue's or status page's kind is its source's statement, not a guess
            # A security story about the subject in other words than the kind's is a near miss, for the model.
            near_miss = "kind"
        if query.kinds and record.kind in query.kinds:
            why["kind"] = record.kind.value
        if (
            context.asked_places
            and is_status_source(record.source)
            and self._reports_by_place(record.source)
            and not may_be_about(text_words, context.asked_places)
        ):
            # "cloudflare tunnel problems in lisbon?": a status page that reports local trouble names its place;
            # a report that names none (or another) is the service's trouble elsewhere.
            return None
        entity_names = {n.lower() for n in [*query.products, *query.vendors]}
        # What the first clause names is the subject; later ones give context ("cuba ransomware? they hit veeam boxes").
        asked_entities = entity_names & context.first_names
        own_status_page = is_status_source(record.source) and any(
            _status_report_about(record, v) for v in query.vendors
        )  # the asked service's own report: the parts its title lists are what it is about
        if (
            asked_entities
            and (query.kinds or query.exploited)
            and not own_status_page
            and only_mentioned(record.title, asked_entities, self.dictionary)
        ):
            return None  # "DDoS stopped by X", "malware delivered via X": a story that mentions X is not about X
        names, aliases = self._entities(record)
        # Only a question that names no vendor or product, but a name, can mean a record's own vendor.
        own = _own_names_said(record, query.terms, context.names) if context.names and not entity_names else []
        prints_the_cve = bool(query.cves and set(record.cves) & set(query.cves))
        if prints_the_cve:
            pass  # the CVE says which bug; a vendor or product named beside it adds nothing ("the OpenSSL bug CVE-…")
        elif any(
            len(n) >= MIN_NAME_BESIDE_VENDOR and context.says(text, n.lower()) for n in context.names_beside_entities
        ):
            pass  # "logofail - are our dell/lenovo fleets affected?": the name says what it is about, not the vendors
        elif own and not (query.products or query.vendors):
            why["vendors"] = own  # "advantech advisories?": the record's own vendor, one the dictionary lacks
        elif context.entities_are_context:
            pass  # "all-in-one wp migration flaw - we use the google drive add-ons": Google is context, not asked
        elif query.products:
            hit = [
                p
                for p in query.products
                if p.lower() in names or self._product_named(p, query, names, text, record.source)
            ]
            if hit:
                why["products"] = hit
            elif source_type(record.source) == "news" and any(v.lower() in names for v in query.vendors):
                # The product's vendor, in a story that does not name the product ("Veeam security advisory
                # (AV26-008)" for "veeam backup & replication rce this week?"): the model judges it. A catalogue
                # entry, an advisory or a status page states its products: another one is not about this one.
                near_miss = near_miss or "product"
            else:
                return None
        elif query.vendors:
            hit = [v for v in query.vendors if v.lower() in names and _status_report_about(record, v)]
            if not hit:
                return None
            why["vendors"] = hit
        if query.terms:
            # Words common in the store (or in most candidates) neither gate nor rank; rarer words weigh more.
            informative = context.informative
            # A word of a name the question already read as that name ("6 craft sites" after "Craft CMS") is that name.
            named = {w for n in entity_names for w in re.findall(r"\w+", n)}
            names_here = [
                t
                for t in query.terms
                if t.lower() in aliases and t.lower() not in named and self._names_alone(t.lower())
            ]
            if names_here and not own_status_page and not prints_the_cve:
                # The question used a word that this record uses as a vendor or product name, and the query
                # parser did not read it as that name ("crypto exchange"). Same word, other meaning — unless
                # the question's other rare words are in the record too ("Delta DIAEnergie advisories"). On
                # GitHub's page, "git" is GitHub's git, as the asker meant; and a record printing the asked CVE
                # means the product the asker named beside it ("CVE-2022-26134 confluence ognl - in KEV?").
                others = [t for t in informative if t not in names_here]
                if others and not any(context.says(text, t.lower()) for t in others):
                    return None
            matched = [t for t in informative if context.says(text, t.lower())]
            if matched:
                why["matched_terms"] = matched
            candidate.said = frozenset(matched) | {
                w for w in context.alternative_words if w not in matched and context.says(text, w)
            }
            coverage = context.weights.coverage(informative, candidate.said) if informative else 1.0
            if context.first_clause_names:
                # "ScarCruft / APT37 - pull together everything reported on them this year": a message that opens
                # with names alone asks about them; the request after the dash does not dilute them.
                coverage = max(coverage, context.weights.coverage(context.first_clause_names, candidate.said))
            candidate.coverage = coverage
            candidate.missed = context.weights.largest_missing(informative, candidate.said)
            dense = candidate.dense if candidate.dense is not None else 0.0
            if not informative:
                pass  # nothing but common words: the other filters and the ranking decide
            elif (query.products or query.vendors or query.cves or own) and not context.entities_are_context:
                # The entity already matched; extra words may be phrased differently, so ask for meaning.
                if not matched and dense < ENTITY_TOPIC_GATE:
                    # About the entity, in none of the question's other words nor close in meaning: a near miss
                    # ("Geutebruck IP Cameras" for "every cisa advisory on geutebrück g-cams so far?").
                    near_miss = near_miss or "topic"
            elif not (coverage > 0.5 or (matched and dense >= 0.40) or dense >= context.semantic_gate):
                # Says too little of the question, in words or meaning: a near miss, the model judges it.
                near_miss = near_miss or "topic"
            elif not matched and any(t in context.names for t in informative):
                return None  # "was Boeing hit by ransomware?": meaning alone cannot stand in for a name
        if candidate.dense is not None:
            why["similarity"] = round(candidate.dense, 3)
        if near_miss is not None:
            why["near_miss"] = near_miss
        return why

    def _answers(
        self, query: StructuredQuery, candidate: _Candidate, context: _GateContext
    ) -> dict[str, object] | None:
        """Why this record answers the question by the rules alone (a near miss does not), or None."""
        why = self._gate(query, candidate, context)
        return None if why is None or "near_miss" in why else why

    def _headline_names_the_subject(self, query: StructuredQuery, candidate: _Candidate, context: _GateContext) -> bool:
        """Whether a security story's headline names what the question is about, and it reads like the question:
        then the kind the question's words suggest does not exclude it.

        Sources file one event under different kinds, and a question's kind word is often part of what it asks
        ("0apt — real ransomware crew or fake?" is answered by "Group 0APT accused of faking breach claims",
        "insomniac games — did the wolverine stuff leak?" by "Insomniac Games hit by Rhysida ransomware"). Only
        between security events (an outage or a story of another kind is still no answer), only for a name the
        question uses (not a vendor of the dictionary, which gates on its own), and only when the record reads
        like the question (:data:`KIND_UNSAID_SIMILARITY`): "Avast releases Akira decryptor" names Avast but
        answers no "avast sandbox privesc bugs?".
        """
        record = candidate.record
        if record is None or record.kind not in SECURITY_EVENTS or not set(query.kinds) <= SECURITY_EVENTS:
            return False
        if (candidate.dense or 0.0) < KIND_UNSAID_SIMILARITY:
            return False
        headline = _folded_headline(record.title.lower())
        return any(t in context.names and context.says(headline, t) for t in query.terms)

    def _reports_by_place(self, source: str) -> bool:
        """Whether a status page names the place of local trouble ("… in Warsaw, Poland (WAW)"): at least
        :data:`PLACE_REPORTING_SHARE` of its latest reports name one. One that never does (GitHub's) reports
        trouble everywhere, so "broken for our riyadh office" is no question about Riyadh to it."""
        known = self._place_reporting.get(source)
        if known is None:
            rows = self.store.candidate_rows(
                RecordFilter(end=time.time(), source=source), newest_first=True, limit=PLACE_REPORTING_SAMPLE
            )
            reports = self.store.get_many([r["id"] for r in rows]).values()
            named = sum(names_a_place(f"{r.title}\n{r.summary}") for r in reports)
            known = self._place_reporting[source] = named >= PLACE_REPORTING_SHARE * max(1, len(reports))
        return known

    def _product_named(self, product: str, query: StructuredQuery, names: set[str], text: str, source: str) -> bool:
        """A record of the product's vendor that names the product its own way ("Copilot" for "GitHub Copilot").

        Sources name one product several ways (with or without the vendor, by a family or a feature), so
        an exact name match misses reports. The vendor plus the product's name without it counts, and so
        does the vendor plus a word of that name that is rare in the store ("Outlook", not "Cloud").
        """
        vendor_words = {w for v in query.vendors for w in re.findall(r"\w+", v.lower())}
        if not vendor_words or not any(v.lower() in names for v in query.vendors):
            return False
        if is_status_source(source) and contains_word(source.lower(), product.lower()):
            return True  # a status page's name says whose status it is ("Google Cloud Status")
        own = [w for w in re.findall(r"\w+", product.lower()) if w not in vendor_words and len(w) >= 3]
        if not own:
            return False
        if " ".join(own) in names:
            return True
        rare = self._term_weights(own).informative(own)
        return any(contains_word(text, w) for w in rare)

    def _names_alone(self, word: str) -> bool:
        """Whether ``word`` on its own is a vendor's or product's name ("exchange", "teams"), not merely a word of
        one ("router" in "DIR-600 Router")."""
        return bool(self.dictionary.canonical_vendor(word) or self.dictionary.canonical_product(word))

    def _is_name(self, term: str) -> bool:
        """A name or an identifier, not a word: unknown to the English lexicon (or with digits), and written
        capitalised where the store's summaries use it ("Boeing"; not "takedown", "ransomware")."""
        return self._name_reading(term)[0]

    def _has_subject(self, query: StructuredQuery) -> bool:
        """Whether the question names what it is about: a vendor, product, CVE or a word that can name something."""
        return bool(
            query.vendors or query.products or query.cves or any(self._names_a_subject(t, query) for t in query.terms)
        )

    def _subject_terms(self, terms: Sequence[str], generic: frozenset[str], query: StructuredQuery) -> list[str]:
        """The words that gate: rare in the store, not in most candidates, and able to name a subject."""
        return [t for t in terms if t not in generic and self._names_a_subject(t, query)]

    def _names_a_subject(self, term: str, query: StructuredQuery) -> bool:
        """Whether ``term`` can name what ``query`` is about: a noun or a name (:func:`names_a_subject`), or
        its capitalised name (:meth:`_capitalised_subjects`)."""
        return names_a_subject(term) or term in self._capitalised_subjects(query)

    def _capitalised_subjects(self, query: StructuredQuery) -> frozenset[str]:
        """In a question that names nothing by the lexicon, its words that the store writes capitalised
        mid-sentence more often than not: "any paramount breach updates this week?" is about Paramount.

        A question is about something; when none of its words is a noun or a name, a word English knows only
        otherwise (an adjective, a verb) that the store's summaries capitalise is a company's or a group's
        name, where a plain adjective is almost never capitalised there ("flaky", "hosed" stay chatter). A
        question that names something already keeps such words as context ("fin8 … seeing sardonic iocs").
        """
        if query.vendors or query.products or query.cves or any(names_a_subject(t) for t in query.terms):
            return frozenset()
        key = tuple(query.terms)
        found = self._capitalised.get(key)
        if found is None:
            found = frozenset(
                t
                for t in query.terms
                if re.fullmatch(r"[a-z]+", t)
                and (share := self.store.capitalised_share(t)) is not None
                and share > CAPITALISED_MAJORITY
            )
            if len(self._capitalised) >= ENTITY_CACHE_SIZE:
                self._capitalised.clear()
            self._capitalised[key] = found
        return found

    def _rarer_than_entities(self, names: frozenset[str], query: StructuredQuery) -> frozenset[str]:
        """The ``names`` that the store says less often than each vendor and product the question names."""
        entities = [n.lower() for n in [*query.vendors, *query.products]]
        if not names or not entities:
            return names
        weights = self._term_weights([*names, *entities]).weights
        heaviest = max(weights.get(e, 0.0) for e in entities)
        return frozenset(n for n in names if weights.get(n, 0.0) > heaviest)

    def _said_whole(self, term: str) -> bool:
        """A name matches whole, never by a stem: one the store's summaries write capitalised, or an identifier."""
        known, share = self._name_reading(term)
        return known and (share is not None or bool(re.search(r"\d", term)))

    def _said_shortened(self, term: str) -> bool:
        """An unknown word no summary writes, in a base form: a name ("unifi") or a shortening ("perf"), so it
        matches whole or as the start of a longer word ("performance"), never with an inflection ("Unified").
        One with an inflection's ending ("rebooting") may be jargon inflected, so its stem still finds it."""
        known, share = self._name_reading(term)
        return known and share is None and not re.search(r"\d", term) and not _INFLECTED.search(term)

    def _name_reading(self, term: str) -> tuple[bool, float | None]:
        """Whether ``term`` is a name (see :meth:`_is_name`), and the capitalised share that said so."""
        reading = self._names.get(term)
        if reading is None:
            share = None if re.search(r"\d", term) or not is_name(term) else self.store.capitalised_share(term)
            reading = (is_name(term) and (share is None or share >= NAME_CAPITALISED_SHARE), share)
            self._names[term] = reading
        return reading

    def _entities(self, record: ThreatRecord) -> tuple[set[str], set[str]]:
        """Vendors and products a record is about, and the words its text names them by.

        Its own fields plus what the dictionary finds in its text; the dictionary resolves
        ambiguous names from context, so a crypto exchange's breach does not count as a
        Microsoft Exchange story although both say "exchange".
        """
        found, aliases = self._text_entities(f"{record.title}\n{record.summary}")
        return {v.lower() for v in record.vendors} | {p.lower() for p in record.products} | found, set(aliases)

    def _find_entities(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """The vendors and products the dictionary finds in ``text``, and the words naming them there."""
        names: set[str] = set()
        aliases: set[str] = set()
        for match in self.dictionary.find(text):
            names.add(match.vendor.lower())
            aliases.update(re.findall(r"\w+", match.alias.lower()))
            if match.product:
                names.add(match.product.lower())
        return frozenset(names), frozenset(aliases)

    def _characteristic_words(self, records: Sequence[ThreatRecord]) -> set[str]:
        """Words that the titles naming a CVE share and the store seldom uses: how the bug is called ("n8n").

        A word counts when at least a third of those titles (and two, when there are several) use it and
        at most :data:`CHARACTERISTIC_SHARE` of the store's records do.
        """
        counts: dict[str, int] = {}
        for record in records:
            for word in set(re.findall(r"\w+", record.title.lower())):
                if len(word) >= 3 and not word.isdigit() and "cve" not in word:
                    counts[word] = counts.get(word, 0) + 1
        needed = max(2 if len(records) > 1 else 1, math.ceil(len(records) / 3))
        shared = [w for w, n in counts.items() if n >= needed]
        if not shared:
            return set()
        frequencies = self.store.document_frequencies(shared)
        total = max(1, self.store.count_cached())
        return {w for w in shared if frequencies.get(w, 0) <= CHARACTERISTIC_SHARE * total}

    def _product_words(self, records: Sequence[ThreatRecord]) -> set[str]:
        """Rare words of the products the records naming a CVE are about, without their vendors' words:
        stories call "ArrayOS AG" "ArrayOS", and "Chromium WebP" "WebP"."""
        vendor_words = {w for r in records for v in r.vendors for w in re.findall(r"\w+", v.lower())}
        own = {
            w
            for r in records
            for p in r.products
            for w in re.findall(r"\w+", p.lower())
            if len(w) >= 4 and not w.isdigit() and w not in vendor_words
        }
        return set(self._term_weights(sorted(own)).informative(sorted(own))) if own else set()

    def _term_weights(self, terms: Sequence[str]) -> TermWeights:
        """Each word's weight by its document frequency in the store (cached per process; refreshed as it grows)."""
        total = self.store.count_cached()
        if total > 1.1 * self._frequency_total or total < self._frequency_total:
            self._frequencies, self._frequency_total = {}, total
        missing = [t for t in terms if t not in self._frequencies]
        if missing:
            self._frequencies.update(self.store.document_frequencies(missing))
        return TermWeights.from_frequencies({t: self._frequencies[t] for t in terms}, total)

    def _gate_context(self, query: StructuredQuery, candidates: list[_Candidate]) -> _GateContext:
        """What the candidate pool says about the question's words, for the relevance gate.

        Words found in most candidates (every leak-site post says "victim") cannot tell a right
        answer from a wrong one, so they do not count. And when some candidates contain most of
        the remaining words, a record that contains none needs to be very close in meaning to
        count: templated records (leak-site posts, status pages) all look alike to an embedding.
        """
        first = _first_clause(query.text)
        asked_names, first_names = (
            frozenset(n.lower() for m in self.dictionary.find(part, lenient=True) for n in (m.vendor, m.product) if n)
            for part in (_asking_sentence(query.text), first)
        )
        asked_places = tuple(places_in(_asking_sentence(query.text)))
        if not query.terms:
            return _GateContext(asked_names=asked_names, first_names=first_names, asked_places=asked_places)
        weights = dataclasses.replace(self._term_weights(query.terms), alternatives=query.alternatives)
        texts = [c.texts.plain for c in candidates if c.texts is not None]
        generic: frozenset[str] = frozenset()
        if len(query.terms) >= 2 and len(texts) >= 10:
            # An identifier ("australia-southeast2") is no template's word: when most of the window says it, the
            # window is full of what was asked (a region's outage, told by each of its products).
            generic = frozenset(t for t in query.terms if not re.search(r"\d", t) and _said_by_most(texts, t.lower()))
        informative = self._subject_terms(weights.informative(query.terms), generic, query)
        lexical = bool(informative) and any(
            weights.coverage(informative, [t for t in informative if _matches_term(x, t.lower())]) > 0.5 for x in texts
        )
        names = frozenset(t for t in weights.informative(query.terms) if self._is_name(t))
        alternative_words = frozenset(w for group in query.alternatives for phrase in group for w in phrase.split())
        return _GateContext(
            generic=generic,
            informative=tuple(informative),
            semantic_gate=STRICT_SEMANTIC_GATE if lexical else SEMANTIC_GATE,
            weights=weights,
            names=names,
            alternative_words=alternative_words,
            asked_names=asked_names,
            whole=frozenset(t for t in names if self._said_whole(t)),
            shortened=frozenset(t for t in names if self._said_shortened(t)),
            first_names=first_names,
            entities_are_context=bool(query.vendors or query.products)
            and not query.cves
            and not first_names & {n.lower() for n in [*query.vendors, *query.products]}
            and any(contains_word(first.lower(), t) for t in informative),
            names_beside_entities=self._rarer_than_entities(names, query),
            first_clause_names=self._first_clause_names(query, first, informative, names),
            asked_places=asked_places,
        )

    @staticmethod
    def _first_clause_names(
        query: StructuredQuery, first: str, informative: Sequence[str], names: frozenset[str]
    ) -> tuple[str, ...]:
        """The words of the first clause when it says names and nothing else, and more follows it."""
        if first.strip() == query.text.strip():
            return ()
        words = [w for w in re.findall(r"\w[\w.-]*", first.lower()) if w not in _NAME_LIST_JOINERS]
        return tuple(words) if words and all(w in names and w in informative for w in words) else ()

    def _collapse(
        self, query: StructuredQuery, kept: list[_Candidate], reasons: dict[str, dict[str, object]], *, limit: int
    ) -> list[SearchResult]:
        now = query.until.timestamp()
        scored = sorted(((self._score(query, c, now), c) for c in kept), key=lambda pair: -pair[0])
        best_coverage = max((c.coverage for c in kept), default=0.0)
        clusters: dict[str, SearchResult] = {}
        order: list[str] = []
        for score, candidate in scored:
            assert candidate.record is not None
            result = clusters.get(candidate.cluster_id)
            if result is None:
                signals = RankSignals(
                    dense_rank=candidate.dense_rank,
                    bm25_rank=candidate.bm25_rank,
                    coverage=candidate.coverage,
                    best_coverage=best_coverage,
                    missed=candidate.missed,
                    kept=len(kept),
                )
                clusters[candidate.cluster_id] = SearchResult(
                    candidate.record, score, [], reasons[candidate.id], signals
                )
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
        if query.kinds and c.record is not None:
            if c.record.kind in query.kinds:
                score += 0.008  # the kind asked for, not merely a related one
            elif c.record.kind in related_kinds(query.kinds):
                score += 0.004
        score += 0.01 * c.coverage  # the rarer the question's words a record contains, the better
        score += _SEVERITY_BOOST.get(c.severity, 0.0)
        if query.min_severity is not None and c.severity >= query.min_severity.rank > 0:
            score += ASKED_SEVERITY_BOOST  # "anything critical?" about a subject: its critical records first
        if c.exploited:
            score += EXPLOITED_ASKED_BOOST if query.exploited else 0.003  # "exploited yet?": reports of it first
        if c.record is not None and c.record.source == KEV_SOURCE and _MENTIONS_KEV.search(query.text):
            score += 0.02  # "what did CISA add to KEV?" is answered by the catalogue's own entries
        age_days = max(0.0, (now - c.published) / 86400)
        score += 0.01 * math.exp(-age_days / 14)  # a fresh story outranks an equally good old one
        if not query.products and not query.vendors and not query.terms and not query.cves:
            score += 0.02 * math.exp(-age_days / 2)  # topic-less questions ("any outages today?") want the newest
        return score


#: The words of a status page's name that are not its owner's ("Google Cloud Status", "… service health").
_STATUS_PAGE_WORDS = frozenset({"status", "statuspage", "service", "health", "dashboard", "page"})


def _fts_phrases(names: Iterable[str], *, all_of: bool = False) -> str | None:
    """An FTS5 expression for records that say any (``all_of``: every) one of ``names`` as a phrase; each is
    quoted, so a name is never FTS syntax. None when no name has a word."""
    phrases = [f'"{p}"' for p in (" ".join(re.findall(r"\w+", n.lower())) for n in names) if p]
    return (" AND " if all_of else " OR ").join(phrases) or None


def _within(moments: Sequence[float], moment: float, span: timedelta) -> bool:
    """Whether any of the sorted ``moments`` lies within ``span`` of ``moment`` (a popular CVE has hundreds)."""
    seconds = span.total_seconds()
    i = bisect.bisect_left(moments, moment - seconds)
    return i < len(moments) and moments[i] <= moment + seconds


def _status_report_about(record: ThreatRecord, vendor: str) -> bool:
    """Whether a status page's report can be about ``vendor``: the page is the vendor's ("GitHub Status"), or
    its title does not name the page's owner ("Mandiant.com was inaccessible" on Google Cloud's page).
    "Issues linking GitHub accounts to Cloudflare Pages" is trouble at Cloudflare, whoever else it names."""
    if not is_status_source(record.source):
        return True
    source = record.source.lower()
    if any(contains_word(source, w) for w in re.findall(r"\w+", vendor.lower()) if len(w) >= 3):
        return True
    title = record.title.lower()
    owner = [w for w in re.findall(r"\w+", source) if w not in _STATUS_PAGE_WORDS and len(w) >= 3]
    return not any(contains_word(title, w) for w in owner)


#: Headlines as questions are typed (:func:`~retrieval.gate_text.fold`), once per process: they come up question
#: after question.
_folded_headline = functools.lru_cache(maxsize=ENTITY_CACHE_SIZE)(fold)


def _dated_by_event(source: str) -> bool:
    """Whether a source's records are dated by the event itself (a status page's incident, a catalogue entry, an
    advisory), so that a later record is a later event and never a late report of an earlier one."""
    return source_type(source) != "news"


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


def _subject_names(records: Sequence[ThreatRecord]) -> set[str]:
    """The products the records naming a CVE are about (their vendors when none names a product), lowercased."""
    products = {p.lower() for r in records for p in r.products}
    return products or {v.lower() for r in records for v in r.vendors}


#: Where one clause of a chat message ends: sentence punctuation, a line break, a dash between words.
_CLAUSE_END = re.compile(r"[?!;\n]+|\.(?=\s)|\s[-\u2013\u2014]+\s")
_ASKS_FOR_CATALOGUE = {"kev": _MENTIONS_KEV, "ics": re.compile(r"\bics\b|\bicsm?as?\b|industrial\s+control", re.I)}


def _catalogue_clause(text: str, catalogue: str) -> str | None:
    """The clause of ``text`` that names the catalogue ("what landed in KEV yesterday"), if exactly one does."""
    pattern = _ASKS_FOR_CATALOGUE.get(catalogue)
    clauses = [c for c in _CLAUSE_END.split(text) if pattern is not None and pattern.search(c)]
    return clauses[0] if len(clauses) == 1 else None


#: The endings of an inflected English word ("rebooting", "bricked", "dumps").
_INFLECTED = re.compile(r"(?:ing|ed|s)$")

#: Where a chat message's asking sentence ends: a question mark, other sentence punctuation, a line break.
#: "anything on linksys?", "any news about X", "anything new from nvidia today?": the name after it is what is asked.
_ASKED_ABOUT = re.compile(
    r"(?<![\w-])(?:anything|any\s+(?:news|updates?|word|reports?)|news|updates?|word)\s+(?:new\s+|else\s+)?"
    r"(?:on|about|from|regarding)\s+(?:the\s+)?([\w.+-]+(?:\s+[\w.+-]+)?)",
    re.IGNORECASE,
)
#: Words that join names in a list ("ScarCruft / APT37", "lockbit or blackcat").
_NAME_LIST_JOINERS = frozenset({"and", "or", "aka", "vs"})
_SENTENCE_END = re.compile(r"[?!;\n]+|\.(?=\s)")
#: A sentence and what ends it: a question mark, other punctuation, or the end of the text.
_ASKED = re.compile(r"(.*?)([?!;\n]+|\.(?=\s)|$)", re.DOTALL)


def _asking_sentence(text: str) -> str:
    """What the message asks, dashes and all ("deadlock ransomware - anything new this week"): up to its first
    question mark, context before it included ("getting 522s in chennai tonight. cloudflare side?"); the first
    sentence when it asks nothing."""
    question = _question_sentence(text)
    if question is None:
        return next((c for c in _SENTENCE_END.split(text) if c.strip()), text)
    return text[: question.end(1)]


def _question_sentence(text: str) -> re.Match[str] | None:
    """The first sentence that ends in a question mark ("Did ICS-CERT publish a Triconex advisory?" after
    "After TRITON hit the site, Schneider has been quiet."), or None."""
    return next((m for m in _ASKED.finditer(text) if m.group(1).strip() and m.group(2).startswith("?")), None)


def _asked_terms(terms: Sequence[str], text: str) -> list[str]:
    """The ``terms`` that the asking sentence of ``text`` says (the rest of a message is context)."""
    asking = _asking_sentence(text).lower()
    return [t for t in terms if contains_word(asking, t)]


def _first_clause(text: str) -> str:
    """The question's first clause: what it asks, before the context ("… - we run a lot of vcenter")."""
    return next((c for c in _CLAUSE_END.split(text) if c.strip()), text)


def _entity_names(why: dict[str, object]) -> list[str]:
    """The vendors, products and CVEs by which the gate let a record in (its reason's lists)."""
    names: list[str] = []
    for key in ("vendors", "products", "cves"):
        value = why.get(key)
        if isinstance(value, list):
            names += [n for n in value if isinstance(n, str)]
    return names


def _answers_by_entity_in(why: dict[str, object], clause: str) -> bool:
    """Whether the gate let a record in by a vendor, product or CVE that ``clause`` names."""
    lowered = clause.lower()
    return any(
        contains_word(lowered, w) for n in _entity_names(why) for w in re.findall(r"[\w.-]+", n.lower()) if len(w) >= 3
    )


def _two_word_names(terms: Sequence[str], carried: Sequence[str], text: str) -> list[list[str]]:
    """Consecutive question words that ``text`` also says together ("amaranth dragon", "amaranth-dragon")."""
    return [
        [a, b]
        for a, b in itertools.pairwise(terms)
        if a in carried and b in carried and re.search(rf"(?<!\w){re.escape(a)}[\s-]{re.escape(b)}(?!\w)", text)
    ]


def _own_names_said(record: ThreatRecord, terms: Sequence[str], names: frozenset[str]) -> list[str]:
    """The record's own vendors and products whose every word the question says, one of them a name.

    Sources name vendors the dictionary does not know (an ICS advisory's "Advantech", "Fuji Electric");
    a question that says such a name asks about that vendor as surely as one the dictionary knows.
    """
    said = set(terms)
    own: list[str] = []
    for name in dict.fromkeys(form for n in [*record.vendors, *record.products] for form in name_forms(n)):
        words = re.findall(r"\w+", name)
        if words and all(w in said for w in words) and any(w in names for w in words):
            own.append(name)
    return own


def _fts_expression(query: StructuredQuery) -> str:
    """An FTS5 OR-query over the topic words, each quoted so user input is never FTS syntax."""
    words: list[str] = []
    topic = [*query.products, *query.vendors, *query.terms, *query.cves]
    if not topic and query.kinds and not query.kinds_required:
        topic = [k.value for k in query.kinds]  # "any outages?": the kind is the topic (records index their kind)
    for phrase in topic:
        tokens = [t for t in re.findall(r"\w+", phrase.lower()) if len(t) > 1]
        if tokens:
            words.append('"' + " ".join(tokens) + '"')
    return " OR ".join(dict.fromkeys(words))


def _matches_term(text: str, term: str, *, name: bool = False, shortened: bool = False) -> bool:
    """Whether ``text`` says ``term``: a word in any inflection, a name whole or plural ("porsches"), a
    shortening whole or as the start of a longer word ("perf" in "performance").

    Names do not inflect, so a stem would find other words: "unifi" is not "Unified", "sonos" not "Sonoma".
    """
    if name or shortened:
        return contains_word(text, term) or _whole_pattern(term, longer=shortened).search(text) is not None
    return contains_word(text, term) or _stem_in(text, term)


@functools.lru_cache(maxsize=4096)
def _whole_pattern(word: str, *, longer: bool) -> re.Pattern[str]:
    """``word`` whole, as a plural or possessive, or with a version ("porsches", "ivanti's", "lockbit3"); with
    ``longer``, also as the start of a longer word ("perf" in "performance"), but never with an inflection."""
    base = word[:-1] if word.endswith("s") and len(word) > 4 else word
    longer_word = r"|[a-z]{3,}" if longer else ""
    return re.compile(r"(?<!\w)" + re.escape(base) + rf"(?:s|es|'s|\d+{longer_word})?(?!\w)")


def _said_by_most(texts: Sequence[str], term: str) -> bool:
    """Whether more than half of ``texts`` say ``term``; counting stops as soon as the answer is known."""
    half = 0.5 * len(texts)
    said = unsaid = 0
    for text in texts:
        if _matches_term(text, term):
            said += 1
            if said > half:
                return True
        else:
            unsaid += 1
            if unsaid >= len(texts) - half:
                return False
    return False


@functools.lru_cache(maxsize=256)
def _exclusions(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern matching any excluded word as a whole word: one pass over a record's text, not one per word."""
    ordered = sorted({w.lower() for w in words if w}, key=len, reverse=True)  # longest first: "co-op" before "co"
    if not ordered:
        return re.compile(r"(?!)")
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\w)")


def _stem_in(text: str, word: str) -> bool:
    """A crude stem match (hospital/hospitals, attack/attacks/attacked) for the relevance gate."""
    found = _stem_pattern(word)
    return found is not None and found[0] in text and found[1].search(text) is not None


@functools.lru_cache(maxsize=4096)
def _stem_pattern(word: str) -> tuple[str, re.Pattern[str]] | None:
    """``word``'s stem and the pattern finding it at a word start, once per process; None when too short to use."""
    stem = word.rstrip("s")
    if len(stem) >= 5:
        stem = re.sub(r"(ing|ed|es|e)$", "", stem)
    if len(stem) < 4:
        return None
    return stem, re.compile(r"(?<!\w)" + re.escape(stem))
