"""Filling in what a record's text says but its source did not state: CVEs, vendors, kind, exploitation, severity.

No LLM: patterns and the shared vendor dictionary, so the result is fast, repeatable and explainable.

The rule: **never overwrite what the source set.** ``kind`` is inferred only while it is ``other``,
``severity`` only while ``unknown``, ``exploited`` only ever goes from False to True, and lists
(``cves``, ``vendors``, ``products``) are unioned with the source's, which keep their places first.
A source that states a fact knows better than a pattern reading its prose.

Where the text is read:

- CVE ids: title, summary and body. An id is unambiguous wherever it appears.
- vendors/products: title and summary, plus the body only when it is short
  (:data:`SHORT_BODY_CHARS`): a weekly roundup's body names dozens of vendors the record is not about.
- kind, exploited, severity: title, summary and the lead of the body (:data:`LEAD_CHARS`).
  Kind is decided on the title alone when the title says anything, since headlines are written to
  say what a story is; the rest of the text is consulted only for a title like "Forensics Correlation".

Kind precedence (first match wins) — the most specific harm first, the generic last:

1. ransomware — the ransomware-ness of an attack is what readers filter on, even when it also
   caused an outage or exploited a flaw ("Ransomware actors exploit unpatched SimpleHelp");
2. breach — data breach, leaked/stolen/exposed data, hacked;
3. outage (strong signs) — "outage", "is down", "downtime", "service disruption", "degraded",
   "Disruption with …" (status pages); an outage headline beats a vulnerability word in it, since a
   bad patch that takes a service down is an outage. Law-enforcement words are not outages:
   "takedown", "crackdown", "shut down a botnet", "disrupts … botnet" never match;
4. vulnerability — "vulnerability", a CVE id, flaw, patch, zero-day, RCE, exploit, injection …;
5. malware — malware, botnet, trojan, stealer, backdoor, spyware, wiper, malicious packages …;
6. outage (weak signs) — "unavailable", "elevated error rates", "delays", "Incident with …": words
   that vulnerability write-ups also use ("could make the device unavailable"), so they count only
   when nothing above matched;
7. advisory — "advisory", "bulletin", "ICSA-…", "CISA releases …", or a source that publishes
   advisories (CISA CSAF, a CERT) when the text says nothing more specific.

A status page as the source ("GitHub Status", "Cloudflare Status") makes a record an outage whatever
its words ("Issues with Phishing and Malware Block Pages"), unless they say ransomware or breach.

A match is ignored when the clause negates it ("no evidence of data breach", "no indication of
exploitation", "not exploited"), which matters most for ``exploited``; claims of fact (breach,
outage, exploited) are also ignored when only supposed ("could lead to data exposure", "may make the
device unavailable"), the everyday language of vulnerability advisories.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from retrieval.cve import find_cves
from retrieval.formats.csaf import SOURCE_SUFFIX as CSAF_SOURCE_SUFFIX
from retrieval.formats.kev import KEV_SOURCE
from retrieval.records import STORED, Kind, Severity, ThreatRecord

if TYPE_CHECKING:
    from retrieval.vendors import VendorDictionary

__all__ = [
    "LEAD_CHARS",
    "SHORT_BODY_CHARS",
    "enrich",
    "find_cves",
    "infer_exploited",
    "infer_kind",
    "infer_severity",
    "severity_from_cvss",
]

SHORT_BODY_CHARS = 1500
LEAD_CHARS = 1500

#: CISA's advisory identifiers: ICS (ICSA-24-284-01), ICS medical (ICSMA-…), joint advisories (AA23-352A).
_ADVISORY_ID = re.compile(r"(?<![\w-])(?:icsm?a-\d{2}-\d{3}-\d{2}[a-z]?|aa\d{2}-\d{3}[a-z])(?![\w-])", re.IGNORECASE)
#: The catalogue's own flag, as the KEV parser (and CISA's CSV) words it.
_KEV_RANSOMWARE_USE = re.compile(r"known ransomware campaign use:\s*known\b", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)  # "…/new-high-severity-vulnerability-…" is no claim


def _rx(*patterns: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags)


# -- kind patterns -------------------------------------------------------------------------------

_RANSOMWARE = _rx(r"\bransomware\b", r"#stopransomware", r"\bransom (?:demands?|notes?|payments?)\b")
_BREACH = _rx(
    r"\bdata[- ]breach(?:es)?\b",
    r"\bbreach(?:ed|es)?\b(?! of contract)",
    r"\bdata (?:leaks?|theft|exposure)\b",
    r"\bleak(?:s|ed|ing)?\b (?:the |of |over |online |)(?:\w+ ){0,3}?(?:data|records|database|credentials|passwords|"
    r"information|emails|files|details)\b",
    r"\b(?:data|records|database|credentials|information) (?:was |were |has been |have been )?leaked\b",
    r"\bstolen (?:\w+ )?(?:data|records|information|credentials|files)\b",
    r"\b(?:data|information|records|credentials|files|details) (?:was |were |has been |have been )?"
    r"(?:stolen|compromised|exposed)\b",
    r"\bstole\b",
    r"\b(?:e-?mail|data|account|server|network|system|database|cyber) hack\b",
    r"\bexpos(?:ed|es)\b (?:\w+ ){0,6}?(?:records|personal (?:data|information)|customer data|user data|data of|"
    r"sensitive (?:data|information))\b",
    r"\bhacked\b",
    r"\b(?:exchange|wallet|platform|bridge|protocol|defi) (?:hack|heist)\b",
    r"\bheists?\b",
    r"\b(?:data|records|details|information) (?:of|on|from|belonging to) (?:over |more than |nearly |some )?"
    r"[\d.,]+ ?(?:million|thousand|billion|[mkb])? (?:\w+ ){0,2}?(?:users|customers|patients|people|individuals|members|"
    r"accounts|clients|students|employees)\b",
)
_OUTAGE_STRONG = _rx(
    r"\boutages?\b",
    r"\bdowntime\b",
    r"\b(?:service|services|network|platform|system|systems)(?:[- ]wide)? (?:disruptions?|interruptions?|"
    r"degradation|outages?)\b",
    r"\bdegraded\b",
    r"\bdegradation\b",
    r"^\s*disruption (?:with|to|of|in|for|affecting)\b",
    r"\bdisruption (?:with|to|of|in|for|affecting) (?:some |the |multiple |several )?(?:\w+ ){0,3}?"
    r"(?:services?|users|customers|access|connectivity)\b",
    r"\b(?:services?|systems?|operations|connectivity|access) (?:\w+ ){0,3}?(?:significantly |severely |partially )?"
    r"disrupted\b",
    r"^[\w .&'-]{2,40}\bdown:",
    r"\b(?:systems?|services?|networks?|operations|websites?|servers|IT) (?:\w+ ){0,2}?offline\b",
    r"\bservice incident\b",
)
# "is down" is checked in code: "PC sales are down" is not an outage.
_DOWN = re.compile(
    r"\b(\w+)\s+(?:is|are|was|were|went|goes|go|going)\s+down\b(?!\s+(?:to|by|from|on|with)\b)", re.IGNORECASE
)
_NOT_SERVICES = frozenset(
    {
        "sales", "prices", "price", "views", "shares", "share", "stocks", "stock", "revenue", "revenues",
        "profits", "profit", "numbers", "rates", "rate", "costs", "cost", "earnings", "margins", "figures",
        "attacks", "infections", "volumes", "volume", "spending", "usage", "it",
    }
)  # fmt: skip
_VULNERABILITY = _rx(
    r"\bvulnerabilit(?:y|ies)\b",
    r"\bCVE-\d{4}-\d{4,7}\b",
    r"\bzero[- ]?days?\b",
    r"\b0[- ]?days?\b",
    r"\bflaws?\b",
    r"\bpatch(?:es|ed|ing)?\b",
    r"\bhotfix(?:es)?\b",
    r"\bRCE\b",
    r"\bremote code execution\b",
    r"\bsecurity (?:updates?|bugs?|holes?|fix(?:es)?|issues?)\b",
    r"\bexploit(?:s|ed|ing|ation)?\b",
    r"\bprivilege escalation\b",
    r"\bauthentication bypass\b",
    r"\b(?:sql|command|code|os command|template) injection\b",
    r"\bcross[- ]site (?:scripting|request forgery)\b",
    r"\bXSS\b",
    r"\b(?:buffer|heap|stack|integer) overflows?\b",
    r"\bout-of-bounds (?:read|write)\b",
    r"\buse[- ]after[- ]free\b",
    r"\bdeserialization\b",
    r"\bpath traversal\b",
    r"\bbugs?\b(?! bount)",
)
_MALWARE = _rx(
    r"\bmalware\b",
    r"\bbotnets?\b",
    r"\btrojan(?:s|ized)?\b",
    r"\binfo-?stealers?\b",
    r"\bstealers?\b",
    r"\bspyware\b",
    r"\bbackdoor(?:s|ed)?\b",
    r"\brootkits?\b",
    r"\bbootkits?\b",
    r"\bwipers?\b",
    r"\bworms?\b",
    r"\bkeyloggers?\b",
    r"\bdroppers?\b",
    r"\bcrypto-?miners?\b",
    r"\bcryptojack(?:ing|er)\b",
    r"\bmalvertising\b",
    r"\bmalicious (?:\w+ )?(?:packages?|extensions?|apps?|libraries|npm|pypi|code|payloads?|updates?)\b",
)
_RAT = re.compile(r"\bRATs?\b")  # case-sensitive: "rat" is a word
_OUTAGE_WEAK = _rx(
    r"\bunavailab(?:le|ility)\b",
    r"\binaccessible\b",
    r"\bnot (?:working|loading|responding|available)\b",
    r"\b(?:issues?|problems?) (?:with|for|in|when|accessing|loading|connecting|affecting)\b",
    r"\b(?:errors?|failures?|timeouts?) (?:for|when|in|with|affecting|accessing)\b",
    r"\b(?:increased|elevated|high) (?:failure|error) rates?\b",
    r"\bunable to (?:access|connect|log ?in|sign in|load|reach)\b",
    r"\b(?:elevated|increased|intermittent) (?:\w+ )?(?:error rates?|errors|latency|failures|timeouts)\b",
    r"\b(?:connectivity|performance|login|sign-in|access|delivery) (?:issues|problems|failures)\b",
    r"^\s*incident with\b",
    r"\bdelays?\b",
    r"\bservice (?:issues?|problems?)\b",
)
_ADVISORY = _rx(
    r"\badvisor(?:y|ies)\b",
    r"\bsecurity bulletins?\b",
    r"\bICSA-\d",
    r"\bCISA (?:releases|issues|publishes|warns|urges)\b",
    r"\bjoint (?:guidance|alert|statement)\b",
)
_ADVISORY_SOURCES = _rx(r"advisor", r"\bCSAF\b", r"\bCERT\b", r"bulletin", r"ICS-CERT")
#: Status pages publish service incidents: an outage unless the text names a worse harm.
_STATUS_SOURCES = _rx(r"\bstatus\b", r"statuspage", r"health dashboard", r"service health")


# -- exploitation ---------------------------------------------------------------------------------

_ACTORS = (
    r"(?:hackers|attackers|threat actors|cybercriminals|criminals|adversaries|gangs?|groups?|APTs?|botnets?|"
    r"campaigns?|operators|malware|ransomware|state[- ]sponsored \w+|nation[- ]state \w+)"
)
_EXPLOITED = _rx(
    r"\bactively (?:being )?exploit(?:ed|ing)\b",
    r"\bactive(?:ly)? exploitation\b",
    r"\bexploited in (?:the )?wild\b",
    r"\bin[- ]the[- ]wild (?:exploitation|exploits?|attacks?)\b",
    r"\bexploitation in the wild\b",
    # "exploited Fortinet flaw", not "who successfully exploited this vulnerability could …"
    r"\bexploited (?!(?:this|the|these|that|those|a|an|it|its|their)\b)(?:\w+ ){0,2}?"
    r"(?:zero-days?|0-days?|vulnerabilit(?:y|ies)|flaws?|bugs?)\b",
    r"\bexploited in (?:\w+ ){0,2}?attacks\b",
    r"\b(?:is|are|was|were|been|being) (?:actively |widely |now |already |reportedly |being )?exploited\b",
    r"\bexploited by\b",
    rf"\b{_ACTORS} (?:are |were |have been |has been |now |actively |have |has )*exploit(?:s|ed|ing)?\b",
    r"\bexploitation attempts\b",
    r"\bunder (?:active )?attack\b",
    r"\bknown exploited vulnerabilit(?:y|ies)\b",
    r"\bKEV\b",
    r"\bzero[- ]?days?\b",
    r"\b0[- ]?days?\b",
)
#: "zero-day" that is not an exploited flaw: the Zero Day Initiative (a bug bounty), Pwn2Own contest entries.
_ZERO_DAY_NOT_EXPLOITED = _rx(r"\bzero[- ]day initiative\b", r"\bZDI\b", r"\bpwn2own\b")
_ZERO_DAY = _rx(r"\bzero[- ]?days?\b", r"\b0[- ]?days?\b")

# -- negation -------------------------------------------------------------------------------------

#: Cues that deny what follows anywhere later in the same clause ("no indication of X or Y being exploited").
_NEGATION_BROAD = _rx(
    r"\bno (?:evidence|indications?|signs?|reports?)\b",
    r"\bnot (?:aware|believed|thought|known|seen|observed|detected|found)\b",
    r"\bunaware\b",
    r"\bwithout (?:any )?(?:evidence|signs?|indications?)\b",
)
#: A party denying or debunking a claim: enough to doubt "exploited", not to change what a story is about
#: ("Instagram denies breach amid claims of data leak" is still a breach story).
_DENIAL = _rx(r"\bden(?:y|ies|ied)\b", r"\bdebunk\w*", r"\bfalse (?:claims?|reports?)\b", r"\bunconfirmed\b")
#: Cues that deny only what comes right after them ("not exploited", "no active exploitation", "never been breached").
_NEGATION_TIGHT = re.compile(
    r"\b(?:not|never|no|isn't|wasn't|aren't|weren't|hasn't|haven't|hadn't|nor)\s+(?:\w+\s+)?$", re.IGNORECASE
)
_NEAR_WORDS = 6
#: Possibility, not fact: "could lead to data exposure", "may cause the service to be unavailable".
_HYPOTHETICAL = _rx(r"\b(?:could|may|might|would|can)\b", r"\bpotential(?:ly)?\b", r"\bif\b")
_CLAUSE_END = re.compile(r"[.!?;](?:\s|$)|\bbut\b|\bhowever\b", re.IGNORECASE)

# -- severity -------------------------------------------------------------------------------------

_CVSS = re.compile(
    r"\bCVSS(?P<version>\s*v?[234](?:\.\d)?)?\s*(?:base\s+)?"
    r"(?P<label>(?:scores?|rating)\s*(?:of\s+|:\s*|=\s*|is\s+)?|of\s+|:\s*|=\s*|is\s+)?"
    r"(?P<score>\d{1,2}(?:\.\d)?)(?![\d/]|\.\d)",
    re.IGNORECASE,
)
#: "CVSS 4.0" alone is the standard's version, not a score; "(CVSS 4.0)" or "CVSS score 4.0" is a score.
_CVSS_VERSIONS = frozenset({"2.0", "3.0", "3.1", "4.0"})
_SCORE_CVSS = re.compile(r"(?P<score>\d{1,2}\.\d)\s*(?:/\s*10\s*)?(?:CVSS|cvss)\b")
_SEVERITY_WORDS: tuple[tuple[Severity, re.Pattern[str]], ...] = (
    (
        Severity.CRITICAL,
        _rx(
            r"\b(?:critical|maximum|max)[- ]severity\b",
            # "critical Fortinet flaw", not CWE-306 "Missing Authentication for Critical Function Vulnerability"
            r"(?<!\bfor )(?<!\bof )\bcritical(?!\s+(?:infrastructure|functions?|information|data|resources?|systems?|"
            r"services|sectors?|process(?:es)?|operations|assets)\b)(?: \w+){0,3}? (?:vulnerabilit(?:y|ies)|flaws?|bugs?|RCE|security "
            r"(?:flaws?|holes?|issues?|updates?)|zero-days?|0-days?)\b",
            r"\bseverity (?:rating |level )?(?:of )?critical\b",
        ),
    ),
    (
        Severity.HIGH,
        _rx(
            r"\bhigh[- ]severity\b",
            r"\b(?:high-risk|severe|important)(?: \w+){0,2}? (?:vulnerabilit(?:y|ies)|flaws?|bugs?|security (?:flaws?|holes?))\b",
            r"\bseverity (?:rating |level )?(?:of )?(?:high|important)\b",
        ),
    ),
    (
        Severity.MEDIUM,
        _rx(r"\b(?:medium|moderate)[- ]severity\b", r"\bseverity (?:rating |level )?(?:of )?(?:medium|moderate)\b"),
    ),
    (Severity.LOW, _rx(r"\blow[- ]severity\b", r"\bseverity (?:rating |level )?(?:of )?low\b")),
)


# -- public API ----------------------------------------------------------------------------------


def enrich(record: ThreatRecord, dictionary: VendorDictionary | None = None) -> ThreatRecord:
    """A new record with what the text adds; the source's own values always win (see module docstring)."""
    if dictionary is None:
        from retrieval.vendors import VendorDictionary

        dictionary = VendorDictionary.default()

    body = record.body or ""
    lead = _URL.sub(" ", "\n".join(p for p in (record.title, record.summary, body[:LEAD_CHARS]) if p))
    rest = _URL.sub(" ", "\n".join(p for p in (record.summary, body[:LEAD_CHARS]) if p))
    named = _URL.sub(
        " ", "\n".join(p for p in (record.title, record.summary, body if len(body) <= SHORT_BODY_CHARS else "") if p)
    )

    vendors = list(record.vendors)
    products = list(record.products)
    for match in dictionary.find(named):
        vendors.append(match.vendor)
        if match.product:
            products.append(match.product)

    update: dict[str, object] = {
        "cves": [*record.cves, *find_cves(record.title, record.summary, body)],
        "vendors": vendors,
        "products": products,
        "tags": list(dict.fromkeys([*record.tags, *catalogue_tags(record)])),
    }
    if record.kind == Kind.OTHER:
        update["kind"] = infer_kind(_URL.sub(" ", record.title), rest, source=record.source)
    if not record.exploited:
        update["exploited"] = record.source == KEV_SOURCE or infer_exploited(lead)
    if record.severity == Severity.UNKNOWN:
        update["severity"] = infer_severity(lead)
    return ThreatRecord.model_validate({**record.model_dump(), **update}, context=STORED)


