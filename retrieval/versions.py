"""Versions and version ranges as advisories state them, and whether a given version lies inside.

Advisories write ranges in many dialects, all of which must be read:

* CSAF ``product_version_range`` names, vers-like: ``<V5.40``, ``>=13.4.1|<=13.4.4``,
  ``vers:all/<V2404.0004``, ``1.32|1.33|1.35``, ``all versions``, and vendor forms with words
  (``<V17_Update_8``, ``<V9.62_installed_on_CP150_devices`` — the trailing condition is kept);
* CPE 2.3 match ranges (``versionStartIncluding`` … ``versionEndExcluding``);
* plain text: "versions before 7.4.3", "7.2.0 through 7.2.10", "7.0 and earlier".

Comparison uses :mod:`packaging` (PEP 440, which also reads ``V5.40`` and ``7.2.5-r1``) when both
versions parse; otherwise a component-wise comparison in the manner of libversion (numbers against
numbers, words only against the same words: ``V17 Update 5`` < ``V17 Update 8``). Anything else is
*uncomparable*, and an uncomparable version is never judged outside a range: the caller gets
:attr:`Containment.UNKNOWN` and says "possibly affected".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from packaging.version import InvalidVersion, Version

__all__ = [
    "Bound",
    "Containment",
    "Interval",
    "VersionRange",
    "compare_versions",
    "parse_range",
    "ranges_in_text",
]


class Containment(StrEnum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    UNKNOWN = "unknown"


# -- single versions ------------------------------------------------------------------------------------

#: Words that only announce a version ("V5.40", "Ver. 3.0.1", "version 7.2", "release 3").
_PREFIX = re.compile(r"^(?:v(?:er(?:sion)?)?|rel(?:ease)?|r)\.?\s*(?=\d)", re.IGNORECASE)
_TOKEN = re.compile(r"\d+|[a-z]+", re.IGNORECASE)
#: A trailing wildcard: "7.6x", "7.6.x", "7.6.*" stand for every 7.6 version.
_WILDCARD = re.compile(r"[.\s_-]?(?:x|\*)$", re.IGNORECASE)


def _clean(version: str) -> str:
    return " ".join(version.replace("_", " ").split()).strip(" .,;:")


@lru_cache(maxsize=8192)
def _pep440(version: str) -> Version | None:
    text = _clean(version)
    if "/" in text:  # "8/30/2024" is a date, which PEP 440 would misread as nothing or as a number
        return None
    try:
        return Version(_PREFIX.sub("", text))
    except InvalidVersion:
        return None


@lru_cache(maxsize=8192)
def _tokens(version: str) -> tuple[int | str, ...]:
    text = _PREFIX.sub("", _clean(version).lower())
    return tuple(int(t) if t.isdigit() else t for t in _TOKEN.findall(text))


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b``; None when they cannot be compared."""
    if not a.strip() or not b.strip():
        return None
    pa, pb = _pep440(a), _pep440(b)
    if pa is not None and pb is not None:
        return (pa > pb) - (pa < pb)
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb or not isinstance(ta[0], int) or not isinstance(tb[0], int):
        return None  # "SS016.05…", serial numbers, commit hashes: nothing to order by
    for x, y in zip(ta, tb, strict=False):
        if type(x) is not type(y):
            return None  # "2.0 beta" against "2.0.1": the schemes differ
        if isinstance(x, str) and x != y:
            return None  # "Update" against "SP": different vendor schemes, no order between them
        if x != y:
            return -1 if x < y else 1  # type: ignore[operator]  # both int here
    rest = ta[len(tb) :] or tb[len(ta) :]
    if any(isinstance(t, str) for t in rest):
        return None  # "V17" against "V17 Update 3": is the bare release before or after its updates? Unsaid.
    if all(t == 0 for t in rest):
        return 0  # 7.2 == 7.2.0
    return 1 if len(ta) > len(tb) else -1


def _wildcard_prefix(version: str) -> tuple[int | str, ...] | None:
    text = _clean(version)
    if not _WILDCARD.search(text) or not any(ch.isdigit() for ch in text):
        return None
    return _tokens(_WILDCARD.sub("", text))


# -- ranges -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    version: str
    inclusive: bool


