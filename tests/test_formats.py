"""Format detection and parsing: the real feeds, KEV catalogs and canonical records in ../shared/fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.formats import FormatError, ParsedSource, detect_format, is_probably_html, parse_source
from retrieval.formats.feeds import html_to_text, parse_date, shorten
from retrieval.records import Kind, Severity, ThreatRecord

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not present")

FEED_FILES = sorted(p.name for p in (FIXTURES / "feeds").glob("*") if p.suffix in (".xml", ".atom"))
KEV_FILES = sorted(p.name for p in (FIXTURES / "kev").glob("*.json") if "schema" not in p.name)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def parse_fixture(*parts: str, **kwargs: str) -> ParsedSource:
    path = FIXTURES.joinpath(*parts)
    return parse_source(path.read_bytes(), origin=str(path), **kwargs)


# -- feeds ----------------------------------------------------------------------------------------


@needs_fixtures
def test_fixture_feeds_are_all_there() -> None:
    assert len(FEED_FILES) == 9  # 7 RSS feeds + 2 GitHub status Atom snapshots (fixtures/README.md)


@needs_fixtures
@pytest.mark.parametrize("name", FEED_FILES)
def test_every_fixture_feed_parses_cleanly(name: str) -> None:
    parsed = parse_fixture("feeds", name)
    assert parsed.format == ("atom" if name.endswith(".atom") else "rss")
    assert parsed.errors == []
    assert parsed.feed_title
    assert len(parsed.records) >= 10
    for record in parsed.records:
        assert record.title.strip() and "<" not in record.title
        assert record.url.startswith("https://"), record.url
        assert record.published.tzinfo is not None and record.published.utcoffset().total_seconds() == 0
        assert utc(2024, 1, 1) < record.published < utc(2025, 11, 1)  # the snapshots span Dec 2024 .. Oct 2025
        assert record.source == parsed.feed_title
        assert "<p>" not in record.summary and "&amp;" not in record.summary
        assert len(record.summary) <= 1000
    assert len({r.id for r in parsed.records}) == len(parsed.records)


@needs_fixtures
def test_crowdstrike_date_that_feedparser_cannot_read() -> None:
    parsed = parse_fixture("feeds", "crowdstrike.xml")
    first = parsed.records[0]
    assert first.title == "CrowdStrike Named a Leader and Fast Mover in GigaOm ISPM Radar"
    assert first.url == "https://www.crowdstrike.com/en-us/blog/crowdstrike-leader-fast-mover-2025-gigaom-ispm-radar/"
    assert first.published == utc(2025, 7, 23, 5, 0, 0)  # "Jul 23, 2025 00:00:00-0500"
    assert first.tags == ["Identity Protection"]
    assert parsed.feed_title == "Blog"


@needs_fixtures
def test_bleepingcomputer_offsets_and_categories() -> None:
    parsed = parse_fixture("feeds", "bleepingcomputer.xml")
    first = parsed.records[0]
    assert first.title == "BlackSuit ransomware extortion sites seized in Operation Checkmate"
    assert first.url == (
        "https://www.bleepingcomputer.com/news/security/law-enforcement-seizes-blacksuit-ransomware-leak-sites/"
    )
    assert first.published == utc(2025, 7, 24, 21, 34, 13)  # "Thu, 24 Jul 2025 17:34:13 -0400"
    assert first.source == "BleepingComputer"
    assert first.tags == ["Security"]
    assert first.summary.startswith("Law enforcement has seized the dark web extortion sites")


@needs_fixtures
def test_cisa_edt_dates_and_whole_advisories_moved_to_body() -> None:
    parsed = parse_fixture("feeds", "cybersecurity-advisories.xml")
    first = parsed.records[0]
    assert first.title == "#StopRansomware: Interlock"
    assert first.url == "https://www.cisa.gov/news-events/cybersecurity-advisories/aa25-203a"
    assert first.published == utc(2025, 7, 21, 14, 11, 24)  # "Mon, 21 Jul 2025 10:11:24 EDT"
    assert first.summary.startswith("Summary Note: This joint Cybersecurity Advisory")  # headings don't glue to text
    assert len(first.summary) <= 500 and first.summary.endswith("…")
    assert first.body is not None and len(first.body) > 20_000
    assert "\n" in first.body  # paragraphs kept in the body


@needs_fixtures
def test_proofpoint_dates_without_zone_are_utc() -> None:
    first = parse_fixture("feeds", "proofpoint.xml").records[0]
    assert first.title == "TA829, UNK_GreenSec malware campaigns underpinned by same infrastructure"
    assert first.published == utc(2025, 7, 2, 13, 14, 54)  # "02 Jul 2025 13:14:54"
    assert first.summary == ""


@needs_fixtures
def test_content_encoded_becomes_body() -> None:
    first = parse_fixture("feeds", "microsoftsecurity.xml").records[0]
    assert first.title == "Disrupting active exploitation of on-premises SharePoint vulnerabilities"
    assert first.published == utc(2025, 7, 22, 13, 0, 0)
    assert first.body and len(first.body) > 10 * len(first.summary) > 0
    assert "Linen Typhoon" in first.body


@needs_fixtures
def test_github_status_atom_published_and_updated() -> None:
    parsed = parse_fixture("feeds", "githubstatus_2024-12-25_5675311.atom")
    assert parsed.feed_title == "GitHub Status - Incident History"
    first = parsed.records[0]
    assert first.title == "Disruption with some GitHub services"
    assert first.url == "https://www.githubstatus.com/incidents/5hjghvwvqztc"
    assert first.published == utc(2024, 12, 20, 16, 44, 36)
    assert first.updated_at == utc(2024, 12, 24, 21, 56, 41)
    assert first.summary.startswith("Dec 20, 16:44 UTC Resolved - On December 20th, 2024")


@needs_fixtures
def test_source_name_overrides_feed_title() -> None:
    parsed = parse_fixture("feeds", "crowdstrike.xml", source_name="CrowdStrike Blog")
    assert {r.source for r in parsed.records} == {"CrowdStrike Blog"}
    assert parsed.feed_title == "Blog"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jul 23, 2025 00:00:00-0500", utc(2025, 7, 23, 5, 0, 0)),
        ("Thu, 24 Jul 2025 20:52:55 EDT", utc(2025, 7, 25, 0, 52, 55)),
        ("Thu, 24 Jul 2025 20:52:55 PST", utc(2025, 7, 25, 4, 52, 55)),
        ("02 Jul 2025 13:14:54", utc(2025, 7, 2, 13, 14, 54)),
        ("2025-07-24T13:38:09+02:00", utc(2025, 7, 24, 11, 38, 9)),
        ("24 juillet 2025 10:00", utc(2025, 7, 24, 10, 0, 0)),
        ("not a date", None),
        ("2025-02-30", None),
        ("", None),
    ],
)
def test_parse_date(raw: str, expected: datetime | None) -> None:
    assert parse_date(raw) == expected


RSS_ITEMS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Tiny &amp; Co</title><link>https://tiny.example/</link>
<item><title>Good one</title><link>/posts/1?utm_source=rss</link><pubDate>Thu, 24 Jul 2025 17:34:13 -0400</pubDate>
  <description>&lt;p&gt;First &lt;b&gt;bold&lt;/b&gt; para.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</description>
  <category>Vulnerabilities</category><category>Patch</category></item>
<item><title>Undated</title><link>https://tiny.example/2</link></item>
<item><link>https://tiny.example/3</link><pubDate>Thu, 24 Jul 2025 17:34:13 -0400</pubDate></item>
<item><title>Impossible date</title><link>https://tiny.example/4</link><pubDate>Feb 30, 2025 10:00:00</pubDate></item>
</channel></rss>"""


