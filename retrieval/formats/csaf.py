"""OASIS CSAF 2.0 advisories and the ROLIE feeds that index them.

A CSAF document becomes one record: its title, summary notes, CVEs, the highest CVSS base score as
severity, its vendors and products from the product tree, and per product the advisory's version
range or version with the status it has (``known_affected`` / ``fixed`` / ``known_not_affected``)
and the remediations that apply to it (:class:`~retrieval.records.AffectedProduct`).

A ROLIE feed (JSON, ``{"feed": {"entry": [...]}}``) carries no advisories itself, only links to
them; :func:`rolie_links` lists them, and the ingestor fetches each through the guarded fetcher.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from retrieval.formats import ParsedSource
from retrieval.records import AffectedProduct, Kind, Severity, ThreatRecord

__all__ = ["csaf_record", "is_csaf", "is_rolie", "parse_csaf", "rolie_links"]

_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$", re.IGNORECASE)
#: "Update to V5.40 or later version", "Upgrade to version 2.3.1", "fixed in 7.2.8".
_FIX_VERSION = re.compile(
    r"\b(?:update|upgrade|updated|upgraded|fixed|install|migrate|move)\s+(?:\w+\s+){0,3}?(?:to|in)\s+"
    r"(?:the\s+)?(?:firmware\s+|software\s+)?(?:version\s+|ver\.?\s*)?(?P<v>v?\d+(?:[._-]\d+)*(?:[\s_](?:update|sp)[\s_]?\d+)?)",
    re.IGNORECASE,
)
_BODY_LIMIT = 6000
_STATUS_GROUPS = (
    "known_affected",
    "first_affected",
    "last_affected",
    "fixed",
    "first_fixed",
    "known_not_affected",
    "under_investigation",
    "recommended",
)


def is_csaf(data: Any) -> bool:
    document = data.get("document") if isinstance(data, dict) else None
    return isinstance(document, dict) and "csaf_version" in document and isinstance(document.get("tracking"), dict)


def is_rolie(data: Any) -> bool:
    feed = data.get("feed") if isinstance(data, dict) else None
    return isinstance(feed, dict) and isinstance(feed.get("entry"), list)


def rolie_links(data: dict[str, Any], *, origin: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The CSAF document URLs a ROLIE feed lists (``content.src``, else the ``self`` link), problems, and
    per document the URL of its published checksum (a ``hash`` link: ``….json.sha512``), to verify it by.
    """
    links: list[str] = []
    errors: list[str] = []
    digests: dict[str, str] = {}
    for index, entry in enumerate(data["feed"]["entry"]):
        if not isinstance(entry, dict):
            errors.append(f"{origin} entry[{index}]: not an object")
            continue
        content = entry.get("content")
        entry_links = [link for link in entry.get("link") or [] if isinstance(link, dict) and link.get("href")]
        url = content.get("src") if isinstance(content, dict) else None
        if not url:
            url = next((link["href"] for link in entry_links if link.get("rel") == "self"), None)
        if not isinstance(url, str) or not url.strip():
            errors.append(f"{origin} entry[{index}] ({entry.get('id', '?')}): no document link")
            continue
        links.append(url.strip())
        # CSAF 2.0 §7.1.18 names the relation "hash"; CISA's feeds spell the key "ref".
        digest = next((link["href"] for link in entry_links if "hash" in (link.get("rel"), link.get("ref"))), None)
        if isinstance(digest, str) and digest.strip():
            digests[url.strip()] = digest.strip()
    return list(dict.fromkeys(links)), errors, digests


#: Ends the source name of every CSAF record ("CISA CSAF"): how a reader tells an advisory's records apart.
SOURCE_SUFFIX = " CSAF"


def parse_csaf(data: dict[str, Any], *, origin: str) -> ParsedSource:
    """One CSAF document as a one-record source; a document that cannot be read is an error, not a crash."""
    result = ParsedSource(format="csaf", feed_title=_publisher(data) + SOURCE_SUFFIX)
    try:
        result.records.append(csaf_record(data))
    except ValueError as exc:
        result.errors.append(f"{origin}: {exc}")
    return result