@dataclass(frozen=True)
class Interval:
    """Versions between two bounds (either may be open); ``lower == upper`` inclusive is one version."""

    lower: Bound | None = None
    upper: Bound | None = None

    def contains(self, version: str) -> Containment:
        if self.lower is not None and self.lower == self.upper:
            prefix = _wildcard_prefix(self.lower.version)
            if prefix is not None:
                tokens = _tokens(version)
                if not tokens:
                    return Containment.UNKNOWN
                return Containment.INSIDE if tokens[: len(prefix)] == prefix else Containment.OUTSIDE
        for bound, below in ((self.lower, True), (self.upper, False)):
            if bound is None:
                continue
            order = compare_versions(version, bound.version)
            if order is None:
                return Containment.UNKNOWN
            if order == 0 and not bound.inclusive:
                return Containment.OUTSIDE
            if (below and order < 0) or (not below and order > 0):
                return Containment.OUTSIDE
        return Containment.INSIDE

    def describe(self) -> str:
        if self.lower is not None and self.lower == self.upper:
            return self.lower.version
        parts = []
        if self.lower is not None:
            parts.append((">=" if self.lower.inclusive else ">") + self.lower.version)
        if self.upper is not None:
            parts.append(("<=" if self.upper.inclusive else "<") + self.upper.version)
        return " ".join(parts) or "all versions"


@dataclass(frozen=True)
class VersionRange:
    """A set of versions: a union of intervals, with any condition the advisory attached to it.

    ``unreadable`` is set when the text named no version at all that could be read ("<=The first
    5 digits of serial No."): such a range contains nothing for sure and excludes nothing for sure.
    """

    text: str
    intervals: tuple[Interval, ...] = ()
    condition: str = ""
    unreadable: bool = False

    def contains(self, version: str) -> Containment:
        """Whether ``version`` is in the range; UNKNOWN when the range or the version cannot be read."""
        if self.unreadable or not version.strip():
            return Containment.UNKNOWN
        unknown = False
        for interval in self.intervals:
            found = interval.contains(version)
            if found is Containment.INSIDE:
                return found
            unknown = unknown or found is Containment.UNKNOWN
        return Containment.UNKNOWN if unknown else Containment.OUTSIDE

    @property
    def everything(self) -> bool:
        return any(i.lower is None and i.upper is None for i in self.intervals)

    def describe(self) -> str:
        if self.unreadable:
            return self.text
        text = " or ".join(i.describe() for i in self.intervals) or self.text
        return f"{text} ({self.condition})" if self.condition else text


_OPERATOR = re.compile(r"(<=|>=|!=|<|>|=)")
#: Words that may belong to a version ("V17 Update 8", "V9.1 SP2 UC04", "3.8.0 Feature Pack 1").
_VERSION_WORDS = {
    "update",
    "upd",
    "sp",
    "service",
    "pack",
    "feature",
    "fp",
    "patch",
    "p",
    "hotfix",
    "hf",
    "build",
    "rev",
    "revision",
    "release",
    "r",
    "beta",
    "alpha",
    "rc",
    "x",
}
_ALL_VERSIONS = re.compile(r"^\s*(?:all(?:[\s_]+(?:versions?|releases?))?|\*|any)\b[\s_]*", re.IGNORECASE)


def _split_version(text: str) -> tuple[str, str]:
    """``"V9.62 installed on CP150"`` → (``"V9.62"``, ``"installed on CP150"``): the version, then any condition."""
    words = _clean(text).split(" ")
    taken: list[str] = []
    for word in words:
        plain = word.strip("()").lower()
        if taken and not any(ch.isdigit() for ch in plain) and plain not in _VERSION_WORDS:
            break
        taken.append(word)
    version = " ".join(taken)
    condition = " ".join(words[len(taken) :])
    return version, condition


@lru_cache(maxsize=4096)
def parse_range(text: str) -> VersionRange:
    """A CSAF ``product_version_range`` name (or any vers-like range) as a :class:`VersionRange`. Never raises."""
    original = text
    body = text.strip()
    if body.lower().startswith("vers:"):
        body = body.split("/", 1)[1] if "/" in body else body[5:]
    spaced = _clean(body)
    everything = _ALL_VERSIONS.match(spaced)
    if everything and not _OPERATOR.match(spaced):
        condition = spaced[everything.end() :].strip()
        return VersionRange(original, (Interval(),), condition)
    constraints: list[tuple[str, str]] = []
    conditions: list[str] = []
    for piece in body.split("|"):
        parts = _OPERATOR.split(piece)
        if len(parts) == 1:  # a bare version: "1.32|1.33"
            version, condition = _split_version(piece)
            if version:
                constraints.append(("=", version))
            if condition:
                conditions.append(condition)
            continue
        for op, operand in zip(parts[1::2], parts[2::2], strict=False):
            version, condition = _split_version(operand)
            if version:
                constraints.append((op, version))
            if condition:
                conditions.append(condition)
    if not constraints or not any(any(ch.isdigit() for ch in v) for _, v in constraints):
        return VersionRange(original, (), _clean(body), unreadable=True)
    return VersionRange(original, _intervals(constraints), "; ".join(dict.fromkeys(conditions)))