def test_bad_items_are_reported_and_good_ones_kept() -> None:
    parsed = parse_source(RSS_ITEMS.encode(), origin="https://tiny.example/feed.xml")
    assert [r.title for r in parsed.records] == ["Good one"]
    good = parsed.records[0]
    assert good.url == "https://tiny.example/posts/1?utm_source=rss"  # relative link resolved against the feed
    assert good.summary == "First bold para. Second."  # tags stripped, script dropped, paragraphs spaced
    assert good.tags == ["Vulnerabilities", "Patch"]
    assert good.source == "Tiny & Co"
    assert len(parsed.errors) == 3
    assert "item 2 ('Undated'): no date" in parsed.errors[0]
    assert "item 3: no title" in parsed.errors[1]
    assert "item 4 ('Impossible date'): impossible date 'Feb 30, 2025" in parsed.errors[2]
    assert all(e.startswith("https://tiny.example/feed.xml") for e in parsed.errors)


def test_rss_091_and_rdf_and_atom_dialects() -> None:
    rss091 = b"""<rss version="0.91"><channel><title>Old</title><item><title>A</title>
        <link>https://old.example/a</link><pubDate>Mon, 21 Jul 2025 10:11:24 GMT</pubDate></item></channel></rss>"""
    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
        xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
        <channel rdf:about="https://rdf.example/"><title>RDF</title><link>https://rdf.example/</link></channel>
        <item rdf:about="https://rdf.example/1"><title>B</title><link>https://rdf.example/1</link>
        <dc:date>2025-07-21T10:11:24-04:00</dc:date></item></rdf:RDF>"""
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom</title>
        <entry><title type="html">C &lt;em&gt;now&lt;/em&gt;</title><link href="https://atom.example/c"/>
        <updated>2025-07-21T10:11:24Z</updated><content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>"""
    for content, fmt, title, when in (
        (rss091, "rss", "A", utc(2025, 7, 21, 10, 11, 24)),
        (rdf, "rss", "B", utc(2025, 7, 21, 14, 11, 24)),
        (atom, "atom", "C now", utc(2025, 7, 21, 10, 11, 24)),
    ):
        parsed = parse_source(content, origin="test")
        assert (parsed.format, parsed.records[0].title, parsed.records[0].published) == (fmt, title, when)
        assert parsed.errors == []


