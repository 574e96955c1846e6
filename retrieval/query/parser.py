"""The parser: passes over a question, each consuming what it recognises, into a :class:`StructuredQuery`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from retrieval.aboutness import names_a_subject
from retrieval.cve import CVE_PATTERN, normalise_cve
from retrieval.query.model import StructuredQuery
from retrieval.query.text import _Text
from retrieval.query.time_grammar import (
    _POINT_RE,
    _Clock,
    _parse_time,
    _point,
    _Span,
    _window,
    latest_patch_tuesday,
    restore_possessives,
)
from retrieval.query.vocabulary import (
    _BARE_KEV,
    _CAUSE_QUESTION,
    _EXCLUDE,
    _EXPLOITED,
    _ICS_ADVISORIES,
    _ICS_CERT,
    _KEV_CATALOGUE,
    _KIND_PATTERNS,
    _KIND_WORDS,
    _MALFUNCTION_WORD,
    _NOT_A_DAY,
    _NOT_EXPLOITED,
    _NOW_WORDS,
    _ONGOING_WORDS,
    _OPERATOR,
    _OTHER_SENSE,
    _PAST_TENSE,
    _PHRASE_TERMS,
    _QUOTED,
    _SEVERITY_PHRASES,
    _SEVERITY_WORDS,
    _STATUS_NOW,
    _STOPWORDS,
    _TAKEDOWN,
    _WORD,
    _stricter,
    _unquote,
    is_trouble_question,
    spaced_scripts,
    speaks_of_malfunction,
    word_of,
)
from retrieval.records import Kind, Severity, scrub_text
from retrieval.vendors import VendorDictionary


def _dedupe(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for item in items:
        key = item.lower() if isinstance(item, str) else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


@dataclass
class _Found:
    """What the passes over a question have recognised so far."""

    kinds: list[Kind] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    cves: list[str] = field(default_factory=list)
    terms: list[tuple[int, str]] = field(default_factory=list)  # (position, term), sorted at the end
    excludes: list[str] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=list)
    exploited: bool | None = None
    exploited_required: bool = False
    severity_required: bool = False
    has_cve: bool = False
    span: _Span | None = None
    kinds_required: bool = False
    cves_required: bool = False
    catalogue: str | None = None
    #: "now" ("right now", "currently") or "ongoing" ("still", "so far"): the present, when no time is named.
    present: str | None = None
    #: The question names Patch Tuesday: the latest one dates it when no time is named.
    patch_tuesday: bool = False


def _read_operators(buf: _Text, found: _Found, vd: VendorDictionary, clock: _Clock) -> None:
    """``vendor:fortinet kind:outage severity>=high cve:any exploited:no since:2024-06-01`` and ``-vendor:x``."""
    for m in buf.take(_OPERATOR):
        key, op, value = m["key"].lower(), m["op"], _unquote(m["value"]).strip()
        name = value.replace("_", " ")
        if m["neg"]:
            if value:
                found.excludes.append(value.lower())  # "-vendor:acme": the name must not appear
        elif key == "vendor" and value:
            found.vendors.append(vd.canonical_vendor(name) or name)
        elif key == "product" and value:
            product = vd.canonical_product(name)
            if product:
                found.vendors.append(product[0])
            found.products.append(product[1] if product else name)
        elif key in {"kind", "type"} and value:
            for part in re.split(r"[,|]", value.lower()):
                kind = _KIND_WORDS.get(part) or next((k for k in Kind if k.value == part), None)
                if kind:
                    found.kinds.append(kind)
                    found.kinds_required = True  # written as an operator: the user means it as a filter
        elif key in {"severity", "sev"} and value:
            level = _SEVERITY_WORDS.get(value.lower())
            if level and op in {">", "<", "<="}:
                level = _stricter(level) if op == ">" else None  # upper bounds are not a filter we offer
            if level:
                found.severities.append(level)
                found.severity_required = True  # written as an operator: the user means it as a filter
        elif key == "cvss" and value:
            with contextlib.suppress(ValueError):
                found.severities.append(Severity.from_cvss(float(value)))
                found.severity_required = True
        elif key == "cve":
            match = CVE_PATTERN.fullmatch(value) if value else None
            if match:
                found.cves.append(normalise_cve(match))
                found.cves_required = True  # written as an operator: only records that name it
            else:
                found.has_cve = True  # "cve:", "cve:any", "cve:*": records that name any CVE
        elif key in {"has", "is"}:
            if value.lower() in {"cve", "cves"}:
                found.has_cve = True
            elif value.lower() in {"exploited", "kev", "itw", "0day", "zero-day", "zeroday"}:
                found.exploited = True
                found.exploited_required = True
        elif key == "exploited":
            found.exploited = value.lower() not in {"no", "false", "0", "n"}
            found.exploited_required = True
        elif key in {"since", "on", "in"} and value:
            inner = _POINT_RE.fullmatch(name)
            point = _point(inner, clock) if inner else None
            if point:
                found.span = _Span(point.start, clock.now, f"since {point.label}") if key == "since" else point


def _drop_other_senses(buf: _Text) -> None:
    """Blank the sense a question rules out ("on-prem exchange, not crypto"): it is neither asked about nor a
    name, and it must not veto the sense meant (near "exchange", "crypto" says a crypto exchange). It excludes
    nothing: only an operator ("-crypto", "NOT crypto") does. A "not" that is no sense ("…, not in KEV yet?",
    "…, not sure if…", "…, not exploited?") starts with a function word or names nothing, and stays."""
    for m in list(_OTHER_SENSE.finditer(buf.current)):
        words = m["sense"].lower().split()
        if words[0] in _STOPWORDS or not any(names_a_subject(w) for w in words):
            continue
        if buf.free(m.start(), m.end()):
            buf.consume(m.start(), m.end())


def _read_vendors(buf: _Text, found: _Found, vd: VendorDictionary) -> None:
    """Vendors and products, ambiguous names resolved by the dictionary's context rules (lenient: module doc)."""
    for match in vd.find(buf.current, lenient=True):
        if buf.free(match.start, match.end):
            buf.consume(match.start, match.end)
            found.vendors.append(match.vendor)
            if match.product:
                found.products.append(match.product)