def catalogue_tags(record: ThreatRecord) -> list[str]:
    """Facts a catalogue states in its own fields, as searchable tags.

    * The advisory's identifier ("ICSMA-24-023-01") and what its family says ("ICS", "medical"): analysts
      ask for "ICS advisories", "ICSMA advisories" or a number, and a CSAF record has them only in its id/URL.
    * KEV's "known ransomware campaign use": "which KEV entries are used by ransomware?" asks for it.
    """
    ids = [
        i.upper()
        for i in dict.fromkeys(
            i.lower() for i in _ADVISORY_ID.findall(f"{record.id}\n{record.url or ''}\n{record.title}")
        )
    ]
    tags = list(ids)
    if any(i.startswith("ICS") for i in ids):
        tags.append("ICS")  # the identifier's family says what it is: ICSA, an ICS advisory…
    if any(i.startswith("ICSMA") for i in ids):
        tags.append("medical")  # …ICSMA, an ICS medical advisory
    if record.source == KEV_SOURCE and _KEV_RANSOMWARE_USE.search(record.body or ""):
        tags.append("ransomware")
    return tags


def is_status_source(source: str) -> bool:
    """Whether ``source`` is a status page ("Google Cloud Status", "Microsoft 365 service health")."""
    return _STATUS_SOURCES.search(source) is not None