def test_bozo_feed_with_entries_is_accepted_without_entries_refused() -> None:
    broken = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Bozo & Co</title>
        <item><title>Still here</title><link>https://b.example/1</link>
        <pubDate>Thu, 24 Jul 2025 17:34:13 -0400</pubDate></item></channel></rss>"""  # unescaped "&"
    parsed = parse_source(broken, origin="bozo.xml")
    assert [r.title for r in parsed.records] == ["Still here"]
    with pytest.raises(FormatError, match=r"^truncated\.xml: not a readable feed"):
        parse_source(b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>', origin="truncated.xml")


def test_entity_expansion_and_external_entities_are_harmless() -> None:
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    doc = f"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{laughs}
        <!ENTITY xxe SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel><title>x</title>
        <item><title>A &l9; B &xxe;</title><link>https://e.example/a</link>
        <pubDate>Thu, 24 Jul 2025 17:34:13 -0400</pubDate></item></channel></rss>"""
    parsed = parse_source(doc.encode(), origin="evil.xml")
    title = parsed.records[0].title
    assert len(title) < 100 and "root:" not in title


# -- detection ------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("page", ["threatpost.com.android.html", "cnet.de.schutz.html", "larepublica.net-hackers.html"])
def test_html_page_given_as_feed_is_reported_as_html(page: str) -> None:
    content = (FIXTURES / "articles" / "trafilatura" / page).read_bytes()
    assert is_probably_html(content)
    parsed = parse_source(content, origin="https://example.com/feed", content_type="application/rss+xml")
    assert parsed.format == "html" and parsed.records == []


@needs_fixtures
def test_feeds_and_json_are_not_html() -> None:
    for name in FEED_FILES:
        assert not is_probably_html((FIXTURES / "feeds" / name).read_bytes()), name
    assert detect_format((FIXTURES / "kev" / KEV_FILES[0]).read_bytes()) == "json"


