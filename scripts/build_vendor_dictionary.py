"""Build ``retrieval/data/vendors.json``: KEV vendor/product names plus hand-kept aliases.

Why generated: the KEV catalog is where our canonical vendor names come from (KEV records carry
them), and it grows; re-running this script after a KEV update picks up new vendors and products.
Why hand data on top: KEV does not know "EXO", "Citrix Bleed", "GCP" or that "Exchange" near
"crypto" is not Microsoft's, and it names products in ways nobody writes ("iOS, iPadOS, and macOS",
"Multiple Products"). The hand section below is the place to fix what people actually write.

Usage::

    python scripts/build_vendor_dictionary.py [--kev PATH] [--out PATH] [--check]

``--check`` exits non-zero when the committed file differs from what would be built (for CI).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KEV = ROOT.parent / "shared" / "fixtures" / "kev" / "known_exploited_vulnerabilities.json"
DEFAULT_OUT = ROOT / "retrieval" / "data" / "vendors.json"

AliasSpec = str | dict[str, Any]

# ---------------------------------------------------------------------------------------------------------------
# Context rules for aliases that are also ordinary words. See retrieval.vendors.ContextRule.
# ---------------------------------------------------------------------------------------------------------------

_CRYPTO = [
    "crypto",
    "cryptocurrency",
    "cryptocurrencies",
    "bitcoin",
    "btc",
    "ethereum",
    "eth",
    "blockchain",
    "defi",
    "token",
    "tokens",
    "stablecoin",
    "altcoin",
    "coin",
    "coins",
    "Binance",
    "Coinbase",
    "Bybit",
    "Kraken",
    "OKX",
    "KuCoin",
    "Bitfinex",
    "Bitstamp",
    "Gemini",
    "Upbit",
    "Bithumb",
    "HTX",
    "Huobi",
    "Gate.io",
    "MEXC",
    "WazirX",
    "CoinDCX",
    "BtcTurk",
    "FTX",
    "Poloniex",
    "CoinEx",
    "Bitget",
    "Crypto.com",
    "DEX",
    "DEXs",
    "wallet",
    "wallets",
    "hot wallet",
    "trading",
    "traders",
    "stock",
    "stocks",
    "securities",
    "forex",
    "Lazarus",
    "memecoin",
    "NFT",
    "Web3",
]

RULES: dict[str, dict[str, Any]] = {
    # "Exchange": Microsoft's mail server, or a crypto/stock exchange, the SEC, a key exchange…
    "exchange": {
        "require": [
            "Microsoft",
            "MSFT",
            "Online",
            "Server",
            "Servers",
            "OWA",
            "Outlook",
            "mail",
            "email",
            "e-mail",
            "emails",
            "mailbox",
            "mailboxes",
            "mail flow",
            "SMTP",
            "outage",
            "outages",
            "down",
            "degraded",
            "disruption",
            "not working",
            "M365",
            "Microsoft 365",
            "Office 365",
            "O365",
            "on-prem",
            "on-premises",
            "ProxyLogon",
            "ProxyShell",
            "ProxyNotShell",
            "Hafnium",
            "EWS",
            "Exchange Web Services",
            "Autodiscover",
            "ECP",
            "CU",
            "cumulative update",
            "Patch Tuesday",
            "IIS",
        ],
        "veto_near": _CRYPTO,
        "veto_before": r"(?:securities\s+and|stock|crypto(?:currency)?|currency|foreign|key|data|information|"
        r"intelligence|threat|file|commodities|bitcoin|digital\s+asset|asset|token|decentralized|centralized|"
        r"health\s+insurance|insurance|student|cultural|prisoner|fire|heat|ion|gas|diffie-hellman|"
        r"\bin|(?:an|the)\s+\w+)",
        "veto_after": r"(?:commission|act\b|rate|rates|-traded|traded|listing|listed|"
        r"token|wallet|of\b|between|program|programme|student|\w+ing\s+(?:crypto|bitcoin|funds))",
    },
    # "Teams": Microsoft Teams, or security/IT/red teams.
    "teams": {
        "require": [
            "Microsoft",
            "MS",
            "chat",
            "chats",
            "meeting",
            "meetings",
            "call",
            "calls",
            "message",
            "messages",
            "messaging",
            "Slack",
            "Zoom",
            "Outlook",
            "M365",
            "Microsoft 365",
            "Office 365",
            "outage",
            "outages",
            "down",
            "phishing",
            "vishing",
            "help desk",
            "helpdesk",
        ],
        "veto_before": r"(?:security|it|soc|red|blue|purple|response|incident|dev|development|engineering|sales|"
        r"support|ops|secops|devops|cyber|hunt|hunting|threat|research|product|legal|our|your|their|two|three|"
        r"several|many|multiple|tiger|national|football|sports|rival|\bof)",
        "veto_after": r"(?:of\b|must|should|need|are|were|have|can|struggle|who|that)",
    },
    # "Outlook": the mail client, or "threat outlook 2026".
    "outlook": {
        "require": [
            "Microsoft",
            "MS",
            "email",
            "emails",
            "e-mail",
            "mail",
            "mailbox",
            "inbox",
            "calendar",
            "Exchange",
            "OWA",
            "M365",
            "Microsoft 365",
            "Office",
            "Office 365",
            "outage",
            "outages",
            "down",
            "zero-click",
            "client",
            "add-in",
            "add-ins",
            "attachment",
            "preview pane",
            "CVE",
        ],
        "veto_before": r"(?:threat|security|economic|market|business|financial|global|annual|industry|cyber|"
        r"positive|negative|stable|bleak|\d{4})",
        "veto_after": r"(?:for\b|on\b|20\d\d|report)",
    },
    # "Edge": Microsoft's browser, or edge devices / network edge.
    "edge": {
        "require": ["browser", "browsers", "Chromium", "Chrome", "Firefox", "Microsoft", "extension", "extensions"],
        "veto_after": r"(?:device|devices|network|networks|computing|router|routers|appliance|appliances|"
        r"infrastructure|node|nodes|location|locations|server|servers|case|cases|of\b)",
        "veto_before": r"(?:network|the|cutting|leading|competitive|an|on\s+the|at\s+the|sd-wan|service)",
    },
    # "Confluence": Atlassian's wiki, or "a confluence of factors".
    "confluence": {"veto_after": r"of\b", "veto_before": r"(?:a|the)"},
    # "Progress": the MOVEit vendor, or progress in general.
    "progress": {
        "require": [
            "MOVEit",
            "Telerik",
            "WhatsUp Gold",
            "WS_FTP",
            "Kemp",
            "LoadMaster",
            "Sitefinity",
            "OpenEdge",
            "Chef",
            "Flowmon",
            "ShareFile",
            "DataDirect",
            "vendor",
            "patch",
            "patched",
            "patches",
            "advisory",
            "CVE",
        ],
        "veto_before": r"(?:in|making|made|make|no|little|slow|significant|steady|work\s+in|good|great)",
        "veto_after": r"(?:in\b|on\b|toward|towards|report|made|has\s+been|bar)",
    },
    # "Arm": the chip designer, or "arm yourself", "armed".
    "arm": {
        "require": ["Mali", "GPU", "chip", "chips", "chipset", "CPU", "processor", "processors", "Cortex", "SoC"],
        "strict": True,
        "veto_before": r"(?:an|the|his|her|investment|research|military|strong)",
    },
    # "Intel": the chip maker, or threat intel.
    "intel": {
        "veto_before": r"(?:threat|cyber|open[- ]source|signals|human|market|business|competitive|actionable|"
        r"osint|security|dark\s+web|the\s+latest|latest|fresh|new|any|some|more|good|no|share|sharing|gather)",
        "veto_after": r"(?:report|reports|sharing|feed|feeds|analyst|analysts|team|briefing|summary|roundup|"
        r"community|agencies|agency|officials|chiefs?|on\b|about\b|regarding\b|for\b)",
    },
    # "Oracle": the vendor, or a padding oracle / price oracle (DeFi).
    "oracle": {
        "veto_before": r"(?:padding|price|decryption|timing|random|blockchain|chainlink|an)",
        "veto_near": ["DeFi", "smart contract", "oracle manipulation", "price feed"],
        "veto_after": r"(?:attack|attacks|manipulation)",
    },
    # "Falcon": CrowdStrike's sensor, or Falcon 9, birds, the Falcon malware loader names.
    "falcon": {
        "require": ["CrowdStrike", "sensor", "EDR", "agent", "update", "BSOD", "blue screen", "content update"],
    },
    # "Windows": the OS, or maintenance/time windows.
    "windows": {
        "veto_before": r"(?:maintenance|time|change|exposure|attack|release|delivery|launch|open|broken|"
        r"stained|car|double)",
        "veto_after": r"(?:of\s+(?:opportunity|time|exposure))",
    },
    # "Zoom": the video service, or "zoom in".
    "zoom": {"veto_after": r"(?:in\b|out\b|level)"},
    # "Apple": the company, never the fruit in security news, but "Big Apple" is New York.
    "apple": {"veto_before": r"(?:big|the\s+big|adam's)"},
    # "Meta": the company, or "meta" as a prefix/word.
    "meta": {"veto_after": r"(?:data|description|tags?|analysis|-analysis)"},
    # "Chrome": the browser, or chrome plating; browser sense dominates, only trim the obvious.
    "chrome": {"veto_before": r"(?:chrome\s+plated|polished)"},
    # "Snowflake": the data cloud, or the snowflake network / "snowflake" as an insult.
    "snowflake": {"veto_after": r"(?:proxy|proxies|pattern)"},
    # "Slack": the chat service; lower-case "slack" is loose/idle and is excluded by case sensitivity already.
    "slack": {"veto_after": r"(?:off|time|space|period)"},
}

# ---------------------------------------------------------------------------------------------------------------
# Vendors. Keys are canonical names (KEV's spelling where KEV has the vendor).
#   aliases: extra ways to write the vendor; {"case_sensitive": True} for short upper-case forms and words,
#            {"prefix": True} if the alias is also used in front of product names ("MS Teams").
#   bare: False if the canonical name alone must NOT be an alias (an English word: "Nice", "Quest").
#   name_alias: a spec overriding how the canonical name itself is matched (case, rule).
# ---------------------------------------------------------------------------------------------------------------

VENDORS: dict[str, dict[str, Any]] = {
    "Microsoft": {
        "aliases": [
            "Microsoft Corporation",
            "Microsoft Corp",
            {"text": "MSFT", "case_sensitive": True},
            {"text": "MS", "case_sensitive": True, "prefix": True, "rule": "ms"},
            "MSRC",
            "Microsoft Security Response Center",
        ]
    },
    "GitHub": {"aliases": ["GitHub Inc"]},
    "Cloudflare": {},
    "Google": {"aliases": ["Alphabet", "Google LLC"]},
    "Amazon": {"aliases": ["Amazon.com"]},
    "Okta": {},
    "Fortinet": {},
    "Ivanti": {"kev_names": ["Pulse Secure"]},
    "Citrix": {"aliases": ["Cloud Software Group"]},
    "Progress": {
        "aliases": ["Progress Software", "Progress Software Corporation"],
        "name_alias": {"text": "Progress", "case_sensitive": True, "rule": "progress"},
    },
    "Palo Alto Networks": {"aliases": ["Palo Alto", {"text": "PANW", "case_sensitive": True}, "Unit 42"]},
    "Cisco": {"aliases": ["Cisco Systems", "Cisco Talos", "Talos"]},
    "VMware": {"kev_names": ["VMware Tanzu"], "aliases": ["VMware by Broadcom"]},
    "Atlassian": {},
    "Apple": {"name_alias": {"text": "Apple", "case_sensitive": True, "rule": "apple"}},
    "Mozilla": {},
    "Oracle": {"name_alias": {"text": "Oracle", "case_sensitive": True, "rule": "oracle"}},
    "SAP": {"aliases": ["SAP SE"], "name_alias": {"text": "SAP", "case_sensitive": True}},
    "Apache": {"aliases": ["Apache Software Foundation", "ASF"]},
    "Linux": {"name_alias": {"text": "Linux", "case_sensitive": False}},
    "Slack": {
        "aliases": ["Slack Technologies"],
        "name_alias": {"text": "Slack", "case_sensitive": True, "rule": "slack"},
    },
    "Zoom": {
        "aliases": ["Zoom Video Communications", "Zoom Video"],
        "name_alias": {"text": "Zoom", "case_sensitive": True, "rule": "zoom"},
    },
    "Salesforce": {},
    "Snowflake": {"name_alias": {"text": "Snowflake", "case_sensitive": True, "rule": "snowflake"}},
    "CrowdStrike": {},
    "SonicWall": {},
    "Juniper": {"aliases": ["Juniper Networks"]},
    "F5": {"aliases": ["F5 Networks"], "name_alias": {"text": "F5", "case_sensitive": True, "rule": "f5"}},
    "Veeam": {},
    "Synacor": {},
    "WordPress": {"aliases": ["WordPress.org", "Automattic"]},
    "Barracuda Networks": {"aliases": ["Barracuda"]},
    "3CX": {},
    "Kaseya": {},
    "SolarWinds": {},
    "ConnectWise": {},
    "Adobe": {},
    "Samsung": {},
    "Zyxel": {"aliases": ["ZyXEL Communications"]},
    "QNAP": {"kev_names": ["QNAP Systems"], "aliases": ["QNAP Systems"]},
    "D-Link": {"kev_names": ["D-Link and TRENDnet"]},
    "TP-Link": {},
    "NETGEAR": {},
    "Trend Micro": {},
    "Sophos": {},
    "Check Point": {"aliases": ["Check Point Software", "Check Point Research"]},
    "WatchGuard": {},
    "Zoho": {},
    "Mitel": {},
    "Jenkins": {},
    "GitLab": {},
    "JetBrains": {},
    "Fortra": {"aliases": ["HelpSystems"]},
    "Cleo": {"name_alias": {"text": "Cleo", "case_sensitive": True}},
    "CrushFTP": {},
    "PaperCut": {},
    "BeyondTrust": {},
    "Commvault": {},
    "SysAid": {},
    "Roundcube": {},
    "Docker": {"name_alias": {"text": "Docker", "case_sensitive": True}},
    "Redis": {},
    "OpenSSL": {},
    "OpenBSD": {},
    "Meta Platforms": {
        "aliases": [{"text": "Meta", "case_sensitive": True, "rule": "meta"}, "Facebook", "Meta Platforms Inc"]
    },
    "Dell": {"name_alias": {"text": "Dell", "case_sensitive": True}, "aliases": ["Dell Technologies"]},
    "Hewlett Packard": {
        "kev_names": ["Hewlett Packard (HP)"],
        "aliases": [{"text": "HP", "case_sensitive": True}, "HPE", "Hewlett Packard Enterprise", "Hewlett-Packard"],
    },
    "Intel": {"name_alias": {"text": "Intel", "case_sensitive": True, "rule": "intel"}},
    "Arm": {
        "aliases": ["Arm Holdings", "Arm Ltd"],
        "name_alias": {"text": "Arm", "case_sensitive": True, "rule": "arm"},
    },
    "Qualcomm": {},
    "MediaTek": {},
    "Broadcom": {},
    "Samba": {"name_alias": {"text": "Samba", "case_sensitive": True}},
    "Siemens": {},
    "Schneider Electric": {},
    "Rockwell Automation": {},
    "Lenovo": {},
    "AMD": {"aliases": ["Advanced Micro Devices"]},
    "NVIDIA": {"aliases": ["Nvidia"]},
    "Huawei": {},
    "Hikvision": {},
    "Dahua": {},
    "Kaspersky": {},
    "ESET": {},
    "Bitdefender": {},
    "SentinelOne": {},
    "Palantir": {},
    "Proofpoint": {},
    "Mimecast": {},
    "Zscaler": {},
    "Netskope": {},
    "Akamai": {},
    "Fastly": {},
    "Rapid7": {},
    "Tenable": {},
    "Mandiant": {},
    "OpenAI": {},
    "Anthropic": {},
    "IBM": {"aliases": ["International Business Machines"]},
    "Red Hat": {},
    "Canonical": {"name_alias": {"text": "Canonical", "case_sensitive": True}, "aliases": ["Ubuntu"]},
    "Elastic": {"name_alias": {"text": "Elastic", "case_sensitive": True}},
    "ServiceNow": {},
    "Twilio": {},
    "Workday": {},
    "Ticketmaster": {},
    "Snapchat": {},
    "X": {"bare": False, "aliases": ["Twitter"]},
    "Telegram": {},
    "Signal": {"bare": False, "aliases": ["Signal Messenger"]},
    "Android": {},
    "Nice": {"bare": False, "aliases": ["NICE Systems"]},
    "Quest": {"bare": False, "aliases": ["Quest Software"]},
    "Checkbox": {"bare": False},
    "Looking Glass": {"bare": False},
    "Rails": {"bare": False},
    "Git": {"name_alias": {"text": "Git", "case_sensitive": True}},
    "Sudo": {"name_alias": {"text": "sudo", "case_sensitive": False}},
    "PHP": {"kev_names": ["PHP Group"]},
    "Perl": {"name_alias": {"text": "Perl", "case_sensitive": True}},
    "Plex": {"name_alias": {"text": "Plex", "case_sensitive": True}},
    "PEAR": {"name_alias": {"text": "PEAR", "case_sensitive": True}},
    "Cacti": {"name_alias": {"text": "Cacti", "case_sensitive": True}},
    "Versa": {"name_alias": {"text": "Versa", "case_sensitive": True}, "aliases": ["Versa Networks"]},
    "GNU": {"name_alias": {"text": "GNU", "case_sensitive": True}},
    "Wing FTP Server": {"aliases": ["Wing FTP"]},
    "North Grid": {"name_alias": {"text": "North Grid", "case_sensitive": True}},
    "Craft CMS": {},
    "Trimble": {},
    "Unitronics": {},
    "Erlang": {},
}

#: KEV vendorProject values that are not one vendor, or are a package ecosystem rather than a vendor.
SKIP_KEV_VENDORS = {"npm package"}

# ---------------------------------------------------------------------------------------------------------------
# Products: families people name as one thing. kev: KEV product strings that mean this product (they are
# folded into it rather than becoming products of their own). aliases: AliasSpecs as above.
# "bare": False if the product's name alone is too generic to match ("Office", "Server"); it still matches
# behind its vendor name ("Microsoft Office").
# ---------------------------------------------------------------------------------------------------------------

PRODUCTS: list[dict[str, Any]] = [
    # -- Microsoft
    {
        "vendor": "Microsoft",
        "name": "Exchange",
        "kev": ["Exchange Server", "Exchange"],
        "aliases": [
            "Exchange Online",
            "Exchange Server",
            "Exchange Servers",
            "Exchange Server 2016",
            "Exchange Server 2019",
            {"text": "EXO", "case_sensitive": True},
            {"text": "OWA", "case_sensitive": True},
            "Outlook Web Access",
            "Outlook Web App",
            "Outlook on the web",
            "ProxyLogon",
            "ProxyShell",
            "ProxyNotShell",
            {"text": "Exchange", "rule": "exchange"},
        ],
    },
    {
        "vendor": "Microsoft",
        "name": "Outlook",
        "kev": ["Outlook", "Office Outlook"],
        "aliases": [{"text": "Outlook", "case_sensitive": True, "rule": "outlook"}, "Outlook.com", "new Outlook"],
    },
    {
        "vendor": "Microsoft",
        "name": "Microsoft 365",
        "aliases": [
            "M365",
            "Office 365",
            "O365",
            "Microsoft 365",
            "Microsoft Office 365",
            "Microsoft 365 Copilot",
            "MS365",
        ],
    },
    {
        "vendor": "Microsoft",
        "name": "Office",
        "kev": ["Office", "Word", "Excel", "PowerPoint", "Publisher", "Office and WordPad"],
        "bare": False,
        "aliases": [{"text": "MS Office", "case_sensitive": False}],
    },
    {
        "vendor": "Microsoft",
        "name": "Teams",
        "aliases": [{"text": "Teams", "case_sensitive": True, "rule": "teams"}],
    },
    {"vendor": "Microsoft", "name": "Azure", "aliases": ["Azure", "Microsoft Azure", "Azure Front Door"]},
    {
        "vendor": "Microsoft",
        "name": "Entra ID",
        "aliases": ["Entra ID", "Entra", "Azure AD", "Azure Active Directory", {"text": "AAD", "case_sensitive": True}],
    },
    {"vendor": "Microsoft", "name": "Active Directory", "kev": ["Active Directory"], "aliases": ["Active Directory"]},
    {
        "vendor": "Microsoft",
        "name": "Windows",
        "kev": [
            "Windows",
            "Win32k",
            "Windows CNG Key Isolation Service",
            "Windows COM+ Event System Service",
            "SMBv1",
            "SMBv1 server",
            "SMBv3",
            "Task Scheduler",
            "Graphics Component",
            "Graphics Device Interface (GDI)",
            "DirectX Graphics Kernel (DXGKRNL)",
            "Client-Server Run-time Subsystem (CSRSS)",
            "Ancillary Function Driver (afd.sys)",
            "Kerberos Key Distribution Center (KDC)",
            "Netlogon",
            "DWM Core Library",
            "SmartScreen Prompt",
            "Update Notification Manager",
            "Remote Desktop Services",
            "WinVerifyTrust function",
            "ATM Font Driver",
            "HTTP.sys",
            "HTTP Protocol Stack",
            "Input Method Editor (IME) Japanese",
            "Enhanced Cryptographic Provider",
            "MSHTML",
            "Streaming Service",
            "Streaming Service Proxy",
            "WordPad",
            "Hyper-V RemoteFX",
        ],
        "aliases": [
            {"text": "Windows", "case_sensitive": True, "rule": "windows"},
            "Windows 10",
            "Windows 11",
            "Windows Server",
            "Win32k",
            "MSHTML",
            "Netlogon",
            "Zerologon",
            "PrintNightmare",
            "Windows SmartScreen",
            "Windows Defender",
        ],
    },
    {
        "vendor": "Microsoft",
        "name": "SharePoint",
        "kev": ["SharePoint", "SharePoint Server"],
        "aliases": ["SharePoint"],
    },
    {
        "vendor": "Microsoft",
        "name": "Edge",
        "kev": ["Edge", "Edge and Internet Explorer"],
        "aliases": [{"text": "Edge", "case_sensitive": True, "rule": "edge"}],
    },
    {
        "vendor": "Microsoft",
        "name": "Internet Explorer",
        "kev": ["Internet Explorer", "Internet Explorer and Edge", "Internet Explorer Scripting Engine"],
        "aliases": ["Internet Explorer", {"text": "IE", "case_sensitive": True, "rule": "ie"}],
    },
    {
        "vendor": "Microsoft",
        "name": "Defender",
        "kev": ["Defender", "Malware Protection Engine"],
        "bare": False,
        "aliases": ["Defender for Endpoint", "Defender for Office 365", "Defender XDR"],
    },
    {
        "vendor": "Microsoft",
        "name": ".NET",
        "kev": [".NET Framework", ".NET Core and Visual Studio", ".NET Framework, SharePoint, Visual Studio"],
        "aliases": [".NET Framework", ".NET Core", "ASP.NET Core"],
    },
    {"vendor": "Microsoft", "name": "Copilot", "bare": False, "aliases": ["Microsoft Copilot", "Copilot Studio"]},
    {"vendor": "Microsoft", "name": "Visual Studio", "aliases": ["Visual Studio", "VS Code", "Visual Studio Code"]},
    {"vendor": "Microsoft", "name": "SQL Server", "kev": ["SQL Server"], "aliases": [{"text": "MSSQL"}]},
    {"vendor": "Microsoft", "name": "IIS", "kev": ["Internet Information Services (IIS)"], "aliases": ["IIS"]},
    {"vendor": "Microsoft", "name": "Skype for Business", "kev": ["Skype for Business"], "aliases": ["Skype"]},
    # -- GitHub (its own vendor, though Microsoft-owned: status pages and news treat it so)
    {"vendor": "GitHub", "name": "GitHub Actions", "aliases": ["GitHub Actions"]},
    {"vendor": "GitHub", "name": "GitHub Copilot", "aliases": ["GitHub Copilot"]},
    {"vendor": "GitHub", "name": "Codespaces", "aliases": ["Codespaces", "GitHub Codespaces"]},
    # -- Cloud platforms
    {
        "vendor": "Google",
        "name": "Google Cloud",
        "aliases": [
            "Google Cloud",
            "Google Cloud Platform",
            {"text": "GCP", "case_sensitive": True},
            "Google Compute Engine",
            "Google Kubernetes Engine",
            {"text": "GKE", "case_sensitive": True},
            "BigQuery",
        ],
    },
    {"vendor": "Google", "name": "Gmail", "aliases": ["Gmail"]},
    {"vendor": "Google", "name": "Google Workspace", "aliases": ["Google Workspace", "G Suite"]},
    {
        "vendor": "Google",
        "name": "Chrome",
        "kev_pattern": r"^(?:Chromium|Chrome)\b",
        "aliases": [
            {"text": "Chrome", "rule": "chrome"},
            "Google Chrome",
            "Chromium",
            {"text": "V8", "case_sensitive": True},
            "ChromeOS",
            "Chrome OS",
        ],
    },
    {"vendor": "Google", "name": "Pixel", "kev": ["Pixel"], "bare": False, "aliases": ["Pixel phones"]},
    {"vendor": "Android", "name": "Android", "kev": ["Android OS", "Android Kernel", "Framework", "Kernel"]},
    {
        "vendor": "Amazon",
        "name": "AWS",
        "aliases": [
            {"text": "AWS", "case_sensitive": True},
            "Amazon Web Services",
            {"text": "EC2", "case_sensitive": True},
            {"text": "S3", "case_sensitive": True, "rule": "s3"},
            "Amazon S3",
            "AWS Lambda",
            "Route 53",
        ],
    },
    {
        "vendor": "Cloudflare",
        "name": "Cloudflare",
        "bare": False,
        "aliases": ["Cloudflare Workers", "Cloudflare WARP", "Cloudflare Zero Trust", "1.1.1.1"],
    },
    # -- Network edge and VPN
    {
        "vendor": "Fortinet",
        "name": "FortiOS",
        "kev_pattern": r"^FortiOS\b",
        "aliases": ["FortiOS", "FortiGate", "FortiGates", "FortiGate SSL-VPN", "FortiOS SSL-VPN", "FortiProxy"],
    },
    {"vendor": "Fortinet", "name": "FortiManager", "kev": ["FortiManager"], "aliases": ["FortiManager", "FortiJump"]},
    {"vendor": "Fortinet", "name": "FortiWeb", "kev": ["FortiWeb"], "aliases": ["FortiWeb"]},
    {"vendor": "Fortinet", "name": "FortiClient EMS", "kev": ["FortiClient EMS"], "aliases": ["FortiClient EMS"]},
    {"vendor": "Fortinet", "name": "FortiSIEM", "aliases": ["FortiSIEM"]},
    {"vendor": "Fortinet", "name": "FortiClient", "aliases": ["FortiClient"]},
    {"vendor": "Fortinet", "name": "FortiVoice", "aliases": ["FortiVoice"]},
    {"vendor": "Fortinet", "name": "FortiADC", "aliases": ["FortiADC"]},
    {
        "vendor": "Ivanti",
        "name": "Connect Secure",
        "kev": [
            "Pulse Connect Secure",
            "Connect Secure, Policy Secure, and ZTA Gateways",
            "Connect Secure and Policy Secure",
            "Connect Secure, Policy Secure, and Neurons",
            "Pulse Connect Secure and Pulse Policy Secure",
        ],
        "aliases": [
            "Connect Secure",
            "Ivanti Connect Secure",
            "Pulse Connect Secure",
            "Pulse Secure",
            "Pulse Secure VPN",
            {"text": "ICS", "case_sensitive": True, "rule": "ivanti_ics"},
            "Policy Secure",
        ],
    },
    {
        "vendor": "Ivanti",
        "name": "Endpoint Manager Mobile",
        "kev": [
            "Endpoint Manager Mobile (EPMM)",
            "Endpoint Manager Mobile (EPMM) and MobileIron Core",
            "MobileIron Multiple Products",
        ],
        "aliases": [
            "Endpoint Manager Mobile",
            {"text": "EPMM", "case_sensitive": True},
            "MobileIron",
            "MobileIron Core",
        ],
    },
    {
        "vendor": "Ivanti",
        "name": "Endpoint Manager",
        "kev": ["Endpoint Manager (EPM)", "Endpoint Manager Cloud Service Appliance (EPM CSA)"],
        "bare": False,
        "aliases": [{"text": "EPM", "case_sensitive": True, "rule": "ivanti_epm"}],
    },
    {
        "vendor": "Ivanti",
        "name": "Cloud Services Appliance",
        "kev": ["Cloud Services Appliance (CSA)", "Cloud Services Appliance"],
        "bare": False,
    },
    {
        "vendor": "Citrix",
        "name": "NetScaler",
        "kev_pattern": r"NetScaler|Application Delivery Controller",
        "aliases": [
            "NetScaler",
            "NetScaler ADC",
            "NetScaler Gateway",
            "Citrix ADC",
            "Citrix Gateway",
            "Citrix Bleed",
            "CitrixBleed",
            "Citrix Bleed 2",
            "CitrixBleed2",
        ],
    },
    {"vendor": "Citrix", "name": "ShareFile", "kev": ["ShareFile", "Content Collaboration"], "aliases": ["ShareFile"]},
    {
        "vendor": "Palo Alto Networks",
        "name": "PAN-OS",
        "kev": ["PAN-OS"],
        "aliases": ["PAN-OS", "PANOS", "GlobalProtect", "Palo Alto firewall", "Palo Alto firewalls"],
    },
    {"vendor": "Palo Alto Networks", "name": "Expedition", "kev": ["Expedition"], "bare": False},
    {"vendor": "Palo Alto Networks", "name": "Cortex XDR", "aliases": ["Cortex XDR", "Cortex XSOAR"]},
    {
        "vendor": "Cisco",
        "name": "IOS XE",
        "kev": ["IOS XE Software", "IOS XE Web UI", "Cisco IOS XE Web UI"],
        "aliases": ["IOS XE", "IOS-XE"],
    },
    {
        "vendor": "Cisco",
        "name": "IOS",
        "kev": [
            "IOS",
            "IOS software",
            "IOS Software",
            "IOS and IOS XE Software",
            "IOS and IOS XE",
            "IOS Software and Cisco IOS XE Software",
            "IOS, XR, and XE Software",
            "IOS, IOS XR, and IOS XE",
        ],
        "aliases": [{"text": "IOS", "case_sensitive": True}],
    },
    {"vendor": "Cisco", "name": "IOS XR", "kev": ["IOS XR"], "aliases": ["IOS XR", "IOS-XR"]},
    {
        "vendor": "Cisco",
        "name": "ASA",
        "kev_pattern": r"Adaptive Security Appliance",
        "aliases": [
            {"text": "ASA", "case_sensitive": True},
            "Adaptive Security Appliance",
            "Firepower Threat Defense",
            {"text": "FTD", "case_sensitive": True, "rule": "cisco_ftd"},
            "Firepower",
        ],
    },
    {
        "vendor": "Cisco",
        "name": "Identity Services Engine",
        "kev": ["Identity Services Engine"],
        "aliases": ["Cisco ISE"],
    },
    {"vendor": "Cisco", "name": "NX-OS", "kev": ["NX-OS"], "aliases": ["NX-OS"]},
    {"vendor": "Cisco", "name": "AnyConnect", "kev": ["AnyConnect Secure"], "aliases": ["AnyConnect"]},
    {"vendor": "Cisco", "name": "Webex", "aliases": ["Webex"]},
    {
        "vendor": "Juniper",
        "name": "Junos OS",
        "kev": ["Junos OS"],
        "aliases": ["Junos", "Junos OS", "Juniper SRX", "SRX firewalls"],
    },
    {
        "vendor": "F5",
        "name": "BIG-IP",
        "kev_pattern": r"^BIG-IP",
        "aliases": ["BIG-IP", "BIG-IQ", "BIG-IP Configuration Utility"],
    },
    {
        "vendor": "SonicWall",
        "name": "SonicOS",
        "kev": ["SonicOS"],
        "aliases": ["SonicOS"],
    },
    {
        "vendor": "SonicWall",
        "name": "SMA",
        "kev_pattern": r"^(?:SSLVPN )?SMA",
        "aliases": ["SMA 100", "SMA100", "SMA1000", "SMA 1000", "Secure Mobile Access"],
    },
    {"vendor": "Check Point", "name": "Quantum Security Gateways", "kev": ["Quantum Security Gateways"]},
    {"vendor": "Zyxel", "name": "Zyxel firewalls", "kev": ["Multiple Firewalls"], "bare": False},
    {
        "vendor": "Barracuda Networks",
        "name": "Email Security Gateway",
        "kev": ["Email Security Gateway (ESG) Appliance"],
        "aliases": ["Barracuda ESG", "Email Security Gateway"],
    },
    # -- Virtualisation, identity, collaboration
    {
        "vendor": "VMware",
        "name": "ESXi",
        "kev_pattern": r"ESXi",
        "aliases": ["ESXi", "VMware ESXi", "ESXi hypervisor", "ESXi hypervisors"],
    },
    {
        "vendor": "VMware",
        "name": "vCenter Server",
        "kev_pattern": r"^vCenter",
        "aliases": ["vCenter", "vCenter Server", "vCSA"],
    },
    {"vendor": "VMware", "name": "Workspace ONE", "kev_pattern": r"^Workspace ONE", "aliases": ["Workspace ONE"]},
    {
        "vendor": "VMware",
        "name": "Aria Operations",
        "kev_pattern": r"^(?:Aria|vRealize)",
        "aliases": ["Aria Operations"],
    },
    {"vendor": "VMware", "name": "Tools", "kev": ["Tools"], "bare": False},
    {
        "vendor": "VMware",
        "name": "Spring",
        "kev_pattern": r"^Spring",
        "bare": False,
        "aliases": ["Spring Framework", "Spring4Shell", "Spring Cloud"],
    },
    {"vendor": "Okta", "name": "Okta", "bare": False, "aliases": ["Okta Workforce Identity", "Okta support system"]},
    {
        "vendor": "Atlassian",
        "name": "Confluence",
        "kev_pattern": r"^Confluence",
        "aliases": [
            {"text": "Confluence", "case_sensitive": True, "rule": "confluence"},
            "Confluence Server",
            "Confluence Data Center",
        ],
    },
    {"vendor": "Atlassian", "name": "Jira", "kev_pattern": r"^Jira", "aliases": ["Jira", "Jira Service Management"]},
    {"vendor": "Atlassian", "name": "Bitbucket", "kev_pattern": r"^Bitbucket", "aliases": ["Bitbucket"]},
    {"vendor": "Atlassian", "name": "Crowd", "kev_pattern": r"^Crowd", "bare": False},
    {"vendor": "Slack", "name": "Slack", "bare": False, "aliases": []},
    # -- Apple, Mozilla, Oracle, SAP, Apache, Linux
    {
        "vendor": "Apple",
        "name": "iOS",
        "kev_pattern": r"^iOS",
        "aliases": [
            {"text": "iOS", "case_sensitive": True},
            {"text": "ios", "case_sensitive": True},
            "iPhone",
            "iPhones",
            "iPadOS",
        ],
    },
    {"vendor": "Apple", "name": "macOS", "kev_pattern": r"^(?:macOS|OS X)", "aliases": ["macOS", "Mac OS", "OS X"]},
    {"vendor": "Apple", "name": "Safari", "aliases": ["Safari"]},
    {"vendor": "Apple", "name": "WebKit", "aliases": ["WebKit"]},
    {"vendor": "Apple", "name": "watchOS", "aliases": ["watchOS"]},
    {"vendor": "Apple", "name": "visionOS", "aliases": ["visionOS"]},
    {
        "vendor": "Mozilla",
        "name": "Firefox",
        "kev_pattern": r"^Firefox",
        "aliases": ["Firefox", "Firefox ESR"],
    },
    {"vendor": "Mozilla", "name": "Thunderbird", "aliases": ["Thunderbird"]},
    {
        "vendor": "Oracle",
        "name": "WebLogic Server",
        "kev": ["WebLogic Server"],
        "aliases": ["WebLogic", "WebLogic Server"],
    },
    {
        "vendor": "Oracle",
        "name": "Java",
        "kev_pattern": r"^Java",
        "bare": False,
        "aliases": ["Java SE", {"text": "JRE", "case_sensitive": True}, {"text": "JDK", "case_sensitive": True}],
    },
    {
        "vendor": "Oracle",
        "name": "E-Business Suite",
        "kev": ["E-Business Suite"],
        "aliases": ["E-Business Suite", "Oracle EBS"],
    },
    {
        "vendor": "Oracle",
        "name": "Oracle Cloud",
        "aliases": [
            "Oracle Cloud",
            "Oracle Cloud Infrastructure",
            {"text": "OCI", "case_sensitive": True, "rule": "oci"},
        ],
    },
    {"vendor": "Oracle", "name": "VirtualBox", "kev": ["VirtualBox"], "aliases": ["VirtualBox"]},
    {"vendor": "SAP", "name": "NetWeaver", "kev": ["NetWeaver"], "aliases": ["NetWeaver", "SAP Visual Composer"]},
    {
        "vendor": "Apache",
        "name": "Log4j",
        "kev": ["Log4j2"],
        "aliases": ["Log4j", "Log4j2", "Log4Shell", "Log4j 2"],
    },
    {"vendor": "Apache", "name": "Struts", "kev_pattern": r"^Struts", "aliases": ["Struts", "Struts 2", "Struts2"]},
    {"vendor": "Apache", "name": "Tomcat", "kev": ["Tomcat"], "aliases": ["Tomcat"]},
    {"vendor": "Apache", "name": "ActiveMQ", "kev": ["ActiveMQ"], "aliases": ["ActiveMQ"]},
    {"vendor": "Apache", "name": "OFBiz", "kev": ["OFBiz"], "aliases": ["OFBiz"]},
    {"vendor": "Apache", "name": "HTTP Server", "kev": ["HTTP Server", "Apache"], "bare": False, "aliases": ["httpd"]},
    {"vendor": "Linux", "name": "Linux kernel", "kev": ["Kernel"], "aliases": ["Linux kernel", "Linux kernels"]},
    # -- File transfer, backup, remote management
    {
        "vendor": "Progress",
        "name": "MOVEit Transfer",
        "kev": ["MOVEit Transfer"],
        "aliases": ["MOVEit", "MOVEit Transfer", "MOVEit Cloud"],
    },
    {"vendor": "Progress", "name": "WS_FTP Server", "kev": ["WS_FTP Server"], "aliases": ["WS_FTP"]},
    {"vendor": "Progress", "name": "WhatsUp Gold", "kev": ["WhatsUp Gold"], "aliases": ["WhatsUp Gold"]},
    {
        "vendor": "Progress",
        "name": "Telerik",
        "kev": ["Telerik Report Server", "Telerik UI for ASP.NET AJAX", "ASP.NET AJAX and Sitefinity"],
        "aliases": ["Telerik", "Telerik Report Server", "Sitefinity"],
    },
    {
        "vendor": "Progress",
        "name": "Kemp LoadMaster",
        "kev": ["Kemp LoadMaster"],
        "aliases": ["LoadMaster", "Kemp LoadMaster"],
    },
    {
        "vendor": "Veeam",
        "name": "Backup & Replication",
        "kev": ["Backup & Replication"],
        "aliases": ["Veeam Backup", "Veeam Backup & Replication", "Veeam B&R", "VBR"],
    },
    {"vendor": "Kaseya", "name": "VSA", "kev_pattern": r"VSA", "aliases": [{"text": "VSA", "case_sensitive": True}]},
    {
        "vendor": "SolarWinds",
        "name": "Orion",
        "kev": ["Orion"],
        "bare": False,
        "aliases": ["SolarWinds Orion", "SUNBURST"],
    },
    {"vendor": "SolarWinds", "name": "Serv-U", "kev": ["Serv-U"], "aliases": ["Serv-U"]},
    {"vendor": "SolarWinds", "name": "Web Help Desk", "kev": ["Web Help Desk"], "bare": False},
    {
        "vendor": "ConnectWise",
        "name": "ScreenConnect",
        "kev": ["ScreenConnect"],
        "aliases": ["ScreenConnect", "ConnectWise Control"],
    },
    {"vendor": "3CX", "name": "3CX Desktop App", "aliases": ["3CXDesktopApp", "3CX Desktop App", "3CX desktop app"]},
    {
        "vendor": "Fortra",
        "name": "GoAnywhere MFT",
        "kev": ["GoAnywhere MFT"],
        "aliases": ["GoAnywhere", "GoAnywhere MFT"],
    },
    {"vendor": "Fortra", "name": "Cobalt Strike", "kev": ["Cobalt Strike"], "aliases": ["Cobalt Strike"]},
    {
        "vendor": "Cleo",
        "name": "Cleo Harmony",
        "aliases": ["Cleo Harmony", "Cleo VLTrader", "Cleo LexiCom", "VLTrader", "LexiCom"],
    },
    {
        "vendor": "Synacor",
        "name": "Zimbra Collaboration Suite",
        "kev_pattern": r"^Zimbra",
        "aliases": ["Zimbra", "Zimbra Collaboration", "ZCS"],
    },
    # -- Security vendors' own products, SaaS
    {
        "vendor": "CrowdStrike",
        "name": "Falcon",
        "aliases": [{"text": "Falcon", "case_sensitive": True, "rule": "falcon"}, "Falcon sensor"],
    },
    {
        "vendor": "Salesforce",
        "name": "Salesforce",
        "bare": False,
        "aliases": ["Salesforce Experience Cloud", "Salesforce Commerce Cloud"],
    },
    {"vendor": "Snowflake", "name": "Snowflake", "bare": False},
    {"vendor": "Meta Platforms", "name": "WhatsApp", "kev": ["WhatsApp"], "aliases": ["WhatsApp"]},
    {"vendor": "Meta Platforms", "name": "Instagram", "aliases": ["Instagram"]},
    {"vendor": "OpenAI", "name": "ChatGPT", "aliases": ["ChatGPT"]},
    {
        "vendor": "Zoho",
        "name": "ManageEngine",
        "kev_pattern": r"^(?:ManageEngine|Desktop Central)",
        "aliases": ["ManageEngine", "ADSelfService Plus", "ServiceDesk Plus"],
    },
    {"vendor": "JetBrains", "name": "TeamCity", "kev": ["TeamCity"], "aliases": ["TeamCity"]},
    {"vendor": "Adobe", "name": "ColdFusion", "kev": ["ColdFusion"], "aliases": ["ColdFusion"]},
    {
        "vendor": "Adobe",
        "name": "Acrobat Reader",
        "kev": ["Acrobat and Reader", "Reader and Acrobat", "Reader", "Acrobat and Reader, Flash Player"],
        "aliases": ["Acrobat", "Acrobat Reader", "Adobe Reader"],
    },
    {
        "vendor": "Adobe",
        "name": "Flash Player",
        "kev_pattern": r"^Flash Player",
        "aliases": ["Flash Player", "Adobe Flash"],
    },
    {
        "vendor": "Adobe",
        "name": "Commerce",
        "kev": ["Commerce and Magento Open Source"],
        "bare": False,
        "aliases": ["Magento", "Adobe Commerce"],
    },
    {
        "vendor": "Trend Micro",
        "name": "Apex One",
        "kev_pattern": r"^(?:Apex One|OfficeScan)",
        "aliases": ["Apex One", "OfficeScan"],
    },
    {"vendor": "OpenBSD", "name": "OpenSSH", "aliases": ["OpenSSH", "regreSSHion"]},
    {"vendor": "Samsung", "name": "Samsung mobile devices", "kev": ["Mobile Devices"], "bare": False},
    {
        "vendor": "Qualcomm",
        "name": "Qualcomm chipsets",
        "kev_pattern": r"Chipsets|Snapdragon",
        "bare": False,
        "aliases": ["Snapdragon"],
    },
    {"vendor": "MediaTek", "name": "MediaTek chipsets", "kev": ["Multiple Chipsets"], "bare": False},
    {"vendor": "Arm", "name": "Mali GPU", "kev_pattern": r"^Mali", "aliases": ["Mali GPU", "Mali"]},
    {"vendor": "Red Hat", "name": "JBoss", "kev_pattern": r"^JBoss", "aliases": ["JBoss"]},
    {"vendor": "Red Hat", "name": "Polkit", "kev": ["Polkit"], "aliases": ["Polkit", "PwnKit"]},
    {"vendor": "GNU", "name": "Bash", "kev": ["Bourne-Again Shell (Bash)"], "bare": False, "aliases": ["Shellshock"]},
    {"vendor": "GNU", "name": "glibc", "kev": ["GNU C Library"], "aliases": ["glibc", "GNU C Library"]},
    {"vendor": "Rails", "name": "Ruby on Rails", "kev": ["Ruby on Rails"], "aliases": ["Ruby on Rails"]},
    {
        "vendor": "Nice",
        "name": "Linear eMerge E3",
        "kev": ["Linear eMerge E3-Series"],
        "aliases": ["Linear eMerge", "eMerge E3"],
    },
    {"vendor": "Quest", "name": "KACE", "kev": ["KACE System Management Appliance"], "aliases": ["KACE", "Quest KACE"]},
    {"vendor": "Checkbox", "name": "Checkbox Survey", "kev": ["Checkbox Survey"], "aliases": ["Checkbox Survey"]},
    {
        "vendor": "Looking Glass",
        "name": "Multi-Router Looking Glass",
        "kev_pattern": r"Looking Glass",
        "aliases": ["Multi-Router Looking Glass", "MRLG"],
    },
]

#: Rules needed only by hand aliases above whose words are also common abbreviations.
RULES.update(
    {
        "ms": {"veto_after": r"(?:-ISAC|-DOS|\.|-CHAP|\d)", "veto_before": r"(?:\d)"},
        "ie": {
            "require": ["Internet Explorer", "browser", "Microsoft", "MSHTML", "Edge", "IE mode", "IE11"],
            "strict": True,
        },
        "f5": {"veto_after": r"(?:key|button)"},
        "s3": {"require": ["AWS", "Amazon", "bucket", "buckets"], "strict": True},
        "ivanti_ics": {"require": ["Ivanti", "Connect Secure", "Pulse", "VPN", "Policy Secure"], "strict": True},
        "ivanti_epm": {"require": ["Ivanti"], "strict": True},
        "cisco_ftd": {"require": ["Cisco", "ASA", "Firepower"], "strict": True},
        "oci": {"require": ["Oracle", "cloud"], "strict": True},
    }
)

# ---------------------------------------------------------------------------------------------------------------
# Generic words: a KEV product whose every word is one of these is not matched on its own ("Email Server",
# "Mobile Devices"), only behind its vendor ("MDaemon Email Server").
# ---------------------------------------------------------------------------------------------------------------

GENERIC_WORDS = set(
    """
    a an the and or of for to on in with by as at from not
    server servers router routers switch switches firewall firewalls gateway gateways appliance appliances
    device devices camera cameras firmware kernel framework core tools tool project publisher word excel
    reader desktop director sense sentry salt controller controllers auditor viewer compact frontend
    manager management center centre agent service services streaming task scheduler graphics component
    web http https email mail media command studio platform portal cloud data backup replication suite
    phone phones sip nas storage printer printers chipset chipsets update notification input method editor
    japanese ui api cli user interface plugin plugins library driver engine protocol stack file files
    network networks security secure access remote support transfer edition editions enterprise community
    system systems application applications app apps operating os multiple products product various
    mobile wireless point ip ethernet diagnostics proxy client clients vpn ssl tls dns dhcp smb
    software hardware module modules office outlook edge windows teams exchange pixel expedition crowd
    photo station video recorder recorders nvr dvr controllers mail transfer agent mta toolbox browser
    help desk helpdesk ticketing monitor monitoring network-attached attached output messenger helper
    ipv4 ipv6 webmail sdk otp udp tcp
    """.split()  # noqa: SIM905 - a word list reads better as prose than as 200 quoted strings
)


# ---------------------------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------------------------


def _clean(name: str) -> str:
    return " ".join(name.replace("\u00a0", " ").split())


def _split_parenthetical(name: str) -> tuple[str, list[str]]:
    """'Zimbra Collaboration Suite (ZCS)' -> ('Zimbra Collaboration Suite', ['ZCS']); '(formerly …)' is dropped."""
    extras = [p.strip() for p in re.findall(r"\(([^)]*)\)", name)]
    base = _clean(re.sub(r"\([^)]*\)", " ", name))
    extras = [e for e in extras if e and not e.lower().startswith("formerly")]
    return base, extras


def _split_list(name: str) -> list[str]:
    """'iOS, iPadOS, and macOS' -> ['iOS', 'iPadOS', 'macOS']; '&' stays ('Backup & Replication')."""
    parts = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s+/\s+", name)
    return [p for p in (_clean(p) for p in parts) if p]


def _is_generic(name: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", name)
    if not words:
        return True
    if name.lower().startswith("multiple "):
        return True
    return all(w.lower() in GENERIC_WORDS or w.isdigit() for w in words)


def _merge_key(vendor: str, product: str, seen: dict[tuple[str, str], set[str]]) -> str:
    """The spelling to file a KEV product under: "Drupal core", "Drupal Core" and "Core" are one product.

    Spellings that differ only in case, or in a leading vendor name, are merged under the most telling
    one: with the vendor's name as KEV spells it, then with it in any case, then capitalised.
    """
    prefix = vendor.lower() + " "

    def bare(name: str) -> str:
        low = name.lower()
        return low[len(prefix) :] if low.startswith(prefix) else low

    def rank(name: str) -> tuple[bool, bool, bool]:
        return name.startswith(vendor + " "), name.lower().startswith(prefix), name[:1].isupper()

    same = [name for (v, name) in seen if v == vendor and not name.startswith("\x00") and bare(name) == bare(product)]
    if not same:
        return product
    current = same[0]
    best = max([current, product], key=rank)  # max keeps the first of equals: the spelling seen first
    if best != current:
        seen[(vendor, best)] = seen.pop((vendor, current))
    return best


def _looks_like_name(product: str, vendor: str) -> bool:
    """Whether a KEV product name is distinctive enough to match without its vendor in front.

    Plain single words ("Spark", "Orion", "Sense", "WARP") are also ordinary words or other vendors'
    products; brand-shaped tokens ("WinRAR", "phpMyAdmin", "7-Zip", "SL1") and specific multi-word
    names ("Privileged Remote Access") are not. A product that shares its first word with the vendor
    ("Grafana" of "Grafana Labs") is the brand itself.
    """
    if _is_generic(product):
        return False
    first = product.split()[0].lower()
    if first in vendor.lower().split():
        return True
    if " " in product:
        return any(w[:1].isupper() and w.lower() not in GENERIC_WORDS for w in product.split())
    if product.isupper():
        return False
    return bool(re.search(r".[A-Z]|\d|[-._!+]", product))


def _short_upper(text: str) -> bool:
    """Short upper-case forms (acronyms) match case-sensitively: 'SAP' is a vendor, 'sap' is not."""
    letters = re.sub(r"[^A-Za-z]", "", text)
    return len(text) <= 5 and letters.isupper()


def _spec(text: str | dict[str, Any]) -> dict[str, Any]:
    """Normalise an alias spec to its dict form, marking acronyms case-sensitive unless told otherwise."""
    if isinstance(text, str):
        return {"text": text, "case_sensitive": True} if _short_upper(text) else {"text": text}
    spec = {"text": text["text"]}
    if text.get("case_sensitive") or (text.get("case_sensitive") is None and _short_upper(text["text"])):
        spec["case_sensitive"] = True
    for key in ("rule", "prefix"):
        if text.get(key):
            spec[key] = text[key]
    return spec


def load_kev(path: Path) -> list[tuple[str, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(_clean(v["vendorProject"]), _clean(v["product"])) for v in data["vulnerabilities"]]


def build(kev_pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The dictionary data: hand vendors/products first, then KEV vendors/products they do not cover."""
    vendor_kev_map: dict[str, str] = {}
    for name, spec in VENDORS.items():
        vendor_kev_map[name.lower()] = name
        for kev_name in spec.get("kev_names", []):
            vendor_kev_map[kev_name.lower()] = name

    def canonical_vendor(kev_vendor: str) -> str | None:
        if kev_vendor.lower() in SKIP_KEV_VENDORS:
            return None
        if kev_vendor.lower() in vendor_kev_map:
            return vendor_kev_map[kev_vendor.lower()]
        base, _ = _split_parenthetical(kev_vendor)
        return vendor_kev_map.get(base.lower(), base)

    vendors: dict[str, dict[str, Any]] = {}

    def ensure_vendor(name: str, kev_name: str | None = None) -> dict[str, Any]:
        if name not in vendors:
            hand = VENDORS.get(name, {})
            aliases: list[dict[str, Any]] = []
            if hand.get("bare", True):
                aliases.append(_spec(hand.get("name_alias", name)))
            aliases.extend(_spec(a) for a in hand.get("aliases", []))
            vendors[name] = {"name": name, "aliases": aliases, "kev_names": sorted(set(hand.get("kev_names", [])))}
        entry = vendors[name]
        if kev_name and kev_name != name and kev_name not in entry["kev_names"]:
            entry["kev_names"] = sorted({*entry["kev_names"], kev_name})
            base, extras = _split_parenthetical(kev_name)
            known = {a["text"].lower() for a in entry["aliases"]}
            for extra in [base, *extras]:
                if extra.lower() not in known and extra.lower() != name.lower() and not _is_generic(extra):
                    entry["aliases"].append(_spec(extra))
        return entry

    for name in VENDORS:
        ensure_vendor(name)

    products: dict[tuple[str, str], dict[str, Any]] = {}
    for hand in PRODUCTS:
        key = (hand["vendor"], hand["name"])
        entry = products.setdefault(
            key, {"vendor": hand["vendor"], "name": hand["name"], "aliases": [], "kev_names": []}
        )
        known = {a["text"] for a in entry["aliases"]}
        if (
            hand.get("bare", True)
            and hand["name"] not in known
            and not any(isinstance(a, dict) and a["text"] == hand["name"] for a in hand.get("aliases", []))
        ):
            entry["aliases"].append(_spec(hand["name"]))
        for alias in hand.get("aliases", []):
            spec = _spec(alias)
            if spec["text"] not in {a["text"] for a in entry["aliases"]}:
                entry["aliases"].append(spec)
        entry["kev_names"] = sorted({*entry["kev_names"], *hand.get("kev", [])})

    def hand_product_for(vendor: str, kev_product: str) -> tuple[str, str] | None:
        for hand in PRODUCTS:
            if hand["vendor"] != vendor:
                continue
            if kev_product in hand.get("kev", []):
                return vendor, hand["name"]
            pattern = hand.get("kev_pattern")
            if pattern and re.search(pattern, kev_product):
                return vendor, hand["name"]
        return None

    derived: dict[tuple[str, str], set[str]] = defaultdict(set)  # (vendor, product) -> KEV product strings
    for kev_vendor, kev_product in kev_pairs:
        vendor = canonical_vendor(kev_vendor)
        if vendor is None:
            continue
        ensure_vendor(vendor, kev_vendor)
        hand_key = hand_product_for(vendor, kev_product)
        if hand_key is not None:
            products[hand_key]["kev_names"] = sorted({*products[hand_key]["kev_names"], kev_product})
            continue
        base, extras = _split_parenthetical(kev_product)
        if base.lower().startswith("multiple "):
            continue  # "Multiple Products", "Multiple Routers": not a product anyone can name
        parts = _split_list(base)
        if len(parts) > 1 and all(_is_generic(part) for part in parts):
            parts = [base]  # "Backup and Replication" is one product, not "Backup" and "Replication"
        for part in parts:
            derived[(vendor, _merge_key(vendor, part, derived))].add(kev_product)
        for extra in extras:
            derived.setdefault((vendor, f"\x00{extra}"), set()).add(kev_product)

    # Bare product names shared by several vendors ("Firewall", "Kernel") are only safe behind a vendor name.
    owners: dict[str, set[str]] = defaultdict(set)
    for vendor, product in derived:
        if not product.startswith("\x00"):
            owners[product.lower()].add(vendor)
    for (vendor, _), entry in products.items():
        for alias in entry["aliases"]:
            owners[alias["text"].lower()].add(vendor)

    for (vendor, product), kev_names in sorted(derived.items()):
        if product.startswith("\x00"):
            continue  # abbreviations in parentheses are attached below
        key = (vendor, product)
        if key in products:
            products[key]["kev_names"] = sorted({*products[key]["kev_names"], *kev_names})
            continue
        if _is_generic(product) and product.lower() != vendor.lower():
            # Still listed (canonical_product resolves the KEV string), matched only as "<Vendor> <Product>".
            products[key] = {"vendor": vendor, "name": product, "aliases": [], "kev_names": sorted(kev_names)}
            continue
        aliases: list[dict[str, Any]] = []
        if (
            len(owners[product.lower()]) == 1
            and product.lower() != vendor.lower()
            and _looks_like_name(product, vendor)
        ):
            aliases.append(_spec(product))
        products[key] = {"vendor": vendor, "name": product, "aliases": aliases, "kev_names": sorted(kev_names)}

    for (vendor, marker), kev_names in derived.items():
        if not marker.startswith("\x00"):
            continue
        extra = marker[1:]
        for kev_product in kev_names:
            base, _ = _split_parenthetical(kev_product)
            parts = _split_list(base)
            target = products.get((vendor, parts[0])) if parts else None
            if target is None or _is_generic(extra):
                continue
            # KEV's parenthesised abbreviations ("AM", "PRA", "UDP") collide with ordinary text: only "<Vendor> AM".
            known = {a["text"] for a in target["aliases"]} | set(target.get("prefix_only", []))
            if extra not in known:
                target.setdefault("prefix_only", []).append(extra)

    # A product named exactly like its vendor ("CrushFTP") is matched as the vendor: drop the duplicate alias.
    for (vendor, product), entry in products.items():
        if product.lower() == vendor.lower():
            entry["aliases"] = [a for a in entry["aliases"] if a["text"].lower() != vendor.lower()]

    return {
        "version": 1,
        "about": "Generated by scripts/build_vendor_dictionary.py from the CISA KEV catalog and hand-kept aliases; "
        "edit the script, not this file.",
        "rules": RULES,
        "vendors": sorted(vendors.values(), key=lambda v: v["name"].lower()),
        "products": sorted(products.values(), key=lambda p: (p["vendor"].lower(), p["name"].lower())),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kev", type=Path, default=DEFAULT_KEV, help="KEV catalog JSON (known_exploited_vulnerabilities.json)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if --out differs from a fresh build")
    args = parser.parse_args(argv)
    if not args.kev.is_file():
        parser.error(f"KEV catalog not found: {args.kev}")
    text = render(build(load_kev(args.kev)))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date; re-run scripts/build_vendor_dictionary.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    data = json.loads(text)
    print(f"wrote {args.out}: {len(data['vendors'])} vendors, {len(data['products'])} products", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