SourceType = Literal["kev", "advisory", "status_page", "news"]


def source_type(source: str) -> SourceType:
    """What kind of source wrote a record: the KEV catalogue, a CSAF advisory, a status page, or news (the rest)."""
    if source == KEV_SOURCE:
        return "kev"
    if source.endswith(CSAF_SOURCE_SUFFIX):
        return "advisory"
    if is_status_source(source):
        return "status_page"
    return "news"


def infer_kind(title: str, text: str = "", *, source: str = "") -> Kind:
    """The kind a record's words point to, by the precedence in the module docstring; ``other`` if none."""
    found = next((k for k in (_kind_of(title), _kind_of(text)) if k is not None), None)
    if source and is_status_source(source):
        return found if found in (Kind.RANSOMWARE, Kind.BREACH) else Kind.OUTAGE
    if found is not None:
        return found
    if source and _ADVISORY_SOURCES.search(source):
        return Kind.ADVISORY
    return Kind.OTHER


def infer_exploited(text: str) -> bool:
    """Whether the text says, without negating it, that the flaw is exploited in the wild."""
    pwn2own = bool(_ZERO_DAY_NOT_EXPLOITED.search(text))
    for m in _EXPLOITED.finditer(text):
        if pwn2own and _ZERO_DAY.fullmatch(m.group(0)):
            continue
        if not _negated(text, m.start(), denial=True, factual=True):
            return True
    return False


