"""CSAF 2.0 advisories and ROLIE feeds: one record per advisory, products and their version ranges kept."""

from __future__ import annotations

import hashlib
import json

import pytest

from retrieval.fetch import Fetcher
from retrieval.formats import FormatError, parse_source
from retrieval.formats.canonical import parse_jsonl
from retrieval.records import ProductStatus, ThreatRecord
from tests.conftest import FIXTURES, needs_fixtures, needs_model
from tests.helpers.http_server import LocalHTTPServer, respond

CSAF = FIXTURES / "csaf"

pytestmark = needs_fixtures


def _record(name: str) -> ThreatRecord:
    parsed = parse_source((CSAF / name).read_bytes(), origin=name)
    assert parsed.format == "csaf"
    (record,) = parsed.records
    return record


def test_siemens_sicam_advisory():
    record = _record("icsa-24-207-01.json")
    assert record.id == "csaf:ICSA-24-207-01"
    assert record.title == "Siemens SICAM Products"
    assert record.source == "CISA CSAF"
    assert record.severity.value == "critical"  # CVSS 9.8
    assert record.cves == ["CVE-2024-37998", "CVE-2024-39601"]
    assert record.vendors == ["Siemens"]
    cpci = next(a for a in record.affected if a.product.startswith("CPCI85"))
    assert cpci.vendor == "Siemens"
    assert cpci.versions == ["<V5.40"]
    assert cpci.status is ProductStatus.KNOWN_AFFECTED
    assert cpci.fixed_in == ["V5.40"]
    assert any(r.startswith("vendor fix: Update to V5.40") for r in cpci.remediations)


def test_every_fixture_document_reads_and_statuses_survive():
    statuses = set()
    count = 0
    for path in sorted(CSAF.glob("*.json")):
        parsed = parse_source(path.read_bytes(), origin=path.name)
        assert parsed.errors == [], parsed.errors
        count += len(parsed.records)
        statuses |= {a.status for r in parsed.records for a in r.affected}
    assert count == 348
    assert {ProductStatus.KNOWN_AFFECTED, ProductStatus.FIXED, ProductStatus.KNOWN_NOT_AFFECTED} <= statuses


def test_export_then_ingest_keeps_the_affected_products():
    record = _record("icsa-24-207-01.json")
    line = json.dumps(record.to_json_dict())
    (again,) = parse_jsonl(line, origin="export.jsonl").records
    assert again == record


def test_rolie_feed_lists_documents():
    parsed = parse_source((CSAF / "cisa-csaf-it-feed-tlp-white.json.rolie").read_bytes(), origin="it.rolie")
    assert parsed.format == "rolie"
    assert parsed.records == []
    assert len(parsed.links) == 4
    assert set(parsed.digests) == set(parsed.links)  # CISA publishes a .sha512 for every document
    assert all(d.endswith(".sha512") for d in parsed.digests.values())
    assert all(link.endswith(".json") for link in parsed.links)


def test_a_csaf_document_without_tracking_id_is_a_clear_error():
    data = json.loads((CSAF / "icsa-24-207-01.json").read_text())
    data["document"]["tracking"]["id"] = ""
    with pytest.raises(FormatError, match=r"tracking\.id"):
        parse_source(json.dumps(data).encode(), origin="bad.json")


@needs_model
def test_ingest_fetches_rolie_entries_through_the_guarded_fetcher(store):
    from retrieval.ingest import Ingestor

    names = ["icsa-24-207-01.json", "icsa-24-004-01.json"]
    with LocalHTTPServer() as server:
        for name in names:
            server.route(
                f"/csaf/{name}", respond(200, (CSAF / name).read_bytes(), {"Content-Type": "application/json"})
            )
        server.route("/csaf/missing.json", respond(404, "gone"))
        entries = [
            {
                "id": n,
                "content": {"src": server.url(f"/csaf/{n}")},
                "link": [{"href": server.url(f"/csaf/{n}.sha512"), "ref": "hash"}],
            }
            for n in [*names, "missing.json"]
        ]
        for name in names:
            digest = hashlib.sha512((CSAF / name).read_bytes()).hexdigest()
            server.route(f"/csaf/{name}.sha512", respond(200, f"{digest}  {name}\n"))
        tampered = "icsa-24-011-03.json"
        server.route(f"/csaf/{tampered}", respond(200, (CSAF / tampered).read_bytes()))
        server.route(f"/csaf/{tampered}.sha512", respond(200, "0" * 128 + f"  {tampered}\n"))
        entries.append(
            {
                "id": tampered,
                "content": {"src": server.url(f"/csaf/{tampered}")},
                "link": [{"href": server.url(f"/csaf/{tampered}.sha512"), "rel": "hash"}],
            }
        )
        entries.append({"id": "metadata", "content": {"src": "http://169.254.169.254/latest/meta-data"}})
        feed = {"feed": {"title": "test feed", "entry": entries}}
        server.route("/feed.rolie", respond(200, json.dumps(feed), {"Content-Type": "application/json"}))
        ingestor = Ingestor(store, fetcher=Fetcher(allow_private=True, timeout=1.0, total_timeout=2.0))
        report = ingestor.ingest(server.url("/feed.rolie"))
    assert report.ok, report.error
    assert report.format == "rolie"
    assert report.new == 2
    assert any("404" in e for e in report.item_errors)
    assert any("checksum mismatch" in e and "icsa-24-011-03" in e for e in report.item_errors)
    assert store.get("csaf:ICSA-24-011-03") is None
    stored = store.get("csaf:ICSA-24-207-01")
    assert stored is not None and stored.affected[0].versions == ["<V5.40"]


@needs_model
def test_rolie_entries_on_private_addresses_are_refused(store):
    from retrieval.ingest import Ingestor

    with LocalHTTPServer() as server:
        server.route("/doc.json", respond(200, (CSAF / "icsa-24-207-01.json").read_bytes()))
        feed = {"feed": {"entry": [{"id": "x", "content": {"src": server.url("/doc.json")}}]}}
        path = store.config.data_dir / "feed.rolie"
        path.write_text(json.dumps(feed))
        report = Ingestor(store, fetcher=Fetcher(allow_private=False, timeout=1.0)).ingest(str(path))
    assert report.new == 0
    assert any("127.0.0.1" in e or "loopback" in e for e in report.item_errors)