def test_xhtml_and_doctype_detection() -> None:
    assert is_probably_html(b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN"><html></html>')
    assert is_probably_html(b"\xef\xbb\xbf  <!-- hi --><HTML><body>x</body></HTML>")
    assert is_probably_html(b"garbage before <html><body>page</body></html>")
    assert not is_probably_html(b'<?xml version="1.0"?><rss version="2.0"></rss>')
    assert not is_probably_html(b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty input"),
        (b"   \n ", "empty input"),
        (bytes(range(256)) * 40, "not JSON, JSONL, a feed or HTML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not JSON, JSONL, a feed or HTML"),
        (b"just some words", "not JSON, JSONL, a feed or HTML"),
        (b'{"title": "x", ', "invalid JSON"),
        (b'<?xml version="1.0"?><urlset><url><loc>https://x</loc></url></urlset>', "not a readable feed"),
        (b'{"title": "no date"}', "no valid records"),
        (b'["a", 1]', "no valid records"),
    ],
)
def test_unreadable_input_raises_format_error_naming_origin(content: bytes, message: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_source(content, origin="upload.bin", content_type="text/plain")
    assert str(info.value).startswith("upload.bin: ")
    assert message in str(info.value)


# -- canonical JSON / JSONL -----------------------------------------------------------------------


@needs_fixtures
def test_jsonl_with_invalid_lines_loads_the_valid_ones() -> None:
    with (FIXTURES / "corpus-2025" / "corpus.jsonl").open(encoding="utf-8") as fh:
        real = [next(fh) for _ in range(20)]
    bad = {
        3: "{not json at all\n",
        7: json.dumps({**json.loads(real[0]), "id": "x1", "title": "   "}) + "\n",
        11: json.dumps({**json.loads(real[0]), "id": "x2", "published": "2025-02-30T10:00:00Z"}) + "\n",
        15: json.dumps({**json.loads(real[0]), "id": "x3", "kind": "alien"}) + "\n",
        18: "[1, 2]\n",
    }
    lines = [bad.get(n, real[n - 1]) for n in range(1, 21)]
    lines.insert(9, "\n")  # a blank line is not an error (it shifts later numbers by one)
    parsed = parse_source("".join(lines).encode(), origin="mixed.jsonl")
    assert parsed.format == "canonical-jsonl"
    assert len(parsed.records) == 15
    assert [r.id for r in parsed.records[:2]] == [json.loads(real[0])["id"], json.loads(real[1])["id"]]
    assert len(parsed.errors) == 5
    assert parsed.errors[0].startswith("mixed.jsonl line 3: invalid JSON")
    assert parsed.errors[1].startswith("mixed.jsonl line 7 (id 'x1'): title: a record needs a title")
    assert parsed.errors[2].startswith("mixed.jsonl line 12 (id 'x2'): published:")
    assert "line 16 (id 'x3'): kind:" in parsed.errors[3]
    assert parsed.errors[4] == "mixed.jsonl line 19: expected an object, got list"


@needs_fixtures
def test_canonical_round_trip_of_real_records() -> None:
    with (FIXTURES / "corpus-2025" / "corpus.jsonl").open(encoding="utf-8") as fh:
        originals = [ThreatRecord.model_validate_json(next(fh)) for _ in range(50)]
    exported = json.dumps([r.to_json_dict() for r in originals]).encode()
    parsed = parse_source(exported, origin="export.json")
    assert parsed.format == "canonical-json" and parsed.errors == []
    assert parsed.records == originals


def test_single_object_missing_id_gets_a_derived_one_and_source_name_fills_source() -> None:
    doc = {"title": "Acme VPN flaw", "published": "2025-07-01", "url": "https://acme.example/a?utm_source=x"}
    parsed = parse_source(json.dumps(doc).encode(), origin="one.json", source_name="Acme PSIRT")
    (record,) = parsed.records
    assert record.id.startswith("tb:") and record.source == "Acme PSIRT"
    assert record.published == utc(2025, 7, 1)
    assert record.id == ThreatRecord(**{**doc, "url": "https://acme.example/a"}).id  # tracking params don't matter


def test_utf8_bom_json_is_read() -> None:
    doc = b'\xef\xbb\xbf[{"title": "T", "published": "2025-01-01T00:00:00Z"}]'
    assert parse_source(doc, origin="bom.json").records[0].title == "T"


# -- KEV ------------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("name", KEV_FILES)
def test_kev_record_count_matches_catalog(name: str) -> None:
    raw = json.loads((FIXTURES / "kev" / name).read_text(encoding="utf-8"))
    parsed = parse_fixture("kev", name)
    assert parsed.format == "kev" and parsed.errors == []
    assert len(parsed.records) == raw["count"]
    assert len({r.id for r in parsed.records}) == raw["count"]
    ransomware = sum(v["knownRansomwareCampaignUse"] == "Known" for v in raw["vulnerabilities"])
    assert sum("ransomware" in r.tags for r in parsed.records) == ransomware
    assert all(r.exploited and r.kind == Kind.VULNERABILITY and r.source == "CISA KEV" for r in parsed.records)
    assert all(r.severity == Severity.UNKNOWN for r in parsed.records)  # KEV states no severity


@needs_fixtures
def test_kev_record_fields() -> None:
    parsed = parse_fixture("kev", "known_exploited_vulnerabilities.json")
    assert parsed.feed_title == "CISA Catalog of Known Exploited Vulnerabilities"
    by_id = {r.id: r for r in parsed.records}
    git = by_id["kev:CVE-2025-48384"]
    assert git.title == "Git Link Following Vulnerability (CVE-2025-48384)"
    assert git.published == utc(2025, 8, 25)
    assert git.url == "https://nvd.nist.gov/vuln/detail/CVE-2025-48384"
    assert git.cves == ["CVE-2025-48384"]
    assert git.vendors == ["Git"] and git.products == ["Git"]
    assert git.tags == ["CWE-59", "CWE-436"]
    assert git.summary.startswith("Git contains a link following vulnerability")
    assert git.mitigation is not None and git.mitigation.startswith("Apply mitigations per vendor instructions")
    assert "2025-09-15" in git.mitigation
    assert "Known ransomware campaign use: Unknown." in (git.body or "")
    zyxel = by_id["kev:CVE-2020-29583"]
    assert zyxel.vendors == ["Zyxel"] and zyxel.products == []  # "Multiple Products" is not a product
    drupal = by_id["kev:CVE-2018-7600"]
    assert "ransomware" in drupal.tags


def test_kev_bad_entry_is_reported() -> None:
    catalog = {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2025.01.01",
        "count": 3,
        "vulnerabilities": [
            {"cveID": "CVE-2024-0001", "vulnerabilityName": "Good", "dateAdded": "2024-01-02", "vendorProject": "V"},
            {"cveID": "not-a-cve", "vulnerabilityName": "Bad id", "dateAdded": "2024-01-02"},
            {"cveID": "CVE-2024-0003", "vulnerabilityName": "Bad date", "dateAdded": "2024-13-45"},
        ],
    }
    parsed = parse_source(json.dumps(catalog).encode(), origin="kev.json")
    assert [r.id for r in parsed.records] == ["kev:CVE-2024-0001"]
    assert parsed.errors == [
        "kev.json vulnerabilities[1] (not-a-cve): invalid or missing cveID 'NOT-A-CVE'",
        "kev.json vulnerabilities[2] (CVE-2024-0003): invalid dateAdded '2024-13-45'",
    ]


# -- helpers --------------------------------------------------------------------------------------


def test_html_to_text_and_shorten() -> None:
    assert html_to_text("<h2>Summary</h2><p>Note: it&#8217;s <a href='#'>here</a></p>") == "Summary Note: it’s here"
    assert html_to_text("<p>a</p><p>b</p>", keep_paragraphs=True) == "a\nb"
    assert html_to_text("plain &amp; simple") == "plain & simple"
    assert html_to_text("") == ""
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("short", 12) == "short"