def infer_severity(text: str) -> Severity:
    """From the highest CVSS score stated, else the strongest severity word, else unknown."""
    scores = [float(m.group("score")) for m in _CVSS.finditer(text) if not _is_version(text, m)]
    scores += [float(m.group("score")) for m in _SCORE_CVSS.finditer(text)]
    scores = [s for s in scores if 0.0 < s <= 10.0]
    if scores:
        return severity_from_cvss(max(scores))
    for severity, pattern in _SEVERITY_WORDS:
        if _affirmed(text, pattern):
            return severity
    return Severity.UNKNOWN


def _is_version(text: str, m: re.Match[str]) -> bool:
    if m.group("version") or m.group("label") or m.group("score") not in _CVSS_VERSIONS:
        return False
    return text[m.end() : m.end() + 1] != ")"


def severity_from_cvss(score: float) -> Severity:
    """CVSS qualitative bands (see :meth:`Severity.from_cvss`)."""
    return Severity.from_cvss(score)


# -- helpers -------------------------------------------------------------------------------------


def _kind_of(text: str) -> Kind | None:
    if not text:
        return None
    for kind, says in _KIND_ORDER:
        if says(text):
            return kind
    return None


def _affirmed(text: str, *patterns: re.Pattern[str], near: bool = False, factual: bool = False) -> bool:
    """Whether any pattern matches somewhere its clause does not negate (see :func:`_negated`)."""
    return any(
        not _negated(text, m.start(), near=near, factual=factual)
        for pattern in patterns
        for m in pattern.finditer(text)
    )


