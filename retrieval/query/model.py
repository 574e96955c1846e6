"""What a question asks for, as filters: :class:`StructuredQuery`, its :class:`TimeWindow`, and the merge rule.

A thread's refinements ("only critical ones", "yesterday?") are parsed on their own and merged onto
the thread's question with :func:`merge_queries`; the rule lives beside the model it changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrieval.records import Kind, Severity


@dataclass(frozen=True)
class TimeWindow:
    """A half-open period ``[start, end)`` in the asker's zone; ``label`` says it back in words."""

    start: datetime
    end: datetime
    label: str

    @property
    def is_empty(self) -> bool:
        """True for a period entirely in the future ("June 2031"): nothing can have been published in it."""
        return self.end <= self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


@dataclass(frozen=True)
class StructuredQuery:
    """What a question asks for, as filters. Empty lists and None mean "no constraint"."""

    text: str
    until: datetime
    window: TimeWindow | None = None
    kinds: list[Kind] = field(default_factory=list)
    exploited: bool | None = None
    min_severity: Severity | None = None
    cves: list[str] = field(default_factory=list)
    has_cve: bool = False
    vendors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    exclude_terms: list[str] = field(default_factory=list)
    #: True when the kinds were written as an operator (``kind:outage``): then they exclude. Kinds read
    #: from words ("outage", "advisories") only rank, because sources file the same event differently.
    kinds_required: bool = False
    #: True when a CVE id was written as an operator (``cve:CVE-2024-1234``): then only records that name it
    #: answer. A plain id ("CVE-2024-1234 exploited?") also admits stories about the bug that never print it.
    cves_required: bool = False
    #: True when exploitation was written as an operator (``is:exploited``, ``exploited:yes``): then only
    #: exploited records answer. Read from words ("exploited yet?") it filters a question without a subject
    #: ("exploited bugs this week"); with a subject, a CVE too, it ranks (reports of exploitation first), since
    #: the honest answer may be "not yet".
    exploited_required: bool = False
    #: True when the severity was written as an operator (``severity:high``, ``cvss:9``): then it excludes.
    #: Read from words ("anything critical this month?") it filters a question without a subject ("critical
    #: advisories today?") and ranks one with a subject: news rarely states a severity, and sources rate alike
    #: bugs differently, so "intel and amd patch day - anything critical?" is no question about stated ratings.
    severity_required: bool = False
    #: ``"kev"`` when the question is about the KEV catalogue itself ("is CVE-… in KEV yet?"): only the
    #: catalogue's entries answer it, and an empty answer means "not in KEV as of now". ``"ics"`` when it
    #: asks for ICS advisories ("any new ICS advisories today?"): only records about industrial control
    #: systems answer it.
    catalogue: str | None = None
    #: Terms said as alternatives ("rosemount / ovation", "bluedelta or apt28"): a record that says one of a
    #: group says what the group asks for.
    alternatives: list[list[str]] = field(default_factory=list)

    def to_filters(self) -> dict[str, Any]:
        """A JSON-ready dict of every filter (enums as their values, datetimes as ISO strings)."""
        return {
            "window": self.window.to_dict() if self.window else None,
            "until": self.until.isoformat(),
            "kinds": [k.value for k in self.kinds],
            "exploited": self.exploited,
            "min_severity": self.min_severity.value if self.min_severity else None,
            "cves": list(self.cves),
            "has_cve": self.has_cve,
            "vendors": list(self.vendors),
            "products": list(self.products),
            "terms": list(self.terms),
            "exclude_terms": list(self.exclude_terms),
            "kinds_required": self.kinds_required,
            "cves_required": self.cves_required,
            "exploited_required": self.exploited_required,
            "catalogue": self.catalogue,
            "alternatives": [list(group) for group in self.alternatives],
        }


def has_topic(query: StructuredQuery) -> bool:
    """Whether a query names what it is about (a vendor, product, word or CVE), not only filters."""
    return bool(query.vendors or query.products or query.terms or query.cves)


def is_understood(query: StructuredQuery) -> bool:
    """Whether a question asks for anything the searcher can filter or rank on."""
    return bool(
        has_topic(query)
        or query.window
        or query.kinds
        or query.exploited is not None
        or query.min_severity
        or query.has_cve
    )


def merge_queries(base: StructuredQuery, change: StructuredQuery, *, narrow: bool = False) -> StructuredQuery:
    """``base`` with what ``change`` states replacing it: a window, severity, exploitation, kinds, topic.

    ``narrow`` ("only the Fortinet ones") adds the change's topic to the base's instead of replacing it.
    """
    updates: dict[str, Any] = {"text": f"{base.text} · {change.text}".strip(" ·")}
    if change.window is not None:
        updates["window"] = change.window
        updates["until"] = change.until
    if change.min_severity is not None:
        updates["min_severity"] = change.min_severity
        updates["severity_required"] = change.severity_required
    if change.exploited is not None:
        updates["exploited"] = change.exploited
        updates["exploited_required"] = change.exploited_required
    if change.kinds:
        updates["kinds"] = list(change.kinds)
        updates["kinds_required"] = change.kinds_required
    if change.catalogue:
        updates["catalogue"] = change.catalogue
    if change.cves or change.has_cve:
        updates["has_cve"] = change.has_cve or base.has_cve
    if has_topic(change):
        for name in ("vendors", "products", "terms", "cves", "alternatives"):
            value = list(getattr(change, name))
            updates[name] = list(dict.fromkeys([*getattr(base, name), *value])) if narrow else value
        updates["cves_required"] = change.cves_required or (narrow and base.cves_required)
    if change.exclude_terms:
        updates["exclude_terms"] = list(dict.fromkeys([*base.exclude_terms, *change.exclude_terms]))
    return dataclasses.replace(base, **updates)