def csaf_record(data: dict[str, Any]) -> ThreatRecord:
    """The record for one CSAF document; raises ValueError naming the field that is missing or wrong."""
    document = data["document"]
    tracking = document["tracking"]
    tracking_id = _text(tracking.get("id"))
    if not tracking_id:
        raise ValueError("document.tracking.id is missing")
    title = _text(document.get("title"))
    if not title:
        raise ValueError("document.title is missing")
    published = _date(tracking.get("initial_release_date") or tracking.get("current_release_date"))
    if published is None:
        raise ValueError(
            f"document.tracking.initial_release_date is not a date: {tracking.get('initial_release_date')!r}"
        )

    products = _products(data.get("product_tree") or {})
    vulnerabilities = [v for v in data.get("vulnerabilities") or [] if isinstance(v, dict)]
    cves = [_text(v.get("cve")).upper() for v in vulnerabilities if _CVE.match(_text(v.get("cve")))]
    affected = _affected(products, vulnerabilities)
    notes = [n for n in document.get("notes") or [] if isinstance(n, dict)]
    summary = next((_text(n.get("text")) for n in notes if n.get("category") == "summary"), "")
    body_parts = [_text(n.get("text")) for n in notes if n.get("category") in ("summary", "description", "details")]
    for vulnerability in vulnerabilities:
        for note in vulnerability.get("notes") or []:
            if isinstance(note, dict) and note.get("category") in ("description", "summary"):
                body_parts.append(f"{_text(vulnerability.get('cve'))}: {_text(note.get('text'))}".strip(": "))
    body = "\n".join(dict.fromkeys(p for p in body_parts if p))[:_BODY_LIMIT]
    exploited = any(
        isinstance(t, dict) and t.get("category") == "exploit_status" and "known" in _text(t.get("details")).lower()
        for v in vulnerabilities
        for t in v.get("threats") or []
    )
    vendors = list(dict.fromkeys(p["vendor"] for p in products.values() if p["vendor"]))
    names = list(dict.fromkeys(p["product"] for p in products.values() if p["product"]))
    try:
        return ThreatRecord(
            id=f"csaf:{tracking_id}",
            title=title,
            published=published,
            summary=summary or title,
            body=body or None,
            url=_self_url(document),
            source=_publisher(data) + SOURCE_SUFFIX,
            kind=Kind.VULNERABILITY if cves else Kind.ADVISORY,
            exploited=exploited,
            severity=_severity(vulnerabilities),
            cves=cves,
            vendors=vendors,
            products=names,
            mitigation=_mitigation(vulnerabilities) or None,
            tags=["csaf", _text(document.get("category"))],
            affected=affected,
        )
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from exc


# -- product tree --------------------------------------------------------------------------------------


