"""The last judgment on an answer: a learned model that keeps the results that answer and drops the rest.

The ranking's rules decide which records may answer and in what order; they cannot weigh their own
signals against each other. Whether a record 1.8 points of similarity below the best, saying two of
three rare words, with the kind asked for, from a status page, answers the question is a judgment
over many signals at once. That judgment is learned here from labelled questions (``bench/heldout*``,
written by people who had not read the ranking code) with gradient-boosted trees
(``bench/train_relevance.py``), and the trees ship as plain data in ``data/relevance-model.json``.
Inference is a few vectorised array lookups: no learning library at run time.

Two thresholds, both chosen by cross-validation (not by hand): an answer whose likeliest result is below
the *answer* threshold is an honest "nothing"; otherwise the results below the lower *keep* threshold are
left out. Whether a question has an answer at all is judged on the best evidence, and once it has one,
a weaker result that is likely enough still belongs to it. The ranking's order is kept: the model judges
whether a result answers, not which answers best.

Some answers are facts, not judgments, and the model never drops them (:func:`certain`): the newest records,
when the question asks for nothing in particular ("latest", "anything new today?"); a record that
prints the CVE asked about; an entry a catalogue (KEV, CISA's advisories) or a status page files under the
kind asked, in the window, when the question asks for nothing else ("any new advisories today?"); a record
the rules found by the vendor or product asked, when the question names that and a window and nothing else
("Exchange Online news this week"); and a service's own status page reporting trouble when asked about trouble
at that service (by its vendor's or product's name) and nothing more. The labelled questions hold few of the
last three, and a learned "nothing" to "any GitHub outages yesterday?" while GitHub's status page reported one
would be a false statement, not a judgment.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

import numpy as np

from retrieval.aboutness import contains_word, filed_as, is_name
from retrieval.enrich import is_status_source, source_type
from retrieval.formats.kev import KEV_SOURCE
from retrieval.places import names_a_place
from retrieval.query import StructuredQuery, is_trouble_question

if TYPE_CHECKING:
    from retrieval.search import SearchResult

#: How a result reached the answer: the main ranking, a report of the same bug that never prints the asked
#: CVE, a report of a KEV entry's addition, a report published after the asked window, or a record the rules
#: almost accepted (a near miss, kept only when the model judges it answers).
Path = Literal["ranked", "same_bug", "catalogue_news", "late", "near_miss"]

MODEL_RESOURCE = "relevance-model.json"
_ASKS_YET = re.compile(r"\b(?:yet|already|ever|still)\b", re.IGNORECASE)
#: A rank from the dense or BM25 list that a record was not in.
ABSENT_RANK = 400
#: Similarity written for a result that has none (a catalogue report found by its CVE).
NO_SIMILARITY = -0.2


@dataclass(frozen=True)
class RankSignals:
    """What the ranking knew about a result when it chose it: the model's inputs beyond the record itself."""

    path: Path = "ranked"
    dense_rank: int | None = None
    bm25_rank: int | None = None
    #: The weighted share of the question's informative words the record says, and the best share of any record kept.
    coverage: float = 0.0
    best_coverage: float = 0.0
    #: The largest share of the question's informative weight that one word the record does not say carries.
    missed: float = 0.0
    #: How many records passed every rule before clusters were collapsed.
    kept: int = 0


FEATURES: tuple[str, ...] = (
    "position", "inverse_position", "results", "score_vs_best", "similarity", "similarity_vs_best",
    "similarity_below_best", "coverage", "coverage_vs_best", "in_bm25", "bm25_rank", "dense_rank",
    "path_ranked", "path_same_bug", "path_late", "path_catalogue_news", "path_near_miss", "kept", "kind_asked", "kind_other",
    "asks_kinds", "by_vendor", "by_product", "by_cve", "exploited_asked_and_said", "words_said",
    "share_of_words_said", "share_of_words_in_title", "words", "has_window", "window_days", "place_in_window",
    "days_before_newest", "asks_cves", "asks_vendor_or_product", "asks_kev", "asks_ics", "asks_exploited", "source_kev",
    "source_advisory", "source_status_page", "source_news", "severity", "exploited", "other_sources",
    "question_words", "missed_share", "asks_yet",
)  # fmt: skip