def _read_signals(buf: _Text, found: _Found) -> None:
    """Exploitation, severity and kind words, and multi-word topics that must stay one term."""
    for _ in buf.take(_KEV_CATALOGUE):  # before "kev" is read as a mere exploitation word
        found.catalogue = "kev"
        found.exploited = True
    for _ in buf.take(_ICS_CERT):
        found.catalogue = found.catalogue or "ics"
    if found.catalogue is None and _ICS_ADVISORIES.search(buf.current):  # not taken: "advisories" is a kind too
        found.catalogue = "ics"
    for _ in buf.take(_NOW_WORDS):
        found.present = "now"
    for _ in buf.take(_ONGOING_WORDS):
        found.present = found.present or "ongoing"
    for m in buf.take(_TAKEDOWN):  # law-enforcement takedowns are not outages
        found.terms.append((m.start(), "takedown"))
    for _ in buf.take(_NOT_EXPLOITED):
        found.exploited = False
    for _ in buf.take(_EXPLOITED):
        found.exploited = True if found.exploited is None else found.exploited
    for pattern, level_of in _SEVERITY_PHRASES:
        for m in buf.take(pattern):
            level = level_of(m)
            if level:
                found.severities.append(level)
    buf.drop(_CAUSE_QUESTION)
    malfunction = speaks_of_malfunction(buf.current) and not found.exploited
    kinds: list[tuple[int, Kind, str]] = []
    for kind, pattern in _KIND_PATTERNS:
        kinds.extend((m.start(), kind, m.group(0)) for m in buf.take(pattern))
    if malfunction and not any(k is Kind.VULNERABILITY and not _MALFUNCTION_WORD.fullmatch(w) for _, k, w in kinds):
        # A question about a service in trouble ("merge queue stuck - a github bug?", "erroring again?? thought
        # that got fixed") speaks of a malfunction and its repair, unless it says vulnerability or exploitation.
        kinds = [(at, Kind.OUTAGE if k is Kind.VULNERABILITY else k, w) for at, k, w in kinds]
    found.kinds.extend(_dedupe(kind for _, kind, _ in sorted(kinds, key=lambda item: item[0])))
    for m in buf.take(_PHRASE_TERMS):
        found.terms.append((m.start(), " ".join(m.group(0).lower().split())))


#: A question longer than this is not a question (a pasted log, or an attack on the gate's CPU).
MAX_QUESTION_CHARS = 2000
#: Topic and excluded words kept from one question; more would only slow the relevance gate down.
MAX_TERMS = 40


class QuestionTooLong(ValueError):
    """A question over :data:`MAX_QUESTION_CHARS`; the message says so in words a user can act on."""


def check_question(text: str) -> None:
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionTooLong(
            f"That question is {len(text):,} characters long; please ask in at most {MAX_QUESTION_CHARS:,}."
        )


