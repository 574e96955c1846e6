"""Enrichment without an LLM: CVEs, vendors, kind, exploitation and severity from real headlines and texts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.enrich import enrich, find_cves, infer_exploited, infer_kind, infer_severity, severity_from_cvss
from retrieval.formats import parse_source
from retrieval.records import Kind, Severity, ThreatRecord
from retrieval.vendors import VendorDictionary

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not present")

WHEN = datetime(2025, 7, 24, tzinfo=UTC)

#: A dictionary of our own, so vendor tests do not move when the shipped data grows.
SMALL_DICTIONARY = VendorDictionary.from_data(
    {
        "vendors": [
            {"name": "Fortinet", "aliases": [{"text": "Fortinet"}]},
            {"name": "Microsoft", "aliases": [{"text": "Microsoft"}], "kev_names": []},
            {"name": "Ivanti", "aliases": [{"text": "Ivanti"}]},
        ],
        "products": [
            {"vendor": "Fortinet", "name": "FortiOS", "aliases": [{"text": "FortiOS"}]},
            {"vendor": "Microsoft", "name": "Exchange Server", "aliases": [{"text": "Exchange Server"}]},
            {"vendor": "Ivanti", "name": "Connect Secure", "aliases": [{"text": "Connect Secure"}]},
        ],
    }
)


def record(title: str, summary: str = "", body: str | None = None, **fields: object) -> ThreatRecord:
    return ThreatRecord(title=title, summary=summary, body=body, published=WHEN, **fields)


# -- kind -----------------------------------------------------------------------------------------

#: Real headlines from news-2023 and corpus-2025, labelled by hand (what an analyst would file them under).
KIND_TABLE: list[tuple[str, Kind]] = [
    ("Slack down: Outage causing connection errors, blurry images", Kind.OUTAGE),
    ("Meta confirms WhatsApp is down worldwide", Kind.OUTAGE),
    ("Microsoft Outlook outage: Here's what we know so far", Kind.OUTAGE),
    ("Microsoft 365 Admin Center Outage Hits users in North America", Kind.OUTAGE),
    ("Lyca Mobile Services Significantly Disrupted by Cyberattack", Kind.OUTAGE),
    ("Bedding Giant Tempur Sealy Takes Systems Offline Following Cyberattack", Kind.OUTAGE),
    ("Disruption with some GitHub services", Kind.OUTAGE),
    ("Degraded serving for Google App Engine and Cloud Functions users in us-central1", Kind.OUTAGE),
    ("Incident with Actions", Kind.OUTAGE),
    ("DDoS attack leads to significant disruption in ChatGPT services", Kind.OUTAGE),
    # "down", "shut down", "crackdown", "takedown" that are not outages
    ("PC sales are down, but tablets are holding up - here's why", Kind.OTHER),
    ("This 'smart' nugget ice maker is down to $449 ahead of Cyber Monday", Kind.OTHER),
    ("Law enforcement shuts down Cryptomixer in major crypto crime takedown", Kind.OTHER),
    ("FBI Cracks Down on Genesis Market: 119 Arrested in Cybercrime Crackdown", Kind.OTHER),
    ("File sharing site Anonfiles shuts down due to overwhelming abuse", Kind.OTHER),
    ("Tor-Based Drug Marketplace Piilopuoti Shut Down by Law Enforcement", Kind.OTHER),
    ("Cybersecurity M&A Roundup: 31 Deals Announced in October 2023", Kind.OTHER),
    ("Pentagon Wants Feedback on Revised Cybersecurity Maturity Model Certification Program", Kind.OTHER),
    ("Owner of Incognito dark web drugs market gets 30 years in prison", Kind.OTHER),
    ("Bitcoin price dips below 88K as analysis blames FOMC nerves", Kind.OTHER),
    # ransomware outranks the outage, the leak and the exploited flaw it caused
    ("ORBCOMM ransomware attack causes trucking fleet management outage", Kind.RANSOMWARE),
    ("Cl0p Ransomware Gang Leaks MOVEit Data on Clearweb Sites", Kind.RANSOMWARE),
    ("Microsoft: SysAid zero-day flaw exploited in Clop ransomware attacks", Kind.RANSOMWARE),
    ("VMware Finds No Evidence of 0-Day in Ongoing ESXiArgs Ransomware Spree", Kind.RANSOMWARE),
    ("Everest Ransomware Claims 90GB Data Theft From HP Inc.’s Polycom Systems", Kind.RANSOMWARE),
    ("Nissan Australia cyberattack claimed by Akira ransomware gang", Kind.RANSOMWARE),
    ("FBI and CISA published a new advisory on AvosLocker ransomware", Kind.RANSOMWARE),
    ("500k Impacted by Data Breach at Fashion Retailer Forever 21", Kind.BREACH),
    ("Personal Information Stolen in City of Philadelphia Email Hack", Kind.BREACH),
    ("Hackers breached International Criminal Court’s systems last week", Kind.BREACH),
    ("TransUnion Denies Breach After Hacker Publishes Allegedly Stolen Data", Kind.BREACH),
    ("Coupang Data Breach Exposed Personal Data of 33.7 Million Customers Personal Records", Kind.BREACH),
    ("Spanish Ministry of Science partially shuts down IT systems amid suspected data breach", Kind.BREACH),
    ("Threat actors breached Okta support system and stole customers’ data", Kind.BREACH),
    ("BlackLotus UEFI Bootkit Source Code Leaked on GitHub", Kind.MALWARE),
    ("DarkGate and Pikabot malware emerge as Qakbot’s successors", Kind.MALWARE),
    ("Evil Telegram campaign: Trojanized Telegram apps found on Google Play", Kind.MALWARE),
    ("‘BlazeStealer’ Malware Delivered to Python Developers Looking for Obfuscation Tools", Kind.MALWARE),
    ("Chinese State Hackers Use New BRICKSTORM Malware Against VMware Systems", Kind.MALWARE),
    ("SSHStalker Botnet Uses IRC C2 to Control Linux Systems", Kind.MALWARE),
    ("Free Download Manager Site Pushed Linux Password Stealer", Kind.MALWARE),
    ("Google Patches Chrome Zero-Day Reported by Apple, Spyware Hunters", Kind.VULNERABILITY),
    ("CISA warns of actively exploited Juniper pre-auth RCE exploit chain", Kind.VULNERABILITY),
    ("D-Link WiFi range extender vulnerable to command injection attacks", Kind.VULNERABILITY),
    ("Two unauthenticated stack buffer overflows found in Ivanti Avalanche EMM", Kind.VULNERABILITY),
    ("Omron Patches PLC, Engineering Software Flaws Discovered During ICS Malware Analysis", Kind.VULNERABILITY),
    ("Microsoft finds vulnerabilities it says could be used to shut down power plants", Kind.VULNERABILITY),
    (
        "Critical n8n Vulnerability (CVSS 10.0) Allows Unauthenticated Attackers to Take Full Control",
        Kind.VULNERABILITY,
    ),
    ("Unpatched Office zero-day CVE-2023-36884 actively exploited in targeted attacks", Kind.VULNERABILITY),
    ("CISA Releases Five Industrial Control Systems Advisories", Kind.ADVISORY),
    ("ICSA-18-060-01_Siemens SIMATIC, SIMOTION, and SINUMERIK (Update A)", Kind.ADVISORY),
]


@pytest.mark.parametrize(("title", "kind"), KIND_TABLE, ids=[t[:50] for t, _ in KIND_TABLE])
def test_kind_of_real_headlines(title: str, kind: Kind) -> None:
    assert enrich(record(title), SMALL_DICTIONARY).kind == kind


@needs_fixtures
def test_kind_table_titles_are_real() -> None:
    titles: set[str] = set()
    for path in (
        FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl",
        FIXTURES / "corpus-2025" / "corpus.jsonl",
    ):
        with path.open(encoding="utf-8") as fh:
            titles.update(json.loads(line)["title"] for line in fh)
    assert [t for t, _ in KIND_TABLE if t not in titles] == []


def test_kind_from_summary_when_the_title_says_nothing() -> None:
    assert infer_kind("Forensics Correlation", "A heap overflow vulnerability in the parser.") == Kind.VULNERABILITY
    # a supposed consequence in an advisory is not a breach or an outage
    text = "Successful exploitation could lead to data exposure and make the device unavailable."
    assert infer_kind("Siemens SENTRON 7KM PAC3x20", text) == Kind.VULNERABILITY
    assert infer_kind("Siemens SENTRON 7KM PAC3x20", "", source="CISA CSAF") == Kind.ADVISORY


def test_status_page_source_means_outage() -> None:
    assert infer_kind("Issues with Phishing and Malware Block Pages", source="Cloudflare Status") == Kind.OUTAGE
    assert infer_kind("Cloudflare Dashboard UI Bug", source="Cloudflare Status") == Kind.OUTAGE
    assert infer_kind("Issues with Phishing and Malware Block Pages") == Kind.MALWARE


# -- the seed record ------------------------------------------------------------------------------


@needs_fixtures
def test_seed_exchange_outage_stays_not_exploited() -> None:
    page = (FIXTURES / "seed" / "exchange-online-outage-radar-page.txt").read_text(encoding="utf-8")
    description = page.split("\nDescription\n", 1)[1].split("\nAI-Powered Analysis", 1)[0].strip()
    assert "There is no indication of exploitation" in description
    seed = ThreatRecord(
        title="Microsoft Exchange Online outage causes email delays, failures",
        published=datetime(2026, 6, 2, 17, 2, 40, tzinfo=UTC),
        summary=description,
        url="https://www.bleepingcomputer.com/news/microsoft/microsoft-exchange-online-outage-causes-email-delays-failures/",
        source="Bleeping Computer",
    )
    enriched = enrich(seed)  # the shipped dictionary
    assert enriched.kind == Kind.OUTAGE
    assert enriched.exploited is False
    assert enriched.severity == Severity.UNKNOWN
    assert enriched.cves == []
    assert "Microsoft" in enriched.vendors
    assert "Exchange" in " ".join(enriched.products)


# -- exploited ------------------------------------------------------------------------------------

#: Real sentences from the fixtures' titles and summaries.
EXPLOITED_TABLE: list[tuple[str, bool]] = [
    (
        "Microsoft patched 98 security flaws, including one bug that the company said is being actively exploited in the wild.",
        True,
    ),
    ("Warning: Hackers Actively Exploiting Zero-Day in Fortra's GoAnywhere MFT", True),
    ("Patch Now: Apple's iOS, iPadOS, macOS, and Safari Under Attack with New Zero-Day Flaw", True),
    ("Unpatched SolarWinds WHD instances under active attack", True),
    ("Disrupting active exploitation of on-premises SharePoint vulnerabilities", True),
    ("Microsoft September 2023 Patch Tuesday fixed 2 actively exploited zero-day flaws", True),
    ("CISA adds Citrix flaw to its Known Exploited Vulnerabilities catalog", True),
    ("Large-scale Citrix NetScaler Gateway credential harvesting campaign exploits CVE-2023-3519", True),
    ("There is no evidence that the shortcoming has been exploited in the wild to date.", False),
    ("There is no evidence of exploitation of these vulnerabilities as yet.", False),
    ("Ivanti added that it was not aware of any customer systems being exploited at the time of disclosure.", False),
    ("Signal says there is no evidence rumored zero-day bug is real", False),
    ("VMware Finds No Evidence of 0-Day in Ongoing ESXiArgs Ransomware Spree", False),
    ("The flaw has not been exploited, the vendor said.", False),
    ("The Zero Day Initiative (ZDI) will host a new Automotive Pwn2Own at the Automotive World Conference", False),
    ("An attacker who successfully exploited this vulnerability could gain SYSTEM privileges.", False),
    ("Successful exploitation of these vulnerabilities could allow an attacker to execute code.", False),
    ("Researchers released a PoC exploit for CVE-2023-20178 flaw in Cisco AnyConnect Secure", False),
]


@pytest.mark.parametrize(("text", "exploited"), EXPLOITED_TABLE, ids=[t[:50] for t, _ in EXPLOITED_TABLE])
def test_exploited(text: str, exploited: bool) -> None:
    assert infer_exploited(text) is exploited


def test_kev_source_means_exploited() -> None:
    assert enrich(record("Some flaw (CVE-2024-0001)", source="CISA KEV"), SMALL_DICTIONARY).exploited is True
    assert enrich(record("Some flaw (CVE-2024-0001)", source="Vendor blog"), SMALL_DICTIONARY).exploited is False


# -- severity -------------------------------------------------------------------------------------

SEVERITY_TABLE: list[tuple[str, Severity]] = [
    (
        "Tracked as CVE-2023-20858, the shortcoming carries a CVSS score of 9.1 out of a maximum of 10",
        Severity.CRITICAL,
    ),
    ("exploit code for the high-severity vulnerability, tracked as CVE-2023-20178 (CVSS score of 7.8)", Severity.HIGH),
    ("an information disclosure vulnerability, tracked as CVE-2023-20891 (CVSSv3 score 6.5)", Severity.MEDIUM),
    ("The CVE-2023-31998 flaw (CVSS v3 5.9) is a heap overflow issue", Severity.MEDIUM),
    (
        "a vulnerability, tracked as CVE-2017-18368 (CVSS v3: 9.8), impacting the end-of-life Zyxel router",
        Severity.CRITICAL,
    ),
    ("Critical AdonisJS Bodyparser Flaw (CVSS 9.2) Enables Arbitrary File Write on Servers", Severity.CRITICAL),
    ("CVSSv3: 8.1", Severity.HIGH),
    ("a low-impact bug rated CVSS score 3.1", Severity.LOW),  # a score that looks like a version, but labelled
    ("a denial-of-service bug (CVSS 4.0)", Severity.MEDIUM),  # in parentheses right after CVSS: a score
    ("Fortinet patches a critical-severity vulnerability in FortiOS and FortiProxy", Severity.CRITICAL),
    ("Hackers Win $105,000 for Reporting Critical Security Flaws in Sonos One Speakers", Severity.CRITICAL),
    ("Fortinet has warned of a high-severity flaw affecting multiple versions of FortiADC", Severity.HIGH),
    ("FIRST Announces CVSS 4.0 - New Vulnerability Scoring System", Severity.UNKNOWN),
    ("more than eight years after the release of CVSS v3.0 in June 2015", Severity.UNKNOWN),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Severity.UNKNOWN),
    (
        "Mandiant Intelligence Chief Raises Alarm Over China’s ‘Volt Typhoon’ Hackers in US Critical Infrastructure",
        Severity.UNKNOWN,
    ),
    ("Box cloud storage down amid 'critical' outage", Severity.UNKNOWN),
]


@pytest.mark.parametrize(("text", "severity"), SEVERITY_TABLE, ids=[t[:50] for t, _ in SEVERITY_TABLE])
def test_severity(text: str, severity: Severity) -> None:
    assert infer_severity(text) == severity


@pytest.mark.parametrize(
    ("score", "band"),
    [(10.0, Severity.CRITICAL), (9.0, Severity.CRITICAL), (8.9, Severity.HIGH), (7.0, Severity.HIGH),
     (6.9, Severity.MEDIUM), (4.0, Severity.MEDIUM), (3.9, Severity.LOW), (0.1, Severity.LOW), (0.0, Severity.UNKNOWN)],
)  # fmt: skip
def test_cvss_bands(score: float, band: Severity) -> None:
    assert severity_from_cvss(score) == band


# -- CVEs and vendors -----------------------------------------------------------------------------


def test_cves_from_all_text_normalised_deduped_in_order() -> None:
    assert find_cves(
        "Fix for cve-2024-21762 and CVE\u20112023\u201127997",
        "CVE-2024-21762 again; CVE-2021-44228",
        None,
        "body mentions CVE-2025-1234567 and CVE-20-1 (not an id)",
    ) == ["CVE-2024-21762", "CVE-2023-27997", "CVE-2021-44228", "CVE-2025-1234567"]


def test_vendors_from_title_and_summary_not_from_a_long_body() -> None:
    roundup = "In other news: " + "filler text. " * 200 + "Ivanti Connect Secure was also patched."
    enriched = enrich(record("Fortinet warns of FortiOS flaw", body=roundup), SMALL_DICTIONARY)
    assert enriched.vendors == ["Fortinet"]
    assert enriched.products == ["FortiOS"]
    short = enrich(record("A VPN flaw", body="Ivanti Connect Secure is affected."), SMALL_DICTIONARY)
    assert (short.vendors, short.products) == (["Ivanti"], ["Connect Secure"])


# -- never overwrite ------------------------------------------------------------------------------


def test_source_values_are_never_overwritten() -> None:
    source = record(
        "Exchange Server outage: attackers exploit critical flaw (CVSS 9.8) CVE-2024-0001",
        summary="Microsoft says the flaw is actively exploited.",
        kind="breach",
        severity="low",
        exploited=True,
        cves=["CVE-2020-0001"],
        vendors=["Contoso"],
        products=["Widget"],
        tags=["keep"],
    )
    enriched = enrich(source, SMALL_DICTIONARY)
    assert enriched.kind == Kind.BREACH
    assert enriched.severity == Severity.LOW
    assert enriched.exploited is True
    assert enriched.cves == ["CVE-2020-0001", "CVE-2024-0001"]
    assert enriched.vendors == ["Contoso", "Microsoft"]
    assert enriched.products == ["Widget", "Exchange Server"]
    assert enriched.tags == ["keep"]
    assert enriched.id == source.id
    not_exploited = enrich(record("The flaw has not been exploited", exploited=True), SMALL_DICTIONARY)
    assert not_exploited.exploited is True  # only ever False -> True


def test_catalogue_facts_become_tags_advisory_ids_and_kev_ransomware_use() -> None:
    csaf = record(
        "Philips Vue PACS (Update B)",
        id="csaf:ICSMA-21-187-01",
        url="https://github.com/cisagov/CSAF/blob/develop/csaf_files/OT/white/2021/icsma-21-187-01.json",
        source="CISA CSAF",
        tags=["medical"],
    )
    assert enrich(csaf).tags == ["medical", "ICSMA-21-187-01", "ICS"], "the source's tags stay first, each once"
    joint = record("#StopRansomware: Play Ransomware (AA23-352A)")
    assert enrich(joint).tags == ["AA23-352A"]
    kev_body = (
        "Added to the CISA Known Exploited Vulnerabilities catalog on 2026-01-26. Known ransomware campaign use: {}."
    )
    used = record("SmarterTools SmarterMail Authentication Bypass", body=kev_body.format("Known"), source="CISA KEV")
    unknown = record(
        "SmarterTools SmarterMail Missing Authentication", body=kev_body.format("Unknown"), source="CISA KEV"
    )
    news = record("Ransomware gangs exploit SmarterMail", body=kev_body.format("Known"), source="Example News")
    assert enrich(used).tags == ["ransomware"]
    assert enrich(unknown).tags == [] and enrich(news).tags == [], "only the catalogue's own flag counts"


def test_enrich_returns_a_new_record_and_leaves_the_input_alone() -> None:
    source = record("Fortinet FortiOS zero-day CVE-2024-21762 actively exploited (CVSS 9.6)")
    before = source.model_dump()
    enriched = enrich(source, SMALL_DICTIONARY)
    assert enriched is not source and source.model_dump() == before
    assert (enriched.kind, enriched.exploited, enriched.severity) == (Kind.VULNERABILITY, True, Severity.CRITICAL)
    assert enriched.cves == ["CVE-2024-21762"]
    assert enrich(enriched, SMALL_DICTIONARY) == enriched  # idempotent


# -- real sources end to end ----------------------------------------------------------------------


@needs_fixtures
def test_enriching_real_feeds_and_kev_is_fast_and_sane() -> None:
    records = []
    for name in ("bleepingcomputer.xml", "microsoftsecurity.xml", "cybersecurity-advisories.xml"):
        path = FIXTURES / "feeds" / name
        records += parse_source(path.read_bytes(), origin=str(path)).records
    kev_path = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
    kev = parse_source(kev_path.read_bytes(), origin=str(kev_path)).records
    dictionary = VendorDictionary.default()
    started = time.monotonic()
    enriched = [enrich(r, dictionary) for r in records + kev]
    assert time.monotonic() - started < 10
    by_title = {r.title: r for r in enriched}
    sharepoint = by_title["Disrupting active exploitation of on-premises SharePoint vulnerabilities"]
    assert sharepoint.exploited and sharepoint.kind == Kind.VULNERABILITY
    assert "Microsoft" in sharepoint.vendors and "CVE-2025-53770" in sharepoint.cves
    assert by_title["#StopRansomware: Interlock"].kind == Kind.RANSOMWARE
    assert by_title["BlackSuit ransomware extortion sites seized in Operation Checkmate"].kind == Kind.RANSOMWARE
    for before, after in zip(kev, enriched[len(records) :], strict=True):
        assert after.kind == Kind.VULNERABILITY and after.exploited
        assert after.cves[0] == before.cves[0] and after.vendors[0] == before.vendors[0]
        assert after.severity == Severity.UNKNOWN  # KEV texts state no score