def features(query: StructuredQuery, results: Sequence[SearchResult]) -> np.ndarray:
    """One row per result, in :data:`FEATURES` order: the result's own signals and how it compares to the others."""
    rows = np.zeros((len(results), len(FEATURES)))
    if not results:
        return rows
    best_score = max((r.score for r in results if _signals(r).path == "ranked"), default=0.0) or 1e-9
    best_similarity = max((_similarity(r) for r in results), default=0.0)
    best_similarity = best_similarity if best_similarity > 0 else 1e-9
    terms = [t.lower() for t in query.terms]
    if query.window is not None:
        window_start = query.window.start.timestamp()
        window_span = max(query.window.end.timestamp() - window_start, 3600.0)
    question_words = math.log1p(len(query.text.split()))
    # "claimed yet?", "sentenced yet?": a question about a development, which a story of the subject alone misses.
    # ("still" also means "ongoing"; the trees weigh the word against the window, they do not read it as a rule.)
    asks_yet = bool(_ASKS_YET.search(query.text))
    # Age against the answer's newest result, never against now: when a question is asked says nothing of
    # whether a story answers it ("Okta breach" asked in 2026 is still answered by 2023's reports).
    newest = max(r.record.published.timestamp() for r in results)
    for i, result in enumerate(results):
        signals, why, record = _signals(result), result.why, result.record
        similarity = _similarity(result)
        matched = why.get("matched_terms")
        said = len(matched) if isinstance(matched, list) else 0
        title = record.title.lower()
        source = source_type(record.source)
        rows[i] = (
            i,
            1 / (i + 1),
            len(results),
            result.score / best_score if signals.path == "ranked" else 0.0,
            similarity,
            similarity / best_similarity,
            best_similarity - similarity,
            signals.coverage,
            signals.coverage / signals.best_coverage if signals.best_coverage else 1.0,
            signals.bm25_rank is not None,
            math.log1p(signals.bm25_rank if signals.bm25_rank is not None else ABSENT_RANK),
            math.log1p(signals.dense_rank if signals.dense_rank is not None else ABSENT_RANK),
            signals.path == "ranked",
            signals.path == "same_bug",
            signals.path == "late",
            signals.path == "catalogue_news",
            signals.path == "near_miss",
            math.log1p(signals.kept),
            bool(query.kinds) and record.kind in query.kinds,
            bool(query.kinds) and record.kind not in query.kinds,
            bool(query.kinds),
            "vendors" in why,
            "products" in why,
            bool(why.get("cves")),
            "exploited" in why,
            said,
            said / len(terms) if terms else 1.0,
            sum(t in title for t in terms) / len(terms) if terms else 0.0,
            len(terms),
            query.window is not None,
            math.log1p(window_span / 86400) if query.window is not None else -1.0,
            (record.published.timestamp() - window_start) / window_span if query.window is not None else 0.0,
            math.log1p((newest - record.published.timestamp()) / 86400),
            bool(query.cves),
            bool(query.vendors or query.products),
            query.catalogue == "kev",
            query.catalogue == "ics",
            bool(query.exploited),
            source == "kev",
            source == "advisory",
            source == "status_page",
            source == "news",
            record.severity.rank,
            record.exploited,
            math.log1p(len(result.members)),
            question_words,
            signals.missed,
            asks_yet,
        )
    return rows


class RelevanceModel:
    """Gradient-boosted trees, flattened into arrays, that estimate the chance a result answers its question."""

    def __init__(self, spec: dict) -> None:
        if tuple(spec["features"]) != FEATURES:
            raise ValueError("the relevance model was trained on other features: retrain it (bench/train_relevance.py)")
        self.answer_threshold = float(spec["answer_threshold"])
        self.keep_threshold = float(spec["keep_threshold"])
        self.baseline = float(spec["baseline"])
        feature: list[int] = []
        limit: list[float] = []
        left: list[int] = []
        right: list[int] = []
        value: list[float] = []
        roots: list[int] = []
        for tree in spec["trees"]:
            offset = len(feature)
            roots.append(offset)
            feature += tree["feature"]
            limit += tree["threshold"]
            left += [offset + n if n >= 0 else -1 for n in tree["left"]]
            right += [offset + n if n >= 0 else -1 for n in tree["right"]]
            value += tree["value"]
        self._feature = np.array(feature, dtype=np.intp)
        self._threshold = np.array(limit, dtype=float)
        self._leaf = np.array(left) < 0
        # A leaf points at itself, so every tree can take the same number of steps.
        own = np.arange(len(feature))
        self._left = np.where(self._leaf, own, np.array(left))
        self._right = np.where(self._leaf, own, np.array(right))
        self._value = np.array(value, dtype=float)
        self._roots = np.array(roots, dtype=np.intp)
        self._depth = max((_depth(t) for t in spec["trees"]), default=0)

    @classmethod
    @functools.cache
    def packaged(cls) -> RelevanceModel:
        """The model that ships with threatbot (read once per process)."""
        text = resources.files("retrieval").joinpath("data", MODEL_RESOURCE).read_text(encoding="utf-8")
        return cls(json.loads(text))

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """The chance that each row's result answers its question."""
        if not len(rows):
            return np.zeros(0)
        node = np.broadcast_to(self._roots, (len(rows), len(self._roots))).copy()
        row = np.arange(len(rows))[:, None]
        for _ in range(self._depth):
            goes_left = rows[row, self._feature[node]] <= self._threshold[node]
            node = np.where(goes_left, self._left[node], self._right[node])
        raw = self.baseline + self._value[node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-raw))

    def judge(self, query: StructuredQuery, results: list[SearchResult]) -> list[SearchResult]:
        """The results likely to answer, in the ranking's order; each says its chance in ``why["relevance"]``."""
        chances = self.probabilities(features(query, results))
        for result, chance in zip(results, chances, strict=True):
            result.why["relevance"] = round(float(chance), 3)
        sure = [certain(query, r) for r in results]
        keep = kept(chances.tolist(), sure, answer_threshold=self.answer_threshold, keep_threshold=self.keep_threshold)
        return [r for r, stays in zip(results, keep, strict=True) if stays]


