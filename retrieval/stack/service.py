"""The stack as the rest of threatbot uses it: add, remove, import, and the questions asked of it.

Everything here reads the record store's database (records by window, by CVE, from KEV, through
``retrieval.record_queries``)
and keeps one :class:`~retrieval.stack.matching.StackMatcher` per scope, rebuilt only when that
scope's stack changes, so marking every answer costs a few dictionary look-ups per story.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from retrieval.database import Database
from retrieval.formats.kev import KEV_SOURCE
from retrieval.record_queries import (
    records_from_source,
    records_naming_cve,
    records_published_between,
    serious_records_between,
)
from retrieval.records import Severity, ThreatRecord
from retrieval.stack.book import AddReport, StackBook
from retrieval.stack.importers import parse_stack_file
from retrieval.stack.matching import StackMatcher, Verdict
from retrieval.stack.model import StackEntry
from retrieval.stack.resolve import Resolved, resolve_component, resolve_text
from retrieval.vendors import VendorDictionary

__all__ = ["Exposure", "ExposureReport", "ImportReport", "StackService"]

#: How far back "critical or high advisories" reach in the exposure report.
REPORT_DAYS = 30


@dataclass
class ImportReport:
    format: str
    read: int
    added: AddReport
    #: Components the vendor dictionary does not know (kept as stated; matched by exact name).
    unknown: int = 0


@dataclass
class Exposure:
    """One record that touches the stack, and how."""

    record: ThreatRecord
    verdicts: list[Verdict]

    def to_json(self) -> dict[str, object]:
        r = self.record
        return {
            "id": r.id,
            "title": r.title,
            "url": r.url,
            "published": r.published.isoformat(),
            "severity": r.severity.value,
            "exploited": r.exploited,
            "cves": r.cves,
            "stack": [v.to_json() for v in self.verdicts],
        }


@dataclass
class ExposureReport:
    scope: str
    entries: int
    kev: list[Exposure] = field(default_factory=list)
    advisories: list[Exposure] = field(default_factory=list)
    since: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "entries": self.entries,
            "since": self.since.isoformat() if self.since else None,
            "kev": [e.to_json() for e in self.kev],
            "advisories": [e.to_json() for e in self.advisories],
        }

    def lines(self, limit: int = 15) -> list[str]:
        """The report in plain text (chat and the terminal)."""
        out = [f"Exposure report for stack `{self.scope}` ({self.entries} entries):"]
        out.append(
            f"*In CISA KEV* ({len(self.kev)}):"
            if self.kev
            else "*In CISA KEV*: nothing in the stack matches a KEV entry."
        )
        out += [_exposure_line(e) for e in self.kev[:limit]]
        if len(self.kev) > limit:
            out.append(f"  … and {len(self.kev) - limit} more (`threatbot stack report --json` lists all)")
        since = f" since {self.since:%Y-%m-%d}" if self.since else ""
        if self.advisories:
            out.append(f"*Critical or high advisories{since}* ({len(self.advisories)}):")
            out += [_exposure_line(e) for e in self.advisories[:limit]]
            if len(self.advisories) > limit:
                out.append(f"  … and {len(self.advisories) - limit} more")
        else:
            out.append(f"*Critical or high advisories{since}*: none touch the stack.")
        return out


def _exposure_line(exposure: Exposure) -> str:
    record = exposure.record
    flags = [record.severity.value] if record.severity is not Severity.UNKNOWN else []
    if record.exploited:
        flags.append("exploited")
    touched = "; ".join(f"{v.entry.label}: {v.status.value.replace('_', ' ')} — {v.why}" for v in exposure.verdicts[:3])
    link = f" <{record.url}>" if record.url else ""
    return f"• *{record.title}*{' [' + '/'.join(flags) + ']' if flags else ''}{link}\n   {touched}"


class StackService:
    """Stack book + matching over one database."""

    def __init__(self, db: Database, dictionary: VendorDictionary | None = None) -> None:
        self.db = db
        self.book = StackBook(db)
        self.dictionary = dictionary or VendorDictionary.default()
        self._matchers: dict[str, tuple[tuple[int, int], StackMatcher]] = {}
        self._lock = threading.Lock()

    # -- changing the stack --------------------------------------------------------------------------

    def add_text(self, scope: str, text: str, *, origin: str = "typed") -> tuple[StackEntry, bool]:
        """Add one typed entry; raises :class:`~retrieval.stack.resolve.UnknownName` for a name nobody knows."""
        resolved = resolve_text(text, self.dictionary)
        return self.book.add(scope, resolved, origin=origin)

    def remove(self, scope: str, entry_id: int) -> StackEntry | None:
        return self.book.remove(scope, entry_id)

    def import_file(self, scope: str, path: str | Path) -> ImportReport:
        """Read, resolve and store a whole file in one transaction; raises StackFileError before writing anything."""
        fmt, components = parse_stack_file(path)
        resolved: list[Resolved] = [resolve_component(c, self.dictionary) for c in components]
        report = self.book.add_many(scope, resolved, origin=f"import:{Path(path).name}", return_entries=False)
        return ImportReport(fmt, len(components), report, unknown=sum(1 for r in resolved if not r.known))

    def entries(self, scope: str) -> list[StackEntry]:
        return self.book.entries(scope)

    def has_stack(self, scope: str) -> bool:
        return self.book.count(scope) > 0

    # -- matching ------------------------------------------------------------------------------------

    def matcher(self, scope: str) -> StackMatcher:
        key = self.book.version_key(scope)
        with self._lock:
            cached = self._matchers.get(scope)
            if cached is not None and cached[0] == key:
                return cached[1]
        matcher = StackMatcher(self.book.entries(scope), self.dictionary)
        with self._lock:
            self._matchers[scope] = (key, matcher)
        return matcher

    def verdicts(self, scope: str, record: ThreatRecord) -> list[Verdict]:
        return self.matcher(scope).match(record)

    def exposures(self, scope: str, records: Sequence[ThreatRecord]) -> list[Exposure]:
        """The records that touch the stack (affected or possibly), most serious first."""
        matcher = self.matcher(scope)
        if not matcher:
            return []
        found = []
        for record in records:
            touching = matcher.touching(record)
            if touching:
                found.append(Exposure(record, touching))
        found.sort(key=_seriousness, reverse=True)
        return found

    # -- the questions -------------------------------------------------------------------------------

    def in_window(self, scope: str, start: datetime, end: datetime) -> list[Exposure]:
        """ "Does anything today affect us?": records published in [start, end) that touch the stack."""
        return self.exposures(scope, records_published_between(self.db, start.timestamp(), end.timestamp()))

    def for_cve(
        self, scope: str, cve: str, *, until: datetime | None = None
    ) -> tuple[list[ThreatRecord], list[Exposure]]:
        """Are we exposed to CVE-…? Every record about the CVE (published by ``until``), and those touching the stack."""
        records = records_naming_cve(self.db, cve.upper(), until=_until(until))
        return records, self.exposures(scope, records)

    def in_kev(self, scope: str, *, until: datetime | None = None) -> list[Exposure]:
        """What in our stack is in KEV (as the catalog stood at ``until``, default now)?"""
        return self.exposures(scope, records_from_source(self.db, KEV_SOURCE, until=_until(until)))

    def report(self, scope: str, *, now: datetime, days: int = REPORT_DAYS) -> ExposureReport:
        """KEV matches, and critical/high records of the last ``days`` days that touch the stack."""
        since = now - timedelta(days=days)
        serious = serious_records_between(
            self.db,
            since.timestamp(),
            now.timestamp(),
            min_severity_rank=Severity.HIGH.rank,
            excluding_source=KEV_SOURCE,
        )
        advisories = self.exposures(scope, serious)
        return ExposureReport(scope, self.book.count(scope), self.in_kev(scope, until=now), advisories, since)


def _until(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else float("inf")


def _seriousness(exposure: Exposure) -> tuple[int, int, int, float]:
    record = exposure.record
    status = max(v.status.rank for v in exposure.verdicts)
    return (status, int(record.exploited), record.severity.rank, record.published.timestamp())