def parse_query(
    text: str,
    *,
    now: datetime,
    tz: str | ZoneInfo = "UTC",
    dictionary: VendorDictionary | None = None,
) -> StructuredQuery:
    """Turn a question into a :class:`StructuredQuery`, resolving time in ``tz`` against ``now``.

    ``now`` is the moment of asking (a naive ``now`` is taken as UTC, like record dates); nothing
    published after it can match. ``dictionary`` defaults to the packaged :class:`VendorDictionary`.
    Passes run in a fixed order and each consumes what it recognises, so later passes and the
    leftover terms never see it twice. Raises :class:`QuestionTooLong` past :data:`MAX_QUESTION_CHARS`.
    """
    check_question(text)
    # A lone surrogate would fail the tokenizer, SQLite and every chat platform.
    asked = text = spaced_scripts(scrub_text(text))
    text = restore_possessives(text)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    clock = _Clock(now, _zone(tz))
    vd = dictionary or VendorDictionary.default()
    buf = _Text(text)
    found = _Found()

    _read_operators(buf, found, vd, clock)
    # Exclusions go before vendor matching, so "Exchange outage -crypto" is not vetoed by the word excluded.
    for m in buf.take(_EXCLUDE):
        value = _unquote(m["quoted"] or m["word"] or m["after"] or m["phrase"] or "").strip().lower()
        if value:
            found.excludes.append(value)
    _drop_other_senses(buf)
    for m in buf.take(_QUOTED):  # quoted phrases are literal search terms
        found.terms.append((m.start(), (m["q"] or m["q2"]).strip().lower()))
    for m in buf.take(CVE_PATTERN):
        found.cves.append(normalise_cve(m))
    _read_vendors(buf, found, vd)
    for m in buf.take(_NOT_A_DAY):  # "Patch Tuesday" is a release, not last Tuesday
        if m["pt"]:
            found.kinds.append(Kind.VULNERABILITY)
            found.patch_tuesday = True
        else:
            found.terms.append((m.start(), " ".join(m.group(0).lower().split())))
    parsed = _parse_time(buf, clock, names_a_bug=bool(found.cves))
    span = found.span or parsed
    if span is None and found.patch_tuesday and not found.cves:
        # "siemens ics advisories from this patch tuesday?": that release's week. A CVE names the bug itself.
        span = latest_patch_tuesday(clock)
    _read_signals(buf, found)
    if found.catalogue is None and span is not None and _BARE_KEV.search(asked):
        found.catalogue = "kev"  # "KEV today?": what the catalogue gained in that period
    if span is None and not found.present and _STATUS_NOW.search(asked) and not _PAST_TENSE.search(asked):
        found.present = "now"  # "teams down??": a service failing as the asker speaks
    if span is None and found.present and found.catalogue != "kev":
        span = _present_span(found, clock, trouble=is_trouble_question(found.kinds, asked))
    for m in _WORD.finditer(buf.current):  # what is left: meaningful words
        word = word_of(m.group(0))
        if word and word not in _STOPWORDS and not word.isdigit() and len(word) >= 2:
            found.terms.append((m.start(), word))

    terms = _dedupe(term for _, term in sorted(found.terms, key=lambda item: item[0]))
    terms = [t for t in terms if t not in found.excludes][:MAX_TERMS]
    return StructuredQuery(
        text=asked,
        until=clock.now,
        window=_window(span, clock.now) if span else None,
        kinds=_dedupe(found.kinds),
        exploited=found.exploited,
        min_severity=min(found.severities, key=lambda s: s.rank) if found.severities else None,
        cves=_dedupe(found.cves),
        has_cve=found.has_cve,
        vendors=_dedupe(found.vendors),
        products=_dedupe(found.products),
        terms=terms,
        exclude_terms=_dedupe(found.excludes)[:MAX_TERMS],
        kinds_required=found.kinds_required,
        cves_required=found.cves_required,
        exploited_required=found.exploited_required,
        severity_required=found.severity_required,
        catalogue=found.catalogue,
        alternatives=_alternatives(buf.current, terms),
    )


#: Where a question offers alternatives: "/", "+", "&" or the word "or" between two words.
_ALTERNATIVE_SEPARATOR = re.compile(r"\s*/\s*|\s+or\s+|\s+[+&]\s+", re.IGNORECASE)
#: The longest name an alternative may be ("void blizzard"): longer runs are a sentence, not a name.
MAX_ALTERNATIVE_WORDS = 2


