"""Does a record touch the stack? One verdict per stack entry the record names, with the reason.

* **affected** — the entry's version lies in a range the record states as affected;
* **possibly affected** — the product matches, but the record states no version, the entry has
  none, a version cannot be compared, or the range carries a condition ("only when installed on …");
* **not affected** — the entry's version lies outside every affected range, or is listed as fixed
  or not affected.

Products match through the vendor dictionary (record and entry names both canonicalised), or when
every word of the entry's product appears in the record's product name under the same vendor
("CPCI85" in "CPCI85 Central Processing/Communication"). A vendor-only entry ("Fortinet") is
possibly affected by anything naming the vendor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from retrieval.formats.kev import KEV_SOURCE
from retrieval.records import AffectedProduct, ProductStatus, ThreatRecord
from retrieval.stack.model import StackEntry
from retrieval.stack.resolve import cpe_parts
from retrieval.vendors import VendorDictionary
from retrieval.versions import Containment, VersionRange, cpe_range, parse_range, ranges_in_text

__all__ = ["StackMatcher", "Status", "Verdict", "stack_mark"]


class Status(StrEnum):
    AFFECTED = "affected"
    POSSIBLY_AFFECTED = "possibly_affected"
    NOT_AFFECTED = "not_affected"

    @property
    def rank(self) -> int:
        return {"affected": 2, "possibly_affected": 1, "not_affected": 0}[self.value]


@dataclass(frozen=True)
class Verdict:
    entry: StackEntry
    status: Status
    why: str
    fixed_in: str = ""

    @property
    def touches(self) -> bool:
        return self.status is not Status.NOT_AFFECTED

    def to_json(self) -> dict[str, str]:
        return {"entry": self.entry.label, "status": self.status.value, "why": self.why}

    def short(self) -> str:
        """ "FortiOS 7.2.5 (fixed in 7.2.8)", "PAN-OS 10.2.8 (possibly: no version stated)"."""
        notes = []
        if self.status is Status.POSSIBLY_AFFECTED:
            notes.append("possibly")
        if self.fixed_in:
            notes.append(f"fixed in {self.fixed_in}")
        return self.entry.label + (f" ({', '.join(notes)})" if notes else "")


def stack_mark(verdicts: Iterable[Verdict], limit: int = 3) -> str:
    """The line every answer and feed post carries: "⚠ affects your stack: FortiOS 7.2.5 (fixed in 7.2.8)"."""
    touching = sorted((v for v in verdicts if v.touches), key=lambda v: -v.status.rank)
    if not touching:
        return ""
    shown = ", ".join(v.short() for v in touching[:limit])
    more = f" and {len(touching) - limit} more" if len(touching) > limit else ""
    return f"⚠ affects your stack: {shown}{more}"


# -- names ----------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def _tokens(name: str) -> frozenset[str]:
    return frozenset(_WORD.findall(name.lower()))


@dataclass
class _Mention:
    vendor: str  # canonical where the dictionary knows it
    product: str
    statements: list[AffectedProduct] = field(default_factory=list)


@dataclass(frozen=True)
class _Indexed:
    entry: StackEntry
    vendor_key: str
    names: tuple[frozenset[str], ...]


class StackMatcher:
    """A stack ready to be matched against many records (indexes built once; 10,000 entries are fine)."""

    def __init__(self, entries: Sequence[StackEntry], dictionary: VendorDictionary | None = None) -> None:
        self.dictionary = dictionary or VendorDictionary.default()
        self.entries = list(entries)
        self._by_vendor: dict[str, list[_Indexed]] = {}
        self._by_token: dict[str, list[_Indexed]] = {}
        for entry in self.entries:
            vendor = self._vendor(entry.vendor)
            names = tuple(t for t in (_tokens(n) for n in (entry.product, *entry.aliases)) if t)
            indexed = _Indexed(entry, vendor.lower(), names)
            if not names:
                self._by_vendor.setdefault(vendor.lower(), []).append(indexed)
            for tokens in names:
                for token in tokens:
                    bucket = self._by_token.setdefault(token, [])
                    if not bucket or bucket[-1] is not indexed:
                        bucket.append(indexed)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _vendor(self, name: str) -> str:
        return (self.dictionary.canonical_vendor(name) or name) if name else ""

    # -- the verdicts ------------------------------------------------------------------------------

    def match(self, record: ThreatRecord) -> list[Verdict]:
        """Verdicts for every stack entry the record names, strongest first."""
        best: dict[int, tuple[bool, Verdict]] = {}
        for mention in self._mentions(record):
            structured = bool(mention.statements)
            for indexed in self._candidates(mention):
                if not self._same_product(indexed, mention):
                    continue
                verdict = self._judge(indexed.entry, mention, record)
                previous = best.get(indexed.entry.id)
                # An advisory's own statement about the product outranks a bare mention of its name.
                if (
                    previous is None
                    or (structured and not previous[0])
                    or (structured == previous[0] and verdict.status.rank > previous[1].status.rank)
                ):
                    best[indexed.entry.id] = (structured, verdict)
        vendors = record.vendors[:1] if record.source == KEV_SOURCE or record.affected else record.vendors
        for mention_vendor in {self._vendor(v).lower() for v in vendors}:
            for indexed in self._by_vendor.get(mention_vendor, ()):
                if indexed.entry.id not in best:
                    why = f"{_record_name(record)} names {indexed.entry.vendor}; the stack entry names no product"
                    best[indexed.entry.id] = (False, Verdict(indexed.entry, Status.POSSIBLY_AFFECTED, why))
        verdicts = [v for _, v in best.values()]
        verdicts.sort(key=lambda v: (-v.status.rank, v.entry.id))
        return verdicts

    def touching(self, record: ThreatRecord) -> list[Verdict]:
        return [v for v in self.match(record) if v.touches]

    def _mentions(self, record: ThreatRecord) -> list[_Mention]:
        mentions: dict[tuple[str, str], _Mention] = {}
        for statement in record.affected:
            vendor = self._vendor(statement.vendor) or (
                self._vendor(record.vendors[0]) if len(record.vendors) == 1 else ""
            )
            key = (vendor.lower(), statement.product.lower())
            mentions.setdefault(key, _Mention(vendor, statement.product)).statements.append(statement)
        if mentions:
            return list(mentions.values())  # an advisory's own product list, not names its prose happens to contain
        covered: set[str] = set()
        lone_vendor = self._vendor(record.vendors[0]) if len(record.vendors) == 1 else ""
        products = record.products
        if record.source == KEV_SOURCE and record.vendors and record.products:
            # A KEV entry states one vendor and product; the rest was found in its description by enrichment.
            lone_vendor, products = self._vendor(record.vendors[0]), record.products[:1]
        for product in products:
            if product.lower() in covered:
                continue
            canonical = self.dictionary.canonical_product(product)
            if canonical and lone_vendor and record.source == KEV_SOURCE and canonical[0] != lone_vendor:
                canonical = None  # KEV's product name under KEV's vendor, even when another vendor uses the word
            vendor, name = canonical if canonical else (lone_vendor, product)
            mentions.setdefault((vendor.lower(), name.lower()), _Mention(vendor, name))
        return list(mentions.values())

    def _candidates(self, mention: _Mention) -> list[_Indexed]:
        seen: dict[int, _Indexed] = {}
        for token in _tokens(mention.product):
            for indexed in self._by_token.get(token, ()):
                seen.setdefault(indexed.entry.id, indexed)
        return list(seen.values())

    def _same_product(self, indexed: _Indexed, mention: _Mention) -> bool:
        mention_vendor = mention.vendor.lower()
        if indexed.vendor_key and mention_vendor and indexed.vendor_key != mention_vendor:
            return False
        mention_tokens = _tokens(mention.product)
        if any(tokens == mention_tokens for tokens in indexed.names):
            return True
        if not (indexed.vendor_key and indexed.vendor_key == mention_vendor):
            return False  # partial names need the vendor to agree: "is-windows" is not Microsoft Windows
        # Every word of the entry in the record's longer name ("CPCI85" in "CPCI85 Central Processing/…"); never the
        # reverse: "log4j-to-slf4j" contains "Log4j" but is another component.
        return any(tokens <= mention_tokens for tokens in indexed.names)

    def _judge(self, entry: StackEntry, mention: _Mention, record: ThreatRecord) -> Verdict:
        name = (
            f"{mention.vendor} {mention.product}".strip()
            if mention.vendor and not mention.product.lower().startswith(mention.vendor.lower())
            else mention.product
        )
        where = _record_name(record)
        if mention.statements:
            return _judge_statements(entry, name, where, mention.statements)
        ranges, fixed = _text_ranges(record, [mention.product, entry.product, *entry.aliases])
        if not ranges:
            why = f"{where} names {name} but states no affected versions"
            return Verdict(entry, Status.POSSIBLY_AFFECTED, why, fixed)
        stated = ", ".join(r.describe() for r in ranges)
        if not entry.version:
            return Verdict(
                entry,
                Status.POSSIBLY_AFFECTED,
                f"{where} says {stated} affected; the stack entry has no version",
                fixed,
            )
        return _judge_ranges(entry, ranges, where, stated, fixed)


def _record_name(record: ThreatRecord) -> str:
    if record.id.startswith("csaf:"):
        return record.id.removeprefix("csaf:")
    if record.id.startswith("kev:"):
        return f"KEV {record.id.removeprefix('kev:')}"
    return record.source or "the record"


def _judge_statements(entry: StackEntry, name: str, where: str, statements: list[AffectedProduct]) -> Verdict:
    fixed_in = next((v for s in statements for v in s.fixed_in), "")
    if not fixed_in:
        fixed_in = next((v for s in statements if s.status is ProductStatus.FIXED for v in s.versions), "")
    affected = [s for s in statements if s.status in (ProductStatus.KNOWN_AFFECTED, ProductStatus.UNDER_INVESTIGATION)]
    if not entry.version:
        listed = ", ".join(v for s in affected for v in s.versions) or "unstated versions"
        return Verdict(
            entry,
            Status.POSSIBLY_AFFECTED,
            f"{where} lists {name} {listed} as affected; the stack entry has no version",
            fixed_in,
        )
    for statement in statements:
        if statement.status in (ProductStatus.FIXED, ProductStatus.KNOWN_NOT_AFFECTED):
            for text in statement.versions:
                if parse_range(text).contains(entry.version) is Containment.INSIDE:
                    said = "fixed" if statement.status is ProductStatus.FIXED else "not affected"
                    return Verdict(entry, Status.NOT_AFFECTED, f"{where} lists {name} {text} as {said}", fixed_in)
    if not affected:
        listed = ", ".join(v for s in statements for v in s.versions) or "no versions"
        return Verdict(
            entry,
            Status.POSSIBLY_AFFECTED,
            f"{where} lists only fixed or unaffected versions of {name} ({listed})",
            fixed_in,
        )
    ranges: list[VersionRange] = []
    for statement in affected:
        found = [parse_range(text) for text in statement.versions] or _cpe_version(statement)
        if not found:
            why = f"{where} lists {name} as affected without stating versions"
            return Verdict(entry, Status.POSSIBLY_AFFECTED, why, fixed_in)
        ranges += found
    return _judge_ranges(entry, ranges, where, ", ".join(r.text for r in ranges), fixed_in)


def _cpe_version(statement: AffectedProduct) -> list[VersionRange]:
    """The version a product's CPE names (``cpe:2.3:o:vendor:product:5.30:…``), when the advisory gives only that."""
    if not statement.cpe:
        return []
    parts = cpe_parts(statement.cpe)
    if parts is None or parts[2] in ("*", "-", ""):
        return []
    return [cpe_range(parts[2])]