def _intervals(constraints: list[tuple[str, str]]) -> tuple[Interval, ...]:
    """vers semantics: a lower bound pairs with the upper bound that follows it; ``=`` is one version."""
    out: list[Interval] = []
    lower: Bound | None = None
    excluded: list[str] = []
    for op, version in constraints:
        if op in (">", ">="):
            if lower is not None:
                out.append(Interval(lower, None))
            lower = Bound(version, op == ">=")
        elif op in ("<", "<="):
            out.append(Interval(lower, Bound(version, op == "<=")))
            lower = None
        elif op == "=":
            out.append(Interval(Bound(version, True), Bound(version, True)))
        elif op == "!=":
            excluded.append(version)
    if lower is not None:
        out.append(Interval(lower, None))
    if excluded and not out:
        # "!=1.2" alone: everything but those versions; split the line at each of them.
        out.append(Interval())
    if excluded:
        split: list[Interval] = []
        for interval in out:
            pieces = [interval]
            for version in excluded:
                next_pieces = []
                for p in pieces:
                    if p.contains(version) is Containment.INSIDE:
                        next_pieces += [
                            Interval(p.lower, Bound(version, False)),
                            Interval(Bound(version, False), p.upper),
                        ]
                    else:
                        next_pieces.append(p)
                pieces = next_pieces
            split += pieces
        out = split
    return tuple(out)


def cpe_range(
    version: str = "*",
    *,
    start_including: str | None = None,
    start_excluding: str | None = None,
    end_including: str | None = None,
    end_excluding: str | None = None,
) -> VersionRange:
    """An NVD-style CPE match (``cpe:2.3:…:<version>`` plus ``versionStart…``/``versionEnd…``) as a range."""
    if version not in ("*", "-", ""):
        return parse_range(f"={version}")
    lower = (
        Bound(start_including, True) if start_including else Bound(start_excluding, False) if start_excluding else None
    )
    upper = Bound(end_including, True) if end_including else Bound(end_excluding, False) if end_excluding else None
    interval = Interval(lower, upper)
    return VersionRange(interval.describe(), (interval,))


# -- plain text -----------------------------------------------------------------------------------------

_V = r"(?:v(?:er(?:sion)?)?\.?\s?)?\d+(?:[.\-]\d+)*(?:[a-z]\b)?(?:[.\-](?:r|p|sp|build|b)\d+)?"
_TEXT_RANGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?P<a>{_V})\s*(?:through|thru|up to and including|to|-|–)\s*(?P<b>{_V})\b", re.I), "between"),
    (
        re.compile(
            rf"\b(?:versions?\s+)?(?:before|prior\s+to|earlier\s+than|older\s+than|lower\s+than|below|"
            rf"up\s+to\s+but\s+not\s+including|<)\s*(?:version\s+)?(?P<a>{_V})\b",
            re.I,
        ),
        "before",
    ),
    (
        re.compile(rf"\b(?P<a>{_V})\s+(?:and|or)\s+(?:earlier|older|prior|below|lower)(?:\s+versions?)?\b", re.I),
        "upto",
    ),
    (re.compile(rf"\b(?:up\s+to(?:\s+and\s+including)?|through|<=)\s*(?:version\s+)?(?P<a>{_V})\b", re.I), "upto"),
    (
        re.compile(rf"\b(?P<a>{_V})\s+(?:and|or)\s+(?:later|newer|above|higher)(?:\s+versions?)?\b", re.I),
        "from",
    ),
]


def ranges_in_text(text: str) -> list[VersionRange]:
    """Version ranges a sentence states in words ("versions before 7.4.3", "7.2.0 through 7.2.10").

    Only forms with a range word are read: a bare "7.4" in prose is as likely a CVSS score or a
    date as a version, and reading it as "exactly 7.4" would turn unaffected versions into matches.
    """
    found: list[VersionRange] = []
    taken: list[tuple[int, int]] = []
    for pattern, shape in _TEXT_RANGES:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            a = _PREFIX.sub("", m["a"].strip())
            if shape == "between":
                b = _PREFIX.sub("", m["b"].strip())
                if compare_versions(a, b) not in (-1, 0) or "." not in a + b:
                    continue  # "2023-2024", "5 to 3": not a version span
                interval = Interval(Bound(a, True), Bound(b, True))
            elif shape == "before":
                interval = Interval(None, Bound(a, False))
            elif shape == "upto":
                interval = Interval(None, Bound(a, True))
            else:
                interval = Interval(Bound(a, True), None)
            taken.append(m.span())
            found.append(VersionRange(m.group(0), (interval,)))
    return found