def _products(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """product_id → vendor, product family name, version (range) strings, CPE and purl."""
    out: dict[str, dict[str, Any]] = {}

    def walk(branches: Any, path: dict[str, str]) -> None:
        for branch in branches or []:
            if not isinstance(branch, dict):
                continue
            here = dict(path)
            category, name = branch.get("category"), _text(branch.get("name"))
            if category in ("vendor", "product_name", "product_family", "product_version", "product_version_range"):
                here[category] = name
            product = branch.get("product")
            if isinstance(product, dict) and product.get("product_id"):
                helper = product.get("product_identification_helper") or {}
                version = here.get("product_version_range") or here.get("product_version")
                out[product["product_id"]] = {
                    "vendor": here.get("vendor", ""),
                    "product": here.get("product_name") or here.get("product_family") or _text(product.get("name")),
                    "versions": [version] if version else [],
                    "cpe": helper.get("cpe") if isinstance(helper, dict) else None,
                    "purl": helper.get("purl") if isinstance(helper, dict) else None,
                }
            walk(branch.get("branches"), here)

    walk(tree.get("branches"), {})
    for product in tree.get("full_product_names") or []:
        if isinstance(product, dict) and product.get("product_id") and product["product_id"] not in out:
            out[product["product_id"]] = {
                "vendor": "",
                "product": _text(product.get("name")),
                "versions": [],
                "cpe": None,
                "purl": None,
            }
    # A relationship ("CP-8031 firmware installed on SICAM A8000") is the component's product for matching.
    for relation in tree.get("relationships") or []:
        if not isinstance(relation, dict):
            continue
        full = relation.get("full_product_name") or {}
        ref = out.get(relation.get("product_reference", ""))
        if isinstance(full, dict) and full.get("product_id") and ref is not None:
            out.setdefault(full["product_id"], dict(ref))
    return out


def _affected(products: dict[str, dict[str, Any]], vulnerabilities: list[dict[str, Any]]) -> list[AffectedProduct]:
    """One entry per product and status, with the CVEs and remediations that concern it."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for vulnerability in vulnerabilities:
        cve = _text(vulnerability.get("cve")).upper()
        remedies: dict[str, list[str]] = {}
        for remediation in vulnerability.get("remediations") or []:
            if not isinstance(remediation, dict):
                continue
            details = _text(remediation.get("details"))
            if remediation.get("url"):
                details = f"{details} ({remediation['url']})".strip()
            if not details:
                continue
            label = f"{_text(remediation.get('category')).replace('_', ' ')}: {details}".strip(": ")
            for product_id in remediation.get("product_ids") or []:
                remedies.setdefault(product_id, []).append(label)
        status_map = vulnerability.get("product_status") or {}
        for status in _STATUS_GROUPS:
            for product_id in status_map.get(status) or []:
                product = products.get(product_id)
                if product is None:
                    continue
                entry = grouped.setdefault(
                    (product_id, status), {"product": product, "cves": [], "remediations": [], "status": status}
                )
                if _CVE.match(cve):
                    entry["cves"].append(cve)
                entry["remediations"] += remedies.get(product_id, [])
    out: list[AffectedProduct] = []
    for entry in grouped.values():
        product = entry["product"]
        remediations = list(dict.fromkeys(entry["remediations"]))
        fixes = [
            m["v"].strip()
            for r in remediations
            if r.lower().startswith("vendor fix")
            for m in [_FIX_VERSION.search(r)]
            if m
        ]
        out.append(
            AffectedProduct(
                vendor=product["vendor"],
                product=product["product"] or "unnamed product",
                versions=product["versions"],
                status=entry["status"],
                cves=list(dict.fromkeys(entry["cves"])),
                remediations=remediations[:6],
                fixed_in=list(dict.fromkeys(fixes)),
                cpe=product["cpe"],
                purl=product["purl"],
            )
        )
    return out


# -- document fields ---------------------------------------------------------------------------------


def _severity(vulnerabilities: list[dict[str, Any]]) -> Severity:
    best = 0.0
    for vulnerability in vulnerabilities:
        for score in vulnerability.get("scores") or []:
            if not isinstance(score, dict):
                continue
            for key in ("cvss_v3", "cvss_v4", "cvss_v2"):
                cvss = score.get(key)
                if isinstance(cvss, dict):
                    try:
                        best = max(best, float(cvss.get("baseScore") or 0.0))
                    except (TypeError, ValueError):
                        continue
    return Severity.from_cvss(best) if best else Severity.UNKNOWN


def _mitigation(vulnerabilities: list[dict[str, Any]]) -> str:
    seen: dict[str, None] = {}
    for vulnerability in vulnerabilities:
        for remediation in vulnerability.get("remediations") or []:
            if isinstance(remediation, dict) and remediation.get("category") in (
                "vendor_fix",
                "mitigation",
                "workaround",
            ):
                details = _text(remediation.get("details"))
                if details:
                    seen.setdefault(details, None)
    return " ".join(list(seen)[:4])[:1500]


def _self_url(document: dict[str, Any]) -> str:
    """The advisory's own page: an HTML rendering among the ``self`` references, else any of them."""
    refs = [r for r in document.get("references") or [] if isinstance(r, dict) and r.get("url")]
    own = [r["url"] for r in refs if r.get("category") == "self"]
    for url in own:
        if "cisa.gov" in url and not url.endswith(".json"):
            return url
    for url in own:
        if url.endswith((".html", ".htm")) or "/html/" in url:
            return url
    return own[0] if own else (refs[0]["url"] if refs else "")


def _publisher(data: dict[str, Any]) -> str:
    publisher = data.get("document", {}).get("publisher") or {}
    return _text(publisher.get("name")) if isinstance(publisher, dict) and publisher.get("name") else "CSAF"


def _date(value: Any) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""
