"""Version ranges as advisories write them: read right, and never a false "outside"."""

from __future__ import annotations

import pytest

from retrieval.versions import Containment, compare_versions, cpe_range, parse_range, ranges_in_text

INSIDE, OUTSIDE, UNKNOWN = Containment.INSIDE, Containment.OUTSIDE, Containment.UNKNOWN


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("7.2.5", "7.2.10", -1),
        ("V5.30", "V5.40", -1),
        ("v5.40", "V5.40", 0),
        ("7.2", "7.2.0", 0),
        ("7.2.5-r1", "7.2.5", 1),
        ("V17 Update 5", "V17_Update_8", -1),
        ("2.0 beta", "2.0.1", None),  # schemes differ: no order
        ("SS016.05", "SS017.01", None),
        ("d78dda6", "1.0", None),
        ("", "1.0", None),
    ],
)
def test_compare(a, b, order):
    assert compare_versions(a, b) == order


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("<V5.40", "V5.30", INSIDE),
        ("<V5.40", "V5.40", OUTSIDE),
        ("<V5.40", "5.41", OUTSIDE),
        (">=2.0 <2.5", "2.4.9", INSIDE),
        (">=2.0 <2.5", "2.5", OUTSIDE),
        (">=2.0 <2.5", "1.9", OUTSIDE),
        (">=13.4.1|<=13.4.4", "13.4.4", INSIDE),
        ("vers:all/<V2404.0004", "V2404.0003", INSIDE),
        ("vers:generic/>=1.0|<2.0|>=3.0|<3.1", "3.0.5", INSIDE),
        ("vers:generic/>=1.0|<2.0|>=3.0|<3.1", "2.5", OUTSIDE),
        ("1.32|1.33|1.35", "1.34", OUTSIDE),
        ("1.32|1.33|1.35", "1.33", INSIDE),
        ("all versions", "9.9", INSIDE),
        ("<V17_Update_8", "V17 Update 5", INSIDE),
        ("<V17_Update_8", "V17", UNKNOWN),  # the bare release against its updates: not stated
        ("V7.6x", "7.6.3", INSIDE),
        ("V7.6x", "7.7.0", OUTSIDE),
        ("<=The_first_5_digits_of_serial_No._26061", "1.0", UNKNOWN),
        ("<V5.40", "banana", UNKNOWN),
        ("<V5.40", "", UNKNOWN),
        ("!=1.2", "1.2", OUTSIDE),
        ("!=1.2", "1.3", INSIDE),
    ],
)
def test_ranges(text, version, expected):
    assert parse_range(text).contains(version) is expected


def test_a_condition_is_kept_apart_from_the_version():
    vr = parse_range("<V9.62_installed_on_CP150_and_CP300_devices")
    assert vr.contains("V9.50") is INSIDE
    assert vr.condition == "installed on CP150 and CP300 devices"
    assert parse_range("all_versions_with_Fortinet_NGFW").condition == "with Fortinet NGFW"


def test_cpe_ranges():
    vr = cpe_range("*", start_including="7.2.0", end_excluding="7.2.8")
    assert vr.contains("7.2.5") is INSIDE
    assert vr.contains("7.2.8") is OUTSIDE
    assert cpe_range("7.2.5").contains("7.2.5") is INSIDE
    assert cpe_range("7.2.5").contains("7.2.6") is OUTSIDE


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("FortiOS versions before 7.4.3 are affected", "7.4.2", INSIDE),
        ("FortiOS versions before 7.4.3 are affected", "7.4.3", OUTSIDE),
        ("FortiOS 7.2.0 through 7.2.10", "7.2.5", INSIDE),
        ("FortiOS 7.2.0 through 7.2.10", "7.2.11", OUTSIDE),
        ("PAN-OS 10.2 and earlier", "10.1.3", INSIDE),
        ("prior to version 3.1", "3.1", OUTSIDE),
    ],
)
def test_plain_text_ranges(text, version, expected):
    (found,) = ranges_in_text(text)
    assert found.contains(version) is expected


def test_prose_numbers_are_not_ranges():
    assert ranges_in_text("a CVSS score of 9.8 affecting 2023-2024 campaigns") == []


def test_every_range_in_the_csaf_fixtures_reads_without_error():
    """No advisory range, however odd, makes a version check crash; unreadable ones are UNKNOWN, never OUTSIDE."""
    import json

    from tests.conftest import FIXTURES

    folder = FIXTURES / "csaf"
    if not folder.is_dir():
        pytest.skip("../shared/fixtures is not present")
    names: set[str] = set()

    def walk(branches):
        for branch in branches or []:
            if branch.get("category") in ("product_version_range", "product_version"):
                names.add(branch["name"])
            walk(branch.get("branches"))

    for path in folder.glob("*.json"):
        walk(json.loads(path.read_text()).get("product_tree", {}).get("branches"))
    assert len(names) > 400
    for name in names:
        found = parse_range(name)
        for version in ("V5.30", "7.2.5", "2024-07-01", "build a7f", "", "V17 Update 5"):
            result = found.contains(version)
            if found.unreadable or not version:
                assert result is UNKNOWN