def _is_down(text: str) -> bool:
    """ "WhatsApp is down worldwide", but not "PC sales are down" or "shut down"."""
    return any(
        m.group(1).lower() not in _NOT_SERVICES and not _negated(text, m.start(), near=True)
        for m in _DOWN.finditer(text)
    )


def _negated(text: str, start: int, *, denial: bool = False, near: bool = False, factual: bool = False) -> bool:
    """Whether the clause before ``start`` denies (or, with ``factual``, only supposes) what is at ``start``.

    ``near`` limits clause-wide cues to the last few words, for judging what a story is *about*:
    "No evidence of 0-day in ongoing ESXiArgs ransomware spree" is still a ransomware story.
    ``factual`` also discounts possibilities ("could lead to data exposure"), for claims of fact
    such as a breach or an outage, but not for what a vulnerability "could allow".
    """
    before = text[max(0, start - 120) : start]
    ends = list(_CLAUSE_END.finditer(before))
    clause = before[ends[-1].end() :] if ends else before
    if _NEGATION_TIGHT.search(clause):
        return True
    if factual and _HYPOTHETICAL.search(clause):
        return True
    if near:
        clause = " ".join(clause.split()[-_NEAR_WORDS:])
    if _NEGATION_BROAD.search(clause):
        return True
    return denial and bool(_DENIAL.search(clause))


_KIND_ORDER: tuple[tuple[Kind, Callable[[str], bool]], ...] = (
    (Kind.RANSOMWARE, lambda t: _affirmed(t, _RANSOMWARE, near=True)),
    (Kind.BREACH, lambda t: _affirmed(t, _BREACH, near=True, factual=True)),
    (Kind.OUTAGE, lambda t: _affirmed(t, _OUTAGE_STRONG, near=True, factual=True) or _is_down(t)),
    (Kind.VULNERABILITY, lambda t: _affirmed(t, _VULNERABILITY, near=True)),
    (Kind.MALWARE, lambda t: _affirmed(t, _MALWARE, _RAT, near=True)),
    (Kind.OUTAGE, lambda t: _affirmed(t, _OUTAGE_WEAK, near=True, factual=True)),
    (Kind.ADVISORY, lambda t: _affirmed(t, _ADVISORY, near=True)),
)
