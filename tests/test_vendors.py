"""Vendor/product dictionary: real headlines in, canonical (vendor, product) mentions out.

The headlines are real titles from the shared fixtures (corpus-2025, news-2023 and the seed page),
chosen so each sense of an ambiguous word appears: Microsoft's Exchange and crypto exchanges,
Microsoft Teams and security teams, Outlook the client and outlook the forecast.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from retrieval.vendors import VendorDictionary, VendorMatch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
KEV = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"


@pytest.fixture(scope="module")
def vd() -> VendorDictionary:
    return VendorDictionary.default()


def pairs(vd: VendorDictionary, text: str) -> set[tuple[str, str | None]]:
    return {(m.vendor, m.product) for m in vd.find(text)}


def products(vd: VendorDictionary, text: str) -> set[str]:
    return {m.product for m in vd.find(text) if m.product}


def vendors(vd: VendorDictionary, text: str) -> set[str]:
    return {m.vendor for m in vd.find(text)}


# -- Microsoft Exchange vs. every other exchange ------------------------------------------------------------------

EXCHANGE_IS_MICROSOFT = [
    "Microsoft Exchange Online outage causes email delays, failures",
    "Exchange Online mail delivery issues caused by anti-spam rules",
    "Microsoft: Exchange Online flags legitimate emails as phishing",
    "Russian hackers exploiting Outlook bug to hijack Exchange accounts",
    "Microsoft expands access to cloud logging data for free after Exchange hacks",
    "Microsoft Urges Customers to Secure On-Premises Exchange Servers",
    "ToddyCat Malware Exploits ProxyLogon to Compromise Microsoft Exchange Servers",
    "Microsoft to shut down Exchange Online EWS in April 2027",
    "Missing emails? Exchange Online is tagging legitimate messages as spam - here's what to do",
    "Microsoft adds HSTS support to Exchange Server 2016 and 2019",
    "any Exchange outages today?",
    "is exchange down again? users report mail stuck in outbox",
    "EXO degraded in EMEA",
]

EXCHANGE_IS_NOT_MICROSOFT = [
    "Crypto Exchange Upbit Suffers Security Breach After $10B Deal",
    "Authorities dismantle crypto exchange Bitzlato, allege it was cybercrime “haven”",
    "Two Russian Nationals Charged for Masterminding Mt. Gox Crypto Exchange Hack",
    "Former Security Engineer Arrested for $9 Million Crypto Exchange Hack",
    "Bitcoin Exchange Paxful Agrees to Plead Guilty, Hit With $7.5 Million in Penalties",
    "Japanese Cryptocurrency Exchange Falls Victim to JokerSpy macOS Backdoor Attack",
    "Officials accuse North Korea’s Lazarus of $30 million theft from crypto exchange",
    "South Korean Crypto Exchange Accidentally Gave Away $43 Billion in Bitcoin",
    "Chicago Mercantile Exchange halts trading, sparking public outcry",
    "Cisco IOS and XE Software Internet Key Exchange Memory Leak Vulnerability (CVE-2018-0158)",
    "Ransomware crooks are exploiting IBM file exchange bug with a 9.8 severity",
    "The company disclosed the breach in a filing with the Securities and Exchange Commission on Monday",
    "Bybit exchange outage: withdrawals down after the hack",
    "crypto exchange hacks this year",
    "Coinbase bets on stablecoins, Base and 'everything exchange' for 2026",
]


@pytest.mark.parametrize("text", EXCHANGE_IS_MICROSOFT)
def test_exchange_in_microsoft_context_is_microsoft_exchange(vd: VendorDictionary, text: str) -> None:
    assert ("Microsoft", "Exchange") in pairs(vd, text)


@pytest.mark.parametrize("text", EXCHANGE_IS_NOT_MICROSOFT)
def test_other_exchanges_are_not_microsoft_exchange(vd: VendorDictionary, text: str) -> None:
    assert "Exchange" not in products(vd, text)


def test_bare_exchange_without_context_is_not_matched(vd: VendorDictionary) -> None:
    # Nothing says which exchange: the dictionary must not guess Microsoft.
    assert vd.find("Exchange") == []
    assert vd.find("they exchange tips on forums") == []


def test_vendor_prefix_settles_exchange_even_next_to_crypto(vd: VendorDictionary) -> None:
    assert ("Microsoft", "Exchange") in pairs(vd, "Microsoft Exchange servers hit by crypto-mining malware")


def test_seed_page_finds_exchange_online(vd: VendorDictionary) -> None:
    seed = FIXTURES / "seed" / "exchange-online-outage-radar-page.txt"
    if not seed.is_file():
        pytest.skip("shared fixtures not available")
    text = seed.read_text(encoding="utf-8")
    found = vd.find(text)
    assert ("Microsoft", "Exchange") in {(m.vendor, m.product) for m in found}
    exo = [m for m in found if m.product == "Exchange"]
    assert all(text[m.start : m.end] == m.alias for m in exo)
    assert any(m.alias == "Microsoft Exchange Online" for m in exo)
    assert ("Microsoft", "Microsoft 365") in {(m.vendor, m.product) for m in found}


# -- other ambiguous words ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Microsoft Teams outage hits users across Europe", True),
        ("Teams down for everyone? meetings fail to join", True),
        ("Hackers use Teams chats to push malware, posing as help desk", True),
        ("MS Teams calls dropping", True),
        ("Security teams struggle with alert fatigue", False),
        ("Red Teams and Blue Teams: a primer", False),
        ("How SOC teams can use Microsoft Sentinel", False),
    ],
)
def test_teams(vd: VendorDictionary, text: str, expected: bool) -> None:
    assert (("Microsoft", "Teams") in pairs(vd, text)) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Russian hackers exploiting Outlook bug to hijack Exchange accounts", True),
        ("Outlook down: users cannot open email", True),
        ("Cybersecurity Outlook 2026: what CISOs expect", False),
        ("The threat outlook for the energy sector", False),
    ],
)
def test_outlook(vd: VendorDictionary, text: str, expected: bool) -> None:
    assert (("Microsoft", "Outlook") in pairs(vd, text)) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Progress Software patches critical MOVEit Transfer flaw", {"Progress"}),
        ("Progress warns of new WS_FTP vulnerabilities", {"Progress"}),
        ("Progress on the investigation has been slow", set()),
        ("Making progress against ransomware", set()),
    ],
)
def test_progress_the_vendor_needs_context(vd: VendorDictionary, text: str, expected: set[str]) -> None:
    assert vendors(vd, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Microsoft Edge browser update fixes zero-day", ("Microsoft", "Edge")),
        ("Edge browser extension steals passwords", ("Microsoft", "Edge")),
        ("Attackers target Edge devices from Ivanti and Fortinet", None),
        ("Atlassian Confluence flaw exploited in the wild", ("Atlassian", "Confluence")),
        ("a confluence of factors led to the breach", None),
        ("Intel patches CPU flaws", ("Intel", None)),
        ("Threat Intel roundup for the week", None),
        ("Oracle E-Business Suite zero-day exploited by Cl0p", ("Oracle", "E-Business Suite")),
        ("padding oracle attack against AES-CBC", None),
        ("CrowdStrike Falcon sensor update crashes Windows machines", ("CrowdStrike", "Falcon")),
        ("Falcon 9 launch delayed", None),
    ],
)
def test_other_ambiguous_words(vd: VendorDictionary, text: str, expected: tuple[str, str | None] | None) -> None:
    found = pairs(vd, text)
    if expected is None:
        assert not any(v in {"Microsoft", "Atlassian", "Intel", "Oracle", "CrowdStrike"} for v, _ in found), found
    else:
        assert expected in found


# -- ordinary names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MOVEit exploitation in June 2023", {("Progress", "MOVEit Transfer")}),
        ("Citrix Bleed exploited to hijack NetScaler sessions", {("Citrix", "NetScaler")}),
        ("Fortinet warns of FortiManager zero-day", {("Fortinet", None), ("Fortinet", "FortiManager")}),
        ("FortiGate and FortiOS SSL-VPN flaw", {("Fortinet", "FortiOS")}),
        ("Ivanti Connect Secure VPN zero-days exploited", {("Ivanti", "Connect Secure")}),
        ("Pulse Secure VPN bug", {("Ivanti", "Connect Secure")}),
        ("Palo Alto Networks PAN-OS GlobalProtect flaw", {("Palo Alto Networks", "PAN-OS")}),
        ("Cisco IOS XE web UI zero-day", {("Cisco", "IOS XE")}),
        ("Cisco ASA and FTD devices targeted", {("Cisco", "ASA")}),
        ("VMware ESXi hypervisors hit by ransomware", {("VMware", "ESXi")}),
        ("vCenter Server RCE", {("VMware", "vCenter Server")}),
        ("Apple fixes iOS zero-day used in spyware attacks", {("Apple", None), ("Apple", "iOS")}),
        ("Google Chrome update fixes V8 type confusion", {("Google", "Chrome")}),
        ("Mozilla Firefox 120 released", {("Mozilla", "Firefox")}),
        ("Oracle WebLogic Server flaw", {("Oracle", "WebLogic Server")}),
        ("SAP NetWeaver Visual Composer exploited", {("SAP", "NetWeaver")}),
        ("Apache Log4j flaw still exploited", {("Apache", "Log4j")}),
        ("Log4Shell two years later", {("Apache", "Log4j")}),
        ("Linux kernel privilege escalation", {("Linux", "Linux kernel")}),
        ("Juniper Junos OS bug", {("Juniper", "Junos OS")}),
        ("F5 BIG-IP authentication bypass", {("F5", "BIG-IP")}),
        ("Veeam Backup & Replication RCE", {("Veeam", "Backup & Replication")}),
        ("Zimbra zero-day used to steal email", {("Synacor", "Zimbra Collaboration Suite")}),
        ("Kaseya VSA supply-chain attack", {("Kaseya", "VSA")}),
        ("the VSA ransomware attack hit Kaseya customers", {("Kaseya", None), ("Kaseya", "VSA")}),
        ("SolarWinds Orion hack", {("SolarWinds", "Orion")}),
        ("ConnectWise ScreenConnect flaw", {("ConnectWise", "ScreenConnect")}),
        ("3CX supply chain attack", {("3CX", None)}),
        ("GitHub down? Actions and Codespaces degraded", {("GitHub", None), ("GitHub", "Codespaces")}),
        ("GCP us-east1 incident", {("Google", "Google Cloud")}),
        ("AWS outage takes down Slack and Zoom", {("Amazon", "AWS"), ("Slack", None), ("Zoom", None)}),
        ("Okta support system breach", {("Okta", "Okta")}),
        ("Entra ID (formerly Azure AD) sign-in failures", {("Microsoft", "Entra ID")}),
        ("Office 365 and M365 outage", {("Microsoft", "Microsoft 365")}),
        ("Barracuda ESG zero-day", {("Barracuda Networks", "Email Security Gateway")}),
        ("Snowflake customer accounts breached", {("Snowflake", None)}),
        ("MSFT shares fall", {("Microsoft", None)}),
        ("WordPress plugin flaw", {("WordPress", None)}),
        ("Cloudflare outage breaks half the internet", {("Cloudflare", None)}),
        ("SonicWall SMA 100 appliances", {("SonicWall", "SMA")}),
    ],
)
def test_names_in_headlines(vd: VendorDictionary, text: str, expected: set[tuple[str, str | None]]) -> None:
    assert expected <= pairs(vd, text)


@pytest.mark.parametrize(
    "text",
    [
        "Ms. Smith joined the board",  # "MS" is case-sensitive
        "the sap rose in spring",
        "the team cut some slack",
        "zoom in on the details",
        "an apple a day",
        "meeting at 10 AM",  # KEV's "Access Management (AM)" must not match bare "AM"
        "enable WARP mode on your phone app",  # FatPipe's WARP only behind its vendor name
        "maintenance windows are scheduled",
        "It will take a bash script",
    ],
)
def test_ordinary_words_are_not_vendors(vd: VendorDictionary, text: str) -> None:
    assert vd.find(text) == []


def test_case_distinguishes_apple_ios_from_cisco_ios(vd: VendorDictionary) -> None:
    assert pairs(vd, "iOS 17.2 fixes") == {("Apple", "iOS")}
    assert pairs(vd, "IOS 15.2 on Catalyst switches") == {("Cisco", "IOS")}


def test_longest_alias_wins_and_offsets_are_exact(vd: VendorDictionary) -> None:
    text = "Patch now: Microsoft Exchange Server and Palo Alto Networks PAN-OS."
    found = vd.find(text)
    assert [m.alias for m in found] == ["Microsoft Exchange Server", "Palo Alto Networks PAN-OS"]
    assert found[0] == VendorMatch("Microsoft", "Exchange", 11, 36, "Microsoft Exchange Server")
    assert all(text[m.start : m.end] == m.alias for m in found)


def test_whole_words_only(vd: VendorDictionary) -> None:
    assert vd.find("Ciscoworks and microsofty are not names; okta-based is") == [
        VendorMatch("Okta", None, 41, 45, "okta")
    ]


def test_whitespace_inside_aliases_is_flexible(vd: VendorDictionary) -> None:
    assert pairs(vd, "Exchange\nOnline   outage") == {("Microsoft", "Exchange")}


def test_empty_text(vd: VendorDictionary) -> None:
    assert vd.find("") == []


# -- lenient mode (questions) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "strict", "lenient"),
    [
        # no positive context: only a question gets the benefit of the doubt
        ("Exchange vulnerabilities this week", set(), {("Microsoft", "Exchange")}),
        # vetoes hold in both modes
        ("crypto exchange hacks", set(), set()),
        ("filed with the Securities and Exchange Commission", set(), set()),
        # an all-lower-case question carries no case information
        ("aws down?", set(), {("Amazon", "AWS")}),
        ("slack outage", set(), {("Slack", None)}),
        # ...but once the asker uses capitals, case-sensitive names keep their case
        ("Ms. Jones asked about the outage", set(), set()),
        # strict rules need evidence even in a question: "ICS" is mostly industrial control systems
        ("ics advisories", set(), set()),
        ("any intel on lockbit?", set(), set()),
    ],
)
def test_lenient_mode_for_questions(
    vd: VendorDictionary, text: str, strict: set[tuple[str, str | None]], lenient: set[tuple[str, str | None]]
) -> None:
    assert pairs(vd, text) == strict
    assert {(m.vendor, m.product) for m in vd.find(text, lenient=True)} == lenient


# -- lookups --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Microsoft", "Microsoft"),
        ("microsoft corporation", "Microsoft"),
        ("Microsoft Corp.", "Microsoft"),
        ("Fortinet, Inc.", "Fortinet"),
        ("MSFT", "Microsoft"),
        ("Pulse Secure", "Ivanti"),
        ("QNAP Systems", "QNAP"),
        ("VMware Tanzu", "VMware"),
        ("Barracuda", "Barracuda Networks"),
        ("Hewlett Packard (HP)", "Hewlett Packard"),
        ("Progress", "Progress"),
        ("GitHub", "GitHub"),
        ("Schneider Electric Software, LLC", "Schneider Electric"),
        ("Totally Unknown Vendor", None),
        ("", None),
    ],
)
def test_canonical_vendor(vd: VendorDictionary, name: str, expected: str | None) -> None:
    assert vd.canonical_vendor(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Exchange Server", ("Microsoft", "Exchange")),
        ("Exchange", ("Microsoft", "Exchange")),
        ("EXO", ("Microsoft", "Exchange")),
        ("exchange online", ("Microsoft", "Exchange")),
        ("FortiGate", ("Fortinet", "FortiOS")),
        ("FortiOS and FortiProxy SSL-VPN", ("Fortinet", "FortiOS")),
        ("iOS, iPadOS, and macOS", ("Apple", "iOS")),
        ("Chromium V8", ("Google", "Chrome")),
        ("MOVEit", ("Progress", "MOVEit Transfer")),
        ("NetScaler ADC and NetScaler Gateway", ("Citrix", "NetScaler")),
        ("Pulse Connect Secure", ("Ivanti", "Connect Secure")),
        ("Confluence Data Center and Server", ("Atlassian", "Confluence")),
        ("Multiple Products", None),
        ("Nothing Like This", None),
    ],
)
def test_canonical_product(vd: VendorDictionary, name: str, expected: tuple[str, str] | None) -> None:
    assert vd.canonical_product(name) == expected


def test_listings_are_canonical_and_cover_kev_vendors(vd: VendorDictionary) -> None:
    names = vd.vendors
    for required in ("Microsoft", "Fortinet", "Ivanti", "Progress", "Citrix", "GitHub", "Cloudflare", "Okta"):
        assert required in names
    assert ("Microsoft", "Exchange") in vd.products
    assert "Pulse Secure" not in names  # folded into Ivanti
    assert len(set(names)) == len(names)
    if KEV.is_file():
        kev = json.loads(KEV.read_text(encoding="utf-8"))["vulnerabilities"]
        unknown = {v["vendorProject"] for v in kev if vd.canonical_vendor(v["vendorProject"]) is None}
        assert unknown <= {"Npm package"}


def test_default_is_cached(vd: VendorDictionary) -> None:
    assert VendorDictionary.default() is vd


# -- mechanics with a tiny hand-made dictionary ----------------------------------------------------------------------

TINY = {
    "rules": {"acme": {"require": ["widget"], "veto_near": ["cartoon"], "veto_after": "corp\\b"}},
    "vendors": [
        {"name": "Acme", "aliases": [{"text": "Acme", "rule": "acme"}, {"text": "ACM", "case_sensitive": True}]},
        {"name": "Globex", "aliases": ["Globex"]},
    ],
    "products": [{"vendor": "Globex", "name": "Hammer", "aliases": ["Hammer X"], "prefix_only": ["HX"]}],
}


def test_rule_mechanics_on_a_tiny_dictionary() -> None:
    vd = VendorDictionary.from_data(TINY)
    assert pairs(vd, "Acme widget recall") == {("Acme", None)}
    assert pairs(vd, "Acme recall") == set()  # no positive evidence
    assert pairs(vd, "Acme widget in a cartoon") == set()  # veto word near
    assert pairs(vd, "Acme Corp widget") == set()  # veto right after
    assert pairs(vd, "ACM said; Acme recall") == {("Acme", None)}  # same vendor nearby is evidence
    assert pairs(vd, "acm said") == set()  # case-sensitive alias
    assert pairs(vd, "Globex Hammer and Hammer X; Globex HX, but HX alone") == {("Globex", "Hammer")}
    assert [m.alias for m in vd.find("Globex HX, but HX alone")] == ["Globex HX"]
    assert vd.canonical_product("Globex Hammer") == ("Globex", "Hammer")
    assert vd.rule_for("acme") is not None and vd.rule_for("Globex") is None


def test_unknown_rule_or_vendor_is_an_error() -> None:
    with pytest.raises(ValueError):
        VendorDictionary.from_data({"vendors": [{"name": "A", "aliases": [{"text": "A", "rule": "nope"}]}]})
    with pytest.raises(ValueError):
        VendorDictionary.from_data({"vendors": [], "products": [{"vendor": "Nope", "name": "X"}]})


# -- the generated file and its builder -----------------------------------------------------------------------------


def _builder() -> ModuleType:
    path = ROOT / "scripts" / "build_vendor_dictionary.py"
    spec = importlib.util.spec_from_file_location("build_vendor_dictionary", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_normalises_kev_names() -> None:
    builder = _builder()
    data = builder.build(
        [
            ("Microsoft Corporation", "Exchange Server"),
            ("Acme Widgets ", "Multiple Products"),
            ("Acme Widgets", "RoadRunner Pro (RRP), Email Server, and WidgetOS"),
            ("Acme Widgets", "Server"),
            ("Acme Widgets", "Backup and Replication"),
            ("Acme Widgets", "Core"),
            ("Acme Widgets", "acme widgets core"),
            ("Acme Widgets", "Acme Widgets Core"),
            ("Npm package", "left-pad"),
        ]
    )
    vd = VendorDictionary.from_data(data)
    assert vd.canonical_vendor("Acme Widgets") == "Acme Widgets"
    assert vd.canonical_product("Exchange Server") == ("Microsoft", "Exchange")
    assert vd.canonical_product("WidgetOS") == ("Acme Widgets", "WidgetOS")
    assert vd.canonical_product("Multiple Products") is None
    assert pairs(vd, "WidgetOS and RoadRunner Pro bugs") == {
        ("Acme Widgets", "WidgetOS"),
        ("Acme Widgets", "RoadRunner Pro"),
    }
    assert pairs(vd, "Email Server down; RRP; Server") == set()  # generic and abbreviation only behind the vendor
    assert pairs(vd, "Acme Widgets RRP") == {("Acme Widgets", "RoadRunner Pro")}
    assert "left-pad" not in {p for _, p in vd.products}
    names = {p for v, p in vd.products if v == "Acme Widgets"}
    assert "Backup and Replication" in names and "Backup" not in names  # all-generic parts: one product
    assert {n for n in names if "core" in n.lower()} == {"Acme Widgets Core"}  # spellings merged
    assert vd.canonical_product("Core") == ("Acme Widgets", "Acme Widgets Core")


def test_committed_data_file_is_up_to_date() -> None:
    if not KEV.is_file():
        pytest.skip("shared fixtures not available")
    assert _builder().main(["--kev", str(KEV), "--check"]) == 0


def test_matching_finds_vendors_across_15k_real_records(vd: VendorDictionary) -> None:
    """Speed is measured by bench/vendor_matching.py, not asserted here: this checks the whole corpus goes through."""
    corpus = FIXTURES / "corpus-2025" / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip("shared fixtures not available")
    texts = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            texts.append(record["title"] + "\n" + (record.get("summary") or ""))
            if len(texts) == 15_000:
                break
    found = sum(len(vd.find(t)) for t in texts)
    assert found > 10_000


def test_a_name_with_trailing_punctuation_also_matches_bare(vd: VendorDictionary) -> None:
    """KEV spells "Joomla!"; chat types "joomla"."""
    assert [m.vendor for m in vd.find("any joomla extensions on KEV?")] == ["Joomla!"]
    assert [m.vendor for m in vd.find("Joomla! Improper Access Control")] == ["Joomla!"]
    assert vd.canonical_vendor("joomla") == "Joomla!"


def test_a_source_vendor_name_is_said_whole_without_its_company_form_or_by_each_part() -> None:
    from retrieval.vendors import name_forms

    assert "franklin fueling" in name_forms("Franklin Fueling System")
    assert "schneider electric" in name_forms("Schneider Electric Software, LLC")
    assert "bently nevada" in name_forms("Baker Hughes - Bently Nevada")
    assert name_forms("Advantech") == ("advantech",)