def _judge_ranges(entry: StackEntry, ranges: list[VersionRange], where: str, stated: str, fixed_in: str) -> Verdict:
    version = entry.version
    unknown: list[VersionRange] = []
    for found in ranges:
        inside = found.contains(version)
        if inside is Containment.INSIDE:
            if found.condition:
                why = f"{version} is in {where}'s affected range {found.text}, which applies only {found.condition}"
                return Verdict(entry, Status.POSSIBLY_AFFECTED, why, fixed_in)
            return Verdict(entry, Status.AFFECTED, f"{version} is in {where}'s affected range {found.text}", fixed_in)
        if inside is Containment.UNKNOWN:
            unknown.append(found)
    if unknown:
        why = f"{version} cannot be compared with {where}'s affected range {unknown[0].text}"
        return Verdict(entry, Status.POSSIBLY_AFFECTED, why, fixed_in)
    return Verdict(entry, Status.NOT_AFFECTED, f"{version} is outside {where}'s affected range(s) {stated}", fixed_in)


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_FIXED_IN = re.compile(
    r"\b(?:fixed|patched|resolved|addressed)\s+in\s+(?:version\s+)?(?P<v>v?\d+(?:\.\d+)+)|"
    r"\b(?:upgrade|update)\s+to\s+(?:version\s+)?(?P<u>v?\d+(?:\.\d+)+)",
    re.IGNORECASE,
)


def _text_ranges(record: ThreatRecord, names: Sequence[str]) -> tuple[list[VersionRange], str]:
    """Ranges stated in words in the sentences that name the product, and a "fixed in" version if any."""
    keys = [n.lower() for n in names if n and len(n) >= 3]
    text = "\n".join(p for p in (record.title, record.summary, (record.body or "")[:20000]) if p)
    ranges: list[VersionRange] = []
    fixed = ""
    for sentence in _SENTENCE.split(text):
        lowered = sentence.lower()
        if not any(key in lowered for key in keys):
            continue
        ranges += ranges_in_text(sentence)
        if not fixed and (m := _FIXED_IN.search(sentence)):
            fixed = m["v"] or m["u"]
    if ranges and not fixed and (m := _FIXED_IN.search(text)):
        fixed = m["v"] or m["u"]  # "…through 7.2.10; it is fixed in 7.2.11": the fix sentence need not repeat the name
    return ranges, fixed
