"""Whether a record is *about* what a question asks, beyond containing its words.

Three judgements the relevance gate makes, each general (no rule names an entity):

* **Kinds overlap.** A KEV entry is a vulnerability and an advisory; a ransomware attack on a hospital is
  also a breach; sources file the same event under different kinds. A kind read from a question's
  words therefore accepts its related kinds (:data:`RELATED_KINDS`), and a record whose kind nobody
  could tell (``other``) when its own words say it ("cyberattack", "outage"). A record whose kind is
  specific and unrelated (a botnet story for an outage question) does not answer.
* **Subject, not mention.** "Record DDoS stopped by X", "botnet used the X outage", "malware delivered
  via X" mention X; they are not reports about X. A name whose every occurrence in a headline follows
  such a marker (:data:`_MENTION_BEFORE`) is a mention.
* **Rare words carry the topic.** A question's words are weighed by how rare they are in the store
  (inverse document frequency): a rare name must match, a common word ("how bad", "reported", "list")
  neither gates nor ranks. No hand-kept list decides which words count.
* **Names and nouns say what the subject is.** A word English uses only as a verb, adjective or adverb
  ("what *went* into KEV", "did CISA *publish*", "advisories that *include*") says what the asker wants
  to know about the subject, however rare it is in the store; it ranks but does not gate. The parts of
  speech come from an English lexicon (lemminflect), not from a list kept here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lemminflect import getAllLemmas

from retrieval.records import Kind
from retrieval.vendors import VendorDictionary

#: Kinds that answer a question asking for the key kind (the key itself included).
RELATED_KINDS: dict[Kind, frozenset[Kind]] = {
    Kind.OUTAGE: frozenset({Kind.OUTAGE}),
    Kind.VULNERABILITY: frozenset({Kind.VULNERABILITY, Kind.ADVISORY}),
    Kind.ADVISORY: frozenset({Kind.ADVISORY, Kind.VULNERABILITY}),
    Kind.RANSOMWARE: frozenset({Kind.RANSOMWARE, Kind.BREACH}),
    Kind.BREACH: frozenset({Kind.BREACH, Kind.RANSOMWARE}),
    Kind.MALWARE: frozenset({Kind.MALWARE, Kind.RANSOMWARE}),
    Kind.OTHER: frozenset({Kind.OTHER}),
}

_ATTACK = r"cyber[\s-]?attack(?:s|ed)?|(?:cyber|security)[\s-]incidents?|(?:attack|hit|struck)\s+by\s+(?:hackers|a\s+gang|criminals)|extort\w*|data\s+theft"
#: Words in a record's title or summary that say it is of a kind although no kind was assigned; matched against
#: lowercased text (``re.IGNORECASE`` doubles the time, and the gate reads them over thousands of records).
_KIND_EVIDENCE: dict[Kind, re.Pattern[str]] = {
    Kind.OUTAGE: re.compile(
        r"\b(?:outages?|downtime|down\s+for|went\s+down|is\s+down|are\s+down|service\s+disruptions?|disrupted|"
        r"degraded|degradation|unavailable|unreachable|offline|not\s+working|elevated\s+error)\b",
    ),
    Kind.RANSOMWARE: re.compile(
        rf"\b(?:ransom\w*|{_ATTACK}|encrypt(?:ed|ion)\s+(?:systems|servers|files)|leak\s+sites?)\b"
    ),
    Kind.BREACH: re.compile(
        rf"\b(?:breach\w*|leak(?:s|ed)?|stolen|exfiltrat\w*|exposed|hack(?:s|ed)?|compromised|{_ATTACK})\b"
    ),
    Kind.VULNERABILITY: re.compile(
        r"\b(?:vulnerabilit\w*|flaws?|cve-\d|bugs?|patch\w*|zero[\s-]?days?|0[\s-]?days?|exploit\w*|advisor\w*|"
        r"rce|remote\s+code|injection|overflow|bypass)\b",
    ),
    Kind.ADVISORY: re.compile(r"\b(?:advisor\w*|bulletins?|icsa-|alerts?|vulnerabilit\w*|cve-\d)\b"),
    Kind.MALWARE: re.compile(
        r"\b(?:malware|trojans?|\w*stealers?|botnets?|backdoors?|rats?|spyware|loaders?|wipers?|worms?|"
        r"rootkits?|droppers?|ransomware)\b",
    ),
}

#: Words that, just before a name in a headline, make it an instrument or a bystander of the story.
_MENTION_BEFORE = re.compile(
    r"\b(?:by|via|using|used|uses|through|amid|during|abus(?:ing|ed|es)|leverag(?:ing|ed|es)|impersonat\w+|"
    r"mimic\w*|posing\s+as|disguised\s+as|fake|spoofed|including|like)"
    r"(?:\s+\S+){0,2}\s*$",
    re.I,
)


def related_kinds(kinds: Iterable[Kind]) -> frozenset[Kind]:
    """Every kind that answers a question asking for any of ``kinds``."""
    out: set[Kind] = set()
    for kind in kinds:
        out |= RELATED_KINDS.get(kind, frozenset({kind}))
    return frozenset(out)


#: Kinds that are one thing filed two ways: an advisory is about vulnerabilities, and a KEV or CSAF entry is both.
_SAME_THING: dict[Kind, frozenset[Kind]] = {
    Kind.ADVISORY: frozenset({Kind.VULNERABILITY}),
    Kind.VULNERABILITY: frozenset({Kind.ADVISORY}),
}


#: Security events: sources file them under any kind (an advisory about a gang, an attack reported as an outage).
SECURITY_EVENTS = frozenset({Kind.VULNERABILITY, Kind.ADVISORY, Kind.RANSOMWARE, Kind.BREACH, Kind.MALWARE})


def says_kind(text: str, kinds: Iterable[Kind]) -> bool:
    """Whether ``text`` itself says it is one of ``kinds`` ("cyberattack", "extortion" for ransomware)."""
    return _says_kind(text.lower(), kinds)


def _says_kind(lowered: str, kinds: Iterable[Kind]) -> bool:
    return any(_KIND_EVIDENCE[k].search(lowered) for k in kinds if k in _KIND_EVIDENCE)


def filed_as(record_kind: Kind, asked: Iterable[Kind]) -> bool:
    """Whether a record filed as ``record_kind`` is filed as one of the ``asked`` kinds (advisory and
    vulnerability being one thing filed two ways)."""
    return any(record_kind is k or record_kind in _SAME_THING.get(k, ()) for k in asked)


def kind_fits(record_kind: Kind, asked: Iterable[Kind], text: str) -> bool:
    """A record of ``record_kind`` with ``text`` (its title on the first line) answers a question for ``asked``.

    The asked kind, or one filed the other way (advisory/vulnerability), fits outright; a related or unknown
    kind fits when its words say the asked kind. A record of another kind fits when its headline says so:
    a ransomware attack filed as an outage ("platform shut down after cyberattack"), a joint advisory filed
    as ransomware news. Its summary is not enough there: an outage report that mentions "a bug" is still
    no vulnerability report.
    """
    asked = list(asked)
    if filed_as(record_kind, asked):
        return True
    text = text.lower()
    if record_kind is Kind.OTHER or record_kind in related_kinds(asked):
        return _says_kind(text, asked)
    headline = text.split("\n", 1)[0]
    if _says_kind(headline, [k for k in asked if k in SECURITY_EVENTS]):
        return True
    # An attack that takes a service down is an outage report too; a malware story is not, however often it
    # says "outage" (a botnet that "used the outage", malware "delivered during the downtime").
    return Kind.OUTAGE in asked and record_kind is not Kind.MALWARE and _says_kind(headline, [Kind.OUTAGE])


def kinds_overlap(record_kind: Kind, asked: Iterable[Kind]) -> bool:
    """Whether a record of ``record_kind`` that :func:`kind_fits` rejects may still answer, for a judge to weigh.

    Security events overlap in the real world (the exploited flaw behind a ransomware wave, a ransomware attack
    that is a breach), and a record nobody could file (``other``) may be anything. An outage and a security
    event are different things: a status page's incident answers no vulnerability question.
    """
    if record_kind is Kind.OTHER:
        return True
    return record_kind in SECURITY_EVENTS and any(k in SECURITY_EVENTS for k in asked)


_ICS = re.compile(
    r"\b(?:ics|icsm?a-\d|scada|plcs?|hmis?|industrial\s+control|operational\s+technology|ot\s+(?:devices?|networks?|"
    r"systems?|security)|programmable\s+logic)\b",
    re.IGNORECASE,
)


def about_ics(text: str) -> bool:
    """Whether ``text`` (a record's title, tags and summary) is about industrial control systems.

    CISA's ICS advisories carry the tag "ICS" (enrichment reads it from their identifier); news says so
    in words.
    """
    return _ICS.search(text) is not None


def only_mentioned(title: str, names: set[str], dictionary: VendorDictionary) -> bool:
    """True when ``names`` (lower-case vendors/products) occur in ``title`` and every occurrence is a mention.

    A title that does not name them at all is not judged here (the story may still be about them).
    """
    occurrences = [m for m in dictionary.find(title) if m.vendor.lower() in names or (m.product or "").lower() in names]
    if not occurrences:
        return False
    return all(_MENTION_BEFORE.search(title[: m.start]) for m in occurrences)


#: Parts of speech that can name a subject; a word with none of them (but some reading) cannot.
_SUBJECT_TAGS = frozenset({"NOUN", "PROPN"})


@functools.lru_cache(maxsize=4096)
def names_a_subject(term: str) -> bool:
    """Whether ``term`` can name what a question is about: a noun, a name, or a word English does not know.

    Unknown words are names ("rockwell", "react2shell", "icsma"); a phrase counts when any of its words does.
    """
    words = re.findall(r"[a-z]+", term.lower())
    if not words or re.search(r"\d", term):
        return True  # "cve-2025-1234", "5g", "sd-wan" parts: identifiers are names
    for word in words:
        readings = getAllLemmas(word)
        if not readings or _SUBJECT_TAGS & set(readings):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def is_name(term: str) -> bool:
    """Whether ``term`` is a name or an identifier rather than English: a word the lexicon does not know
    ("boeing", "gainsight", "react2shell"), or one with digits ("europe-west4").

    Meaning alone cannot stand in for a name: every ransomware story reads like "was Boeing hit by
    ransomware?", and only the ones that say Boeing answer it.
    """
    if re.search(r"\d", term):
        return True
    return any(not getAllLemmas(word) for word in re.findall(r"[a-z]+", term.lower()))


#: A word in more than this share of the store's records tells no answer from another…
COMMON_SHARE = 0.02
#: …once that share is more than a handful of records (in a small store every word is rare).
COMMON_FLOOR = 50


@dataclass(frozen=True)
class TermWeights:
    """Each question word's weight from its document frequency in the store: ``idf²``, zero when common."""

    weights: Mapping[str, float]
    #: Phrases said as alternatives ("rosemount / ovation", "star blizzard / coldriver"): each group weighs as
    #: its heaviest phrase and is covered by a record that says every word of any one of them.
    alternatives: Sequence[Sequence[str]] = ()

    @classmethod
    def from_frequencies(cls, frequencies: Mapping[str, int], total: int) -> TermWeights:
        total = max(total, 1)
        weights: dict[str, float] = {}
        for term, df in frequencies.items():
            if df > max(COMMON_SHARE * total, COMMON_FLOOR):
                weights[term] = 0.0
            else:
                weights[term] = math.log((total + 1) / (df + 1)) ** 2
        return cls(weights)

    def informative(self, terms: Iterable[str]) -> list[str]:
        return [t for t in terms if self.weights.get(t, 1.0) > 0]

    def common(self, terms: Iterable[str]) -> set[str]:
        return {t for t in terms if self.weights.get(t, 1.0) == 0}

    def largest_missing(self, terms: Sequence[str], said: Collection[str]) -> float:
        """The share of ``terms``' weight carried by the weightiest one not ``said``: "sentenced yet?" of a story
        that says the name and the trial but not "sentenced" misses the word the question turns on."""
        total = sum(self.weights.get(t, 1.0) for t in terms)
        missing = max((self.weights.get(t, 1.0) for t in terms if t not in said), default=0.0)
        return missing / total if total else 0.0

    def coverage(self, terms: Iterable[str], matched: Iterable[str]) -> float:
        """Share of the informative weight that ``matched`` carries (1.0 when no word is informative).

        ``matched`` lists the question words a record says; for a phrase of :attr:`alternatives` it must
        list each of its words, common ones too ("cash app" is not said by "Tornado Cash").
        """
        informative = self.informative(terms)
        hit = set(matched)
        units: list[tuple[float, bool]] = []
        grouped: set[str] = set()
        for group in self.alternatives:
            phrases = [phrase.split() for phrase in group]
            weight = max(sum(self.weights.get(w, 1.0) for w in words if w in informative) for words in phrases)
            grouped.update(w for words in phrases for w in words)
            said = any(all(w in hit for w in words) and any(w in informative for w in words) for words in phrases)
            units.append((weight, said))  # "cisa/nsa": saying the common word says nothing
        units += [(self.weights.get(t, 1.0), t in hit) for t in informative if t not in grouped]
        total = sum(weight for weight, _ in units)
        if total == 0:
            return 1.0
        return sum(weight for weight, said in units if said) / total


def contains_word(text: str, word: str) -> bool:
    """Whether ``text`` says ``word`` whole ("teams" in "ms teams down", not in "steams"); both lowercased."""
    # The substring test is a necessary condition and far cheaper than the regex: most texts fail it.
    return word in text and word_pattern(word).search(text) is not None


@functools.lru_cache(maxsize=4096)
def word_pattern(word: str) -> re.Pattern[str]:
    """``word`` as a whole word, compiled once per process (the gate tests each word against hundreds of texts)."""
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)")