def _alternatives(leftover: str, terms: list[str]) -> list[list[str]]:
    """Phrases said as alternatives of each other ("star blizzard / coldriver"), one group per chain.

    The alternatives are the words beside the separator, or the runs of topic words there (at most
    :data:`MAX_ALTERNATIVE_WORDS`) when both sides are such runs: "void blizzard / laundry bear" offers two
    names, not "blizzard" or "laundry".
    """
    known = set(terms)
    tokens = [
        (m.start(), m.end(), m.group(0).lower().strip("'."))
        for m in _WORD.finditer(leftover)
        if m.group(0).lower() != "or"  # a separator, not a word
    ]
    groups: list[list[str]] = []
    for i in range(len(tokens) - 1):
        gap = leftover[tokens[i][1] : tokens[i + 1][0]]
        if not _ALTERNATIVE_SEPARATOR.fullmatch(gap):
            continue
        before = _run(leftover, tokens, i, -1, known)
        after = _run(leftover, tokens, i + 1, 1, known)
        if " " not in before or " " not in after:
            # Two-word names on both sides ("void blizzard / laundry bear") are names; otherwise the words
            # beside the separator are the alternatives ("star blizzard / coldriver", "tinder / hinge users").
            before, after = before.split(" ")[-1], after.split(" ")[0]
        if not before or not after or before == after:
            continue
        if groups and before in groups[-1]:
            if after not in groups[-1]:
                groups[-1].append(after)  # "a / b / c"
        else:
            groups.append([before, after])
    return groups


def _run(text: str, tokens: list[tuple[int, int, str]], i: int, step: int, known: set[str]) -> str:
    """The topic words adjacent to ``tokens[i]`` in direction ``step``, as a phrase ("" when it is no topic word)."""
    words: list[str] = []
    while 0 <= i < len(tokens) and len(words) < MAX_ALTERNATIVE_WORDS and tokens[i][2] in known:
        words.append(tokens[i][2])
        j = i + step
        if not 0 <= j < len(tokens):
            break
        gap = text[min(tokens[i][1], tokens[j][1]) : max(tokens[i][0], tokens[j][0])]
        if gap.strip():
            break  # punctuation or a consumed word between: the name ends here
        i = j
    return " ".join(reversed(words) if step < 0 else words)


#: How far back "right now", "currently", "still", "ongoing" reach: a story about the present is a day or
#: two old by the time it is written and read, and an incident that is still going on began recently.
PRESENT = timedelta(hours=48)
#: How far back "being exploited right now" reaches: exploitation goes on for weeks after it is first
#: reported (CISA gives agencies three weeks to fix a newly listed KEV entry).
PRESENT_EXPLOITATION = timedelta(days=21)
#: How far back "still" and "ongoing" reach in a story that is no trouble at a service ("qakbot crew still active
#: after the takedown?", "lastpass breach still costing people money?"): the story going on began days ago.
PRESENT_STORY = timedelta(days=7)


def _present_span(found: _Found, clock: _Clock, *, trouble: bool) -> _Span:
    """The recent window "right now", "currently", "still", "ongoing" stand for when no time is named.

    Catalogue membership ("is it in KEV yet?") is a state, not an event, and keeps no window. Exploitation
    is a state that lasts: "is X being exploited right now?" is answered by reports of the last weeks. A
    story that is "still" going on ("did lockbit dump the boeing files yet or still just threatening?") is
    answered by the last week's reports of it; trouble at a service ("is github still down?") by the last two
    days'.
    """
    if found.exploited:
        start = (clock.now.astimezone(UTC) - PRESENT_EXPLOITATION).astimezone(clock.tz)
        return _Span(start, clock.now, "right now (past 3 weeks)")
    if found.present == "ongoing" and not trouble:
        start = (clock.now.astimezone(UTC) - PRESENT_STORY).astimezone(clock.tz)
        return _Span(start, clock.now, "still (past week)")
    start = (clock.now.astimezone(UTC) - PRESENT).astimezone(clock.tz)
    return _Span(start, clock.now, "right now (past 48 hours)")


def without_time_phrases(text: str, *, now: datetime, tz: str | ZoneInfo = "UTC") -> str:
    """``text`` with its time phrases removed ("exchange outage this week" → "exchange outage").

    A standing query (a subscription) watches what arrives from now on, so a window in the question
    it came from would mean nothing. Names that merely contain a weekday ("Patch Tuesday") stay.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    text = restore_possessives(text)
    buf = _Text(text)
    for _ in buf.take(_NOT_A_DAY):
        pass
    before = buf.current
    _parse_time(buf, _Clock(now, _zone(tz)))
    after = buf.current
    kept = "".join(" " if b != a else o for o, b, a in zip(text, before, after, strict=True))
    # "today?" leaves no lone "?", and "today's" no lone "'s"
    return " ".join(word for word in kept.split() if word.strip("?!.,;:") not in ("", "'s", "’s"))