def kept(
    chances: Sequence[float], sure: Sequence[bool], *, answer_threshold: float, keep_threshold: float
) -> list[bool]:
    """Which results stay: none when no result is sure or likely enough to answer; else the likely and the sure."""
    if not any(sure) and max(chances, default=0.0) < answer_threshold:
        return [False] * len(chances)
    return [bool(s or c >= keep_threshold) for c, s in zip(chances, sure, strict=True)]


def certain(query: StructuredQuery, result: SearchResult) -> bool:
    """Whether the ranking's rules found ``result`` by a fact that answers the question whatever the model thinks."""
    record = result.record
    if "near_miss" in result.why:
        return False  # the rules did not accept it: only the model can
    if result.why.get("cves"):
        return True  # it prints the CVE asked about
    if _asks_for_nothing_in_particular(query):
        return True  # "latest", "anything new today?": the newest records are the answer, there is nothing to judge
    if _asks_only_for_a_subject(query) and ("vendors" in result.why or "products" in result.why):
        return True  # "Exchange Online news this week": every record the rules found about it in the window
    name = _the_one_name_asked(query)
    said = result.why.get("matched_terms")
    if name is not None and isinstance(said, list) and name in said and contains_word(record.title.lower(), name):
        # "what has muddywater been up to this week?": a headline of the window that names it. (A name common in
        # the store, "CISA", is no matched term: the gate weighs it as nothing.)
        return True
    if _asks_only_for_a_kind(query) and source_type(record.source) != "news":
        # "any new advisories today?", "what went into KEV today?": every entry its catalogue (or a status page)
        # files under what is asked, in the window, is the answer; no judgment of words can make it less so.
        return record.source == KEV_SOURCE if query.catalogue == "kev" else filed_as(record.kind, query.kinds)
    # "github having problems today?": the service's own status page reporting trouble is the answer. A question
    # that says more ("cloudflare R2 uploads timing out?", "slow in frankfurt?") asks about one part of it, and
    # whether an incident of another part answers is a judgment of words: the model's.
    return (
        not query.terms
        and is_trouble_question(query.kinds, query.text)
        and ("vendors" in result.why or "products" in result.why)
        and is_status_source(record.source)
    )


def _asks_for_nothing_in_particular(query: StructuredQuery) -> bool:
    """A question with no subject and no facet: no word, name, CVE, kind, catalogue, exploitation or severity."""
    return not (
        query.terms
        or query.vendors
        or query.products
        or query.cves
        or query.kinds
        or query.catalogue
        or query.exploited is not None
        or query.min_severity
        or query.has_cve
    )


def _asks_only_for_a_kind(query: StructuredQuery) -> bool:
    """A question that names no subject (no words, names or CVEs), only a kind or a catalogue and a window."""
    subject = query.terms or query.vendors or query.products or query.cves
    return query.window is not None and bool(query.kinds or query.catalogue) and not subject


def _asks_only_for_a_subject(query: StructuredQuery) -> bool:
    """A question that names a vendor or product and a window, and nothing else: no word, kind, CVE, catalogue or
    trouble ("github having problems today?" asks about trouble, which the status-page fact answers)."""
    return (
        query.window is not None
        and bool(query.vendors or query.products)
        and not (query.terms or query.kinds or query.cves or query.catalogue or query.exploited or query.min_severity)
        and not is_trouble_question(query.kinds, query.text)
    )


def _the_one_name_asked(query: StructuredQuery) -> str | None:
    """The name a question asks about over a window when it names nothing else: no vendor, product, kind, CVE,
    catalogue, exploitation or severity, and one word that is a name ("muddywater", "tridentlocker": not English,
    not a place). Its other words ("up to", "anything new") ask for whatever the window holds of it."""
    if query.window is None or query.vendors or query.products or query.kinds or query.cves or query.catalogue:
        return None
    if query.exploited is not None or query.min_severity is not None:
        return None
    names = [t for t in query.terms if is_name(t) and not names_a_place(t)]  # "poland" is where, not what
    return names[0] if len(names) == 1 else None


def _depth(tree: dict) -> int:
    """Edges on the longest path from the root to a leaf."""
    left, right = tree["left"], tree["right"]
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        if left[node] < 0:
            deepest = max(deepest, depth)
        else:
            stack += [(left[node], depth + 1), (right[node], depth + 1)]
    return deepest


def _signals(result: SearchResult) -> RankSignals:
    return result.signals if result.signals is not None else RankSignals()


def _similarity(result: SearchResult) -> float:
    similarity = result.why.get("similarity")
    return float(similarity) if isinstance(similarity, int | float) else NO_SIMILARITY
