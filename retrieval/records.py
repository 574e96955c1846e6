"""The canonical threat record: the one shape every source is turned into.

JSON and JSONL in exactly these field names are both an input format and the
output of ``threatbot export``, so the field names here are a public contract.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Kind(StrEnum):
    OUTAGE = "outage"
    VULNERABILITY = "vulnerability"
    BREACH = "breach"
    RANSOMWARE = "ransomware"
    MALWARE = "malware"
    ADVISORY = "advisory"
    OTHER = "other"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Orderable strength: unknown < low < medium < high < critical."""
        return _SEVERITY_RANK[self]

    @classmethod
    def from_cvss(cls, score: float) -> Severity:
        """CVSS v3/v4 qualitative bands: 0.1-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical."""
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        return cls.LOW if score > 0.0 else cls.UNKNOWN


_SEVERITY_RANK = {
    Severity.UNKNOWN: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}

#: Query parameters that only track the reader; two URLs differing in these are one page.
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi|mkt_tok|ref|ref_src|"
    r"ftag|cmpid|source|sr_share|igshid|yclid|spm|__twitter_impression|pk_\w+|mtm_\w+|at_\w+)$",
    re.IGNORECASE,
)


def canonical_url(url: str) -> str:
    """The URL that identifies a page: tracking parameters, fragments and noise removed.

    ZDNet appends ``#ftag=RSS…``, newsletters add ``utm_*``; the same article
    must still be the same record.
    """
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    scheme = parts.scheme.lower() or "https"
    if scheme == "http":
        scheme = "https"  # the same page served over both schemes is one page
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    netloc = host if parts.port in (None, 80, 443) else f"{host}:{parts.port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((scheme, netloc, path, urlencode(sorted(query)), ""))


def derive_id(*, url: str | None, source: str | None, title: str | None) -> str:
    """A stable id for a record that came without one: from its URL, else source and title."""
    if url:
        basis = "url:" + canonical_url(url)
    else:
        basis = "st:" + (source or "").strip().lower() + "\n" + " ".join((title or "").lower().split())
    return "tb:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()[:16]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # A date without a zone is taken as UTC: the only reading that does not depend on where we run.
        return value.replace(tzinfo=UTC)
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProductStatus(StrEnum):
    """CSAF's product status groups, in the words an advisory uses for one product and its CVEs."""

    KNOWN_AFFECTED = "known_affected"
    FIXED = "fixed"
    KNOWN_NOT_AFFECTED = "known_not_affected"
    UNDER_INVESTIGATION = "under_investigation"
    RECOMMENDED = "recommended"


class AffectedProduct(BaseModel):
    """One product (at stated versions) an advisory speaks about, and what it says of it.

    ``versions`` are the advisory's own version or range strings (CSAF ``product_version_range``
    such as ``<V5.40``, or ``product_version`` such as ``2.1.0.10``), kept as written so that
    :mod:`retrieval.versions` can read them at match time and export → ingest is lossless.
    ``fixed_in`` are the versions a vendor fix names ("Update to V5.40 or later version").
    """

    model_config = ConfigDict(extra="ignore")

    vendor: str = ""
    product: str
    versions: list[str] = Field(default_factory=list)
    status: ProductStatus = ProductStatus.KNOWN_AFFECTED
    cves: list[str] = Field(default_factory=list)
    remediations: list[str] = Field(default_factory=list)
    fixed_in: list[str] = Field(default_factory=list)
    cpe: str | None = None
    purl: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        text = str(value or "known_affected").strip().lower()
        # CSAF's finer groups fold into the three that decide a match.
        return {
            "first_affected": "known_affected",
            "last_affected": "known_affected",
            "first_fixed": "fixed",
        }.get(text, text)


#: No security story threatbot handles predates this; an earlier date is a parsing accident or an attack.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
#: Clocks and time zones disagree a little; a story dated further ahead than this is not real.
FUTURE_SLACK = timedelta(days=2)
#: Validation context for records read back from storage: they were vetted when they came in, and a
#: record stored by an older threatbot must stay readable (and deletable) even if it is implausible.
STORED: dict[str, Any] = {"stored": True}
#: Validation context for a record parsed from the JSON the store wrote: its text was scrubbed and its lists
#: normalised on the way in, so only the parse remains (search parses thousands a question; 21 -> 13 us each).
FROM_STORE: dict[str, Any] = {"stored": True, "normalised": True}


