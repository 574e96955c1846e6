"""The stack: names resolved, files imported whole or not at all, and records matched with reasons."""

from __future__ import annotations

import json

import pytest

from retrieval.database import Database
from retrieval.formats import parse_source
from retrieval.records import ThreatRecord
from retrieval.stack.importers import StackFileError
from retrieval.stack.matching import StackMatcher, Status, stack_mark
from retrieval.stack.model import StackEntry, scope_for
from retrieval.stack.resolve import UnknownName, resolve_text
from retrieval.stack.service import StackService
from retrieval.vendors import VendorDictionary
from tests.conftest import FIXTURES, needs_fixtures

CSAF = FIXTURES / "csaf"
SBOM = FIXTURES / "sbom"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"


@pytest.fixture(scope="module")
def dictionary() -> VendorDictionary:
    return VendorDictionary.default()


@pytest.fixture
def service(tmp_path, dictionary):
    db = Database(tmp_path / "threatbot.sqlite3")
    yield StackService(db, dictionary)
    db.close()


def _entry(id_: int, vendor: str, product: str, version: str = "", aliases: tuple[str, ...] = ()) -> StackEntry:
    return StackEntry(id_, "default", vendor, product, version, aliases=aliases)


def _csaf(name: str) -> ThreatRecord:
    (record,) = parse_source((CSAF / name).read_bytes(), origin=name).records
    return record


@pytest.fixture(scope="module")
def kev_records() -> dict[str, ThreatRecord]:
    if not KEV.is_file():
        pytest.skip("../shared/fixtures is not present")
    return {r.cves[0]: r for r in parse_source(KEV.read_bytes(), origin="kev").records}


# -- names ---------------------------------------------------------------------------------------------


def test_typed_names_resolve_through_the_dictionary(dictionary):
    fortigate = resolve_text("FortiGate 7.2.5", dictionary)
    assert (fortigate.vendor, fortigate.product, fortigate.version) == ("Fortinet", "FortiOS", "7.2.5")
    siemens = resolve_text("Siemens CPCI85 V5.30", dictionary)
    assert (siemens.vendor, siemens.product, siemens.version) == ("Siemens", "CPCI85", "V5.30")
    assert resolve_text("Palo Alto PAN-OS 11.1.1", dictionary).product == "PAN-OS"


def test_an_unknown_name_is_refused_with_close_names(dictionary):
    with pytest.raises(UnknownName) as caught:
        resolve_text("Fortigat 7.2", dictionary)
    assert "Fortinet" in caught.value.suggestions
    assert "Fortigat" in str(caught.value)


def test_scopes():
    assert scope_for("console", "") == "default"
    assert scope_for("slack", "T0123") == "slack:T0123"
    assert scope_for("discord", "", "D55") == "discord:channel:D55"  # a DM: its own stack, never another's


# -- matching over real advisories -----------------------------------------------------------------------


@needs_fixtures
def test_cpci85_below_v540_is_affected_and_v540_is_not():
    record = _csaf("icsa-24-207-01.json")
    matcher = StackMatcher([_entry(1, "Siemens", "CPCI85", "V5.30"), _entry(2, "Siemens", "CPCI85", "V5.40")])
    verdicts = {v.entry.id: v for v in matcher.match(record)}
    assert verdicts[1].status is Status.AFFECTED
    assert "<V5.40" in verdicts[1].why and "ICSA-24-207-01" in verdicts[1].why
    assert verdicts[1].fixed_in == "V5.40"
    assert verdicts[2].status is Status.NOT_AFFECTED
    assert stack_mark(verdicts.values()) == "⚠ affects your stack: Siemens CPCI85 V5.30 (fixed in V5.40)"


@needs_fixtures
def test_no_version_or_uncomparable_version_is_possibly_affected():
    record = _csaf("icsa-24-207-01.json")
    matcher = StackMatcher([_entry(1, "Siemens", "CPCI85"), _entry(2, "Siemens", "CPCI85", "build-a7f")])
    statuses = {v.entry.id: v.status for v in matcher.match(record)}
    assert statuses == {1: Status.POSSIBLY_AFFECTED, 2: Status.POSSIBLY_AFFECTED}


@needs_fixtures
def test_other_vendors_products_do_not_match():
    record = _csaf("icsa-24-207-01.json")
    assert (
        StackMatcher([_entry(1, "Fortinet", "FortiOS", "7.2.5"), _entry(2, "Schneider Electric", "CPCI85")]).match(
            record
        )
        == []
    )


@needs_fixtures
def test_a_kev_entry_matched_by_product_alone_is_possibly_affected(kev_records, dictionary):
    record = kev_records["CVE-2024-3400"]
    entry = resolve_text("PAN-OS 10.2.8", dictionary)
    matcher = StackMatcher([_entry(1, entry.vendor, entry.product, entry.version)])
    (verdict,) = matcher.match(record)
    assert verdict.status is Status.POSSIBLY_AFFECTED
    assert "KEV CVE-2024-3400" in verdict.why and "no affected versions" in verdict.why


def test_a_cpe_version_decides_when_an_advisory_gives_only_that():
    from retrieval.records import AffectedProduct

    advisory = ThreatRecord(
        id="csaf:TEST-1",
        title="Example advisory",
        published="2026-01-02T00:00:00Z",
        vendors=["Fortinet"],
        affected=[
            AffectedProduct(vendor="Fortinet", product="FortiOS", cpe="cpe:2.3:o:fortinet:fortios:7.2.5:*:*:*:*:*:*:*")
        ],
    )
    matcher = StackMatcher([_entry(1, "Fortinet", "FortiOS", "7.2.5"), _entry(2, "Fortinet", "FortiOS", "7.2.6")])
    statuses = {v.entry.id: v.status for v in matcher.match(advisory)}
    assert statuses == {1: Status.AFFECTED, 2: Status.NOT_AFFECTED}


