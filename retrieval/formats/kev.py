"""The CISA Known Exploited Vulnerabilities catalog: one record per CVE.

Severity is left ``unknown``: KEV states no CVSS score and no severity, and threatbot sets severity
only where a source states it. "Exploited" is the fact KEV does state (``exploited=True``), and that
is what ranking and alerts should key on, rather than a guessed "high" that would blur the
difference between a scored critical and an unscored entry.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from retrieval.formats import ParsedSource, item_problem
from retrieval.records import Kind, ThreatRecord

__all__ = ["KEV_SOURCE", "is_kev_catalog", "kev_record", "parse_kev"]

KEV_SOURCE = "CISA KEV"
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$", re.IGNORECASE)
#: KEV's product field sometimes names a category ("Multiple Products", "Multiple Routers"), not a product.
_PRODUCT_PLACEHOLDER = re.compile(r"^(?:multiple\b|unknown$|n/?a$)", re.IGNORECASE)


def is_kev_catalog(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list) and "catalogVersion" in data


def parse_kev(data: dict[str, Any], *, origin: str) -> ParsedSource:
    """All entries of a KEV catalog document; a malformed entry is reported by index and CVE."""
    vulns = data["vulnerabilities"]
    result = ParsedSource(format="kev", feed_title=data.get("title") or "CISA Known Exploited Vulnerabilities")
    declared = data.get("count")
    if isinstance(declared, int) and declared != len(vulns):
        result.errors.append(f"{origin}: catalog declares count={declared} but lists {len(vulns)} entries")
    for index, item in enumerate(vulns):
        try:
            result.records.append(kev_record(item))
        except Exception as exc:  # one bad entry costs one record, whatever it trips over
            cve = item.get("cveID") if isinstance(item, dict) else None
            label = f" ({str(cve)[:40]})" if cve else ""
            result.errors.append(f"{origin} vulnerabilities[{index}]{label}: {item_problem(exc)}")
    return result


def kev_record(item: dict[str, Any]) -> ThreatRecord:
    """One KEV entry as a record; raises ValueError when it lacks a CVE, a name or a valid dateAdded."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {type(item).__name__}")
    cve = str(item.get("cveID") or "").strip().upper()
    if not _CVE.match(cve):
        raise ValueError(f"invalid or missing cveID {cve!r}")
    name = " ".join(str(item.get("vulnerabilityName") or "").split())
    if not name:
        raise ValueError("no vulnerabilityName")
    try:
        added = date.fromisoformat(str(item.get("dateAdded") or "")[:10])
    except ValueError as exc:
        raise ValueError(f"invalid dateAdded {item.get('dateAdded')!r}") from exc
    vendor = _text(item.get("vendorProject"))
    product = _text(item.get("product"))
    action = _text(item.get("requiredAction"))
    due = _text(item.get("dueDate"))
    ransomware = _text(item.get("knownRansomwareCampaignUse")) or "Unknown"
    cwes = [c for c in (_text(c) for c in item.get("cwes") or []) if c]
    notes = _text(item.get("notes"))

    body = [f"Added to the CISA Known Exploited Vulnerabilities catalog on {added.isoformat()}."]
    body.append(f"Known ransomware campaign use: {ransomware}.")
    if action:
        body.append(f"Required action: {action}")
    if due:
        body.append(f"Due date: {due}.")
    if cwes:
        body.append(f"CWE: {', '.join(cwes)}.")
    if notes:
        body.append(f"Notes: {notes}")
    mitigation = action
    if due:
        mitigation = f"{action} (BOD 22-01 due date: {due})" if action else f"BOD 22-01 due date: {due}"

    try:
        return ThreatRecord(
            id=f"kev:{cve}",
            title=f"{name} ({cve})",
            published=datetime(added.year, added.month, added.day, tzinfo=UTC),
            summary=_text(item.get("shortDescription")),
            body=" ".join(body),
            url=f"https://nvd.nist.gov/vuln/detail/{cve}",
            source=KEV_SOURCE,
            kind=Kind.VULNERABILITY,
            exploited=True,
            cves=[cve],
            vendors=[vendor] if vendor else [],
            products=[product] if product and not _PRODUCT_PLACEHOLDER.match(product) else [],
            tags=(["ransomware"] if ransomware.lower() == "known" else []) + cwes,
            mitigation=mitigation or None,
        )
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""