def implausible_date(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why ``value`` cannot be a real story's date, or None when it lies in 1990 .. now + 2 days."""
    latest = (now or utcnow()) + FUTURE_SLACK
    try:
        in_range = EARLIEST_PLAUSIBLE <= value <= latest
    except OverflowError:  # an aware date at the edge of datetime's range (9999-12-31T23:59-14:00)
        in_range = False
    if in_range:
        return None
    return (
        f"{value.isoformat()} is outside the plausible range "
        f"{EARLIEST_PLAUSIBLE:%Y-%m-%d} to {latest:%Y-%m-%d} (now + {FUTURE_SLACK.days} days)"
    )


_SURROGATES = re.compile("[\ud800-\udfff]")


def scrub_text(value: str) -> str:
    """``value`` with lone surrogates (from ``\\ud800`` in JSON or ``&#xD800;`` in XML) replaced by U+FFFD.

    They cannot be encoded as UTF-8, so SQLite, the tokenizer and every chat platform would fail on them.
    """
    if value.isascii() or not _SURROGATES.search(value):
        return value
    return _SURROGATES.sub("\ufffd", value)


class ThreatRecord(BaseModel):
    """One security story, advisory, vulnerability or outage, as threatbot knows it."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False, use_enum_values=False)

    id: str = ""
    title: str
    published: datetime
    summary: str = ""
    body: str | None = None
    url: str = ""
    source: str = ""
    kind: Kind = Kind.OTHER
    exploited: bool = False
    severity: Severity = Severity.UNKNOWN
    cves: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    impact: str | None = None
    mitigation: str | None = None
    fetched_at: datetime | None = None
    updated_at: datetime | None = None
    cluster_id: str | None = None
    #: Per product, the versions an advisory states and their status (CSAF); empty for news.
    affected: list[AffectedProduct] = Field(default_factory=list)

    @field_validator("*", mode="before")
    @classmethod
    def _no_lone_surrogates(cls, value: Any, info: ValidationInfo) -> Any:
        if _normalised(info):
            return value  # scrubbed when it came in: search parses thousands of stored records a question
        if isinstance(value, str):
            return scrub_text(value)
        if isinstance(value, list):
            return [scrub_text(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("title")
    @classmethod
    def _title_present(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("a record needs a title")
        return value

    @field_validator("published", "fetched_at", "updated_at")
    @classmethod
    def _aware(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        if not (info.context or {}).get("stored"):
            problem = implausible_date(value)
            if problem:
                raise ValueError(f"{info.field_name} {problem}")
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        if value is None or value == "":
            return Kind.OTHER
        return str(value).strip().lower()

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if value is None or value == "":
            return Severity.UNKNOWN
        value = str(value).strip().lower()
        return {"moderate": "medium", "important": "high", "none": "low", "info": "low"}.get(value, value)

    @field_validator("cves", mode="before")
    @classmethod
    def _cves(cls, value: Any, info: ValidationInfo) -> Any:
        if _normalised(info) and isinstance(value, list):
            return value
        if isinstance(value, str):  # "CVE-2024-1, CVE-2024-2" given as one string, not a list
            value = re.split(r"[\s,;]+", value)
        return _dedupe([str(v).strip().upper() for v in (value or []) if str(v).strip()])

    @field_validator("vendors", "products", "countries", "tags", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Any:
        if _normalised(info) and isinstance(value, list):
            return value
        if isinstance(value, str):
            value = [value]
        return _dedupe([" ".join(str(v).split()) for v in (value or []) if str(v).strip()])

    @model_validator(mode="after")
    def _fill_id(self) -> ThreatRecord:
        if not self.id:
            self.id = derive_id(url=self.url, source=self.source, title=self.title)
        return self

    # -- conveniences -------------------------------------------------------------------------

    @property
    def canonical_url(self) -> str:
        return canonical_url(self.url) if self.url else ""

    def text_for_embedding(self) -> str:
        """What the embedding sees: the headline facts first, since the model reads 256 tokens."""
        parts = [self.title, self.summary or ""]
        if self.body and len(self.summary or "") < 200:
            parts.append(self.body[:1000])
        return "\n".join(p for p in parts if p).strip()

    def to_json_dict(self) -> dict[str, Any]:
        """The export form: every field, ISO dates, enum values as strings."""
        return self.model_dump(mode="json")


def _normalised(info: ValidationInfo) -> bool:
    """Whether the values are a stored record's own, normalised when it came in (``FROM_STORE``)."""
    return bool((info.context or {}).get("normalised"))


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.lower()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


#: Fields that say how we hold a record, not what the record says.
BOOKKEEPING_FIELDS = frozenset({"fetched_at", "updated_at", "cluster_id"})


def merge_records(existing: ThreatRecord, incoming: ThreatRecord) -> ThreatRecord:
    """The record after ``incoming`` arrives for a story we already hold.

    The incoming version wins where it says something; it never erases what we knew
    (an empty summary does not blank a full one), ``exploited`` never flips back to False,
    severity only moves off ``unknown`` or to a value the source states, and lists are unioned.
    The id, first-seen time and cluster stay those of the existing record.
    """
    merged = existing.model_dump()
    for name, value in incoming.model_dump().items():
        if name in BOOKKEEPING_FIELDS or name == "id":
            continue
        current = merged[name]
        if name == "affected":
            merged[name] = value or current  # the newer advisory revision states the whole product list
        elif isinstance(current, list):
            merged[name] = _dedupe([*current, *value])
        elif name == "exploited":
            merged[name] = bool(current or value)
        elif name == "severity":
            merged[name] = current if value == Severity.UNKNOWN else value
        elif name == "kind":
            merged[name] = current if value == Kind.OTHER else value
        elif value not in (None, ""):
            merged[name] = value
    return ThreatRecord.model_validate(merged, context=STORED)


def content_equal(a: ThreatRecord, b: ThreatRecord) -> bool:
    """Whether two versions say the same thing (bookkeeping aside)."""
    return a.model_dump(exclude=set(BOOKKEEPING_FIELDS)) == b.model_dump(exclude=set(BOOKKEEPING_FIELDS))