def test_plain_text_ranges_decide_when_a_story_states_them():
    story = ThreatRecord(
        title="Fortinet patches FortiOS flaw",
        published="2026-01-02T00:00:00Z",
        summary="The flaw affects FortiOS versions 7.2.0 through 7.2.10; it is fixed in 7.2.11.",
        vendors=["Fortinet"],
        products=["FortiOS"],
        source="Example News",
    )
    matcher = StackMatcher([_entry(1, "Fortinet", "FortiOS", "7.2.5"), _entry(2, "Fortinet", "FortiOS", "7.4.1")])
    verdicts = {v.entry.id: v for v in matcher.match(story)}
    assert verdicts[1].status is Status.AFFECTED and verdicts[1].fixed_in == "7.2.11"
    assert verdicts[2].status is Status.NOT_AFFECTED


# -- importing -------------------------------------------------------------------------------------------


@needs_fixtures
def test_a_cyclonedx_import_makes_an_sbom_component_match_a_kev_product(service, kev_records):
    report = service.import_file("default", SBOM / "keycloak-10.0.2.cdx.json")
    assert report.format == "cyclonedx"
    assert report.read == report.added.count + report.added.already
    log4j = [e for e in service.entries("default") if e.product == "Log4j"]
    assert log4j and log4j[0].vendor == "Apache" and log4j[0].version == "1.2.17"
    verdicts = service.verdicts("default", kev_records["CVE-2021-44228"])
    assert verdicts and {v.entry.product for v in verdicts} == {"Log4j"}
    assert {v.status for v in verdicts} == {Status.POSSIBLY_AFFECTED}
    # Library names that are also ordinary product words do not match: "is-windows" is not Microsoft Windows.
    entries = service.entries("default")
    assert any(e.product == "Spring" and e.vendor == "VMware" for e in entries)  # spring-core of org.springframework
    assert not any(e.product == "Java" for e in entries)  # java-client of io.appium is not Oracle Java
    assert service.verdicts("default", kev_records["CVE-2016-3427"]) == []  # Oracle Java SE and JRockit
    juice = service.import_file("juice", SBOM / "juice-shop-11.1.2.cdx.json")
    assert juice.read > 800
    windows = next(r for r in kev_records.values() if r.products == ["Windows"])
    assert service.verdicts("juice", windows) == []


@needs_fixtures
def test_every_sbom_fixture_imports(service):
    for path in sorted(SBOM.glob("*.json")):
        report = service.import_file(path.stem, path)
        assert report.read >= 1
    obom = service.entries("obom-example.cdx")
    assert any(e.vendor == "Red Hat" and e.version == "8.0" for e in obom)


def test_toml_yaml_and_cpe_lists(service, tmp_path):
    (tmp_path / "stack.toml").write_text(
        '[[stack]]\nvendor = "Fortinet"\nproduct = "FortiOS"\nversion = "7.2.5"\n\n'
        '[[stack]]\nproduct = "PAN-OS"\nversion = "10.2.8"\n'
    )
    (tmp_path / "stack.yaml").write_text("- vendor: Ivanti\n  product: Connect Secure\n  version: 22.10\n")
    (tmp_path / "cpes.txt").write_text("# our firewalls\ncpe:2.3:o:fortinet:fortios:7.4.1:*:*:*:*:*:*:*\n")
    assert service.import_file("s", tmp_path / "stack.toml").format == "toml"
    assert service.import_file("s", tmp_path / "stack.yaml").format == "yaml"
    assert service.import_file("s", tmp_path / "cpes.txt").format == "cpe-list"
    labels = [e.label for e in service.entries("s")]
    assert labels == [
        "Fortinet FortiOS 7.2.5",
        "Palo Alto Networks PAN-OS 10.2.8",
        "Ivanti Connect Secure 22.10",  # a YAML number stays the string it was written as
        "Fortinet FortiOS 7.4.1",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.toml",
            '[[stack]]\nproduct = "FortiOS"\nversion = 7.2\n',
            r"stack\[0\]: field 'version' must be a string",
        ),
        (
            "bad.yaml",
            "- vendor: Fortinet\n  product: FortiOS\n- vendor: Ivanti\n  version: '1'\n",
            r"line 3: field 'product' is missing",
        ),
        ("bad.yaml", "- vendor: [unclosed\n", r"line \d+: invalid YAML"),
        ("cpes.txt", "cpe:2.3:o:fortinet:fortios:7.4.1:*:*:*:*:*:*:*\ncpe:2.3:broken\n", r"line 2: not a CPE 2.3 name"),
        (
            "sbom.json",
            json.dumps({"bomFormat": "CycloneDX", "components": [{"name": "a"}, {"version": "1"}]}),
            r"components\[1\]\.name",
        ),
        ("sbom.json", '{"bomFormat": "CycloneDX",\n "components": [}', r"line 2, column \d+: invalid JSON"),
    ],
)
def test_a_malformed_file_names_the_place_and_keeps_the_stored_stack(service, tmp_path, name, content, message):
    service.add_text("default", "FortiGate 7.2.5")
    before = service.entries("default")
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(StackFileError, match=message):
        service.import_file("default", path)
    assert service.entries("default") == before


def test_add_remove_and_no_duplicates(service):
    entry, created = service.add_text("default", "FortiGate 7.2.5")
    again, created_again = service.add_text("default", "Fortinet FortiOS 7.2.5")
    assert created and not created_again and again.id == entry.id
    assert service.remove("other-scope", entry.id) is None
    assert service.remove("default", entry.id) == entry
    assert service.entries("default") == []
