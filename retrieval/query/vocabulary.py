"""The words a question's filters are written in: operators, kinds, severity, exploitation, "now" and filler words."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from retrieval.records import Kind, Severity

_OPERATOR = re.compile(
    r"(?<!\S)(?P<neg>-)?(?P<key>vendor|product|kind|type|severity|sev|cvss|cve|has|is|exploited|since|on|in)"
    r"(?P<op>>=|=>|<=|>|<|:|=)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;?!]*)",
    re.IGNORECASE,
)
_EXCLUDE = re.compile(
    r"(?:(?<!\S)-(?P<quoted>\"[^\"]+\")|(?<!\S)-(?P<word>[A-Za-z][\w.+-]+)"
    r"|(?<![\w-])(?:excluding|except(?:\s+for)?|without|but\s+not|minus|not\s+about)\s+(?P<after>\"[^\"]+\"|[A-Za-z][\w.+-]*)"
    # "NOT" in capitals is said as an operator: what follows, up to punctuation, is the excluded name
    # ("cobalt (the cad app, NOT cobalt strike)").
    r"|(?<![\w-])(?-i:NOT)\s+(?P<phrase>[A-Za-z][\w.+-]*(?:[ \t]+[A-Za-z][\w.+-]*){0,2}))",
    re.IGNORECASE,
)
#: "not X" said to tell which X is meant, not asked about: after a comma, a bracket, a dash or "i mean", or with
#: a determiner ("play hit anyone new? ransomware gang not the store", "exchange exploited? on-prem exchange,
#: not crypto", "teams gateway flaky? i mean cloudflare for teams, not microsoft teams"). Up to three words.
_OTHER_SENSE = re.compile(
    r"(?:(?:^|[,;(]|\s[-\u2013\u2014]+|\bi\s+mean\b)\s*not\s+(?:(?:the|that|a|an|our|my)\s+)?"
    r"|(?<![\w-])not\s+(?:the|that|a|an)\s+)"
    r"(?P<sense>[^\W\d_][\w.+'\u2019-]*(?:[ \t]+[^\W\d_][\w.+'\u2019-]*){0,2})",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\"(?P<q>[^\"]+)\"|“(?P<q2>[^”]+)”")

_KIND_WORDS: dict[str, Kind] = {
    "outage": Kind.OUTAGE,
    "outages": Kind.OUTAGE,
    "down": Kind.OUTAGE,
    "downtime": Kind.OUTAGE,
    "vuln": Kind.VULNERABILITY,
    "vulns": Kind.VULNERABILITY,
    "vulnerability": Kind.VULNERABILITY,
    "vulnerabilities": Kind.VULNERABILITY,
    "cve": Kind.VULNERABILITY,
    "cves": Kind.VULNERABILITY,
    "bug": Kind.VULNERABILITY,
    "bugs": Kind.VULNERABILITY,
    "breach": Kind.BREACH,
    "breaches": Kind.BREACH,
    "leak": Kind.BREACH,
    "leaks": Kind.BREACH,
    "ransomware": Kind.RANSOMWARE,
    "malware": Kind.MALWARE,
    "advisory": Kind.ADVISORY,
    "advisories": Kind.ADVISORY,
    "other": Kind.OTHER,
}
_SEVERITY_WORDS = {
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "med": Severity.MEDIUM,
    "low": Severity.LOW,
    "1": Severity.CRITICAL,
    "0": Severity.CRITICAL,
    "2": Severity.HIGH,
    "3": Severity.MEDIUM,
    "4": Severity.LOW,
}
_ORDERED = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _stricter(level: Severity) -> Severity:
    i = _ORDERED.index(level)
    return _ORDERED[min(i + 1, len(_ORDERED) - 1)]


# ==================================================================================================================
# Natural-language kind / severity / exploitation phrases
# ==================================================================================================================

_KIND_PATTERNS: list[tuple[Kind, re.Pattern[str]]] = [
    (
        Kind.OUTAGE,
        re.compile(
            r"(?<![\w-])(?:outages?|downtime|disruptions?|disrupted|degraded|degradation|not\s+working|"
            r"unavailable|unavailability|unreachable|(?:went|gone|goes|go)\s+wrong|"
            r"offline|service\s+(?:issues?|incidents?)|status\s+incidents?|"
            # "down" on its own ("github down?"), but not "take down", "shut down", "crackdown", "down to"
            r"(?<!take\s)(?<!took\s)(?<!taken\s)(?<!taking\s)(?<!takes\s)(?<!shut\s)(?<!shuts\s)(?<!bring\s)"
            r"(?<!brought\s)(?<!tear\s)(?<!track\s)(?<!narrow\s)(?<!cut\s)(?<!slow\s)(?<!calm\s)(?<!back\s)"
            r"(?<!break\s)(?<!knock\s)(?<!knocked\s)(?<!knocks\s)down(?!\s+(?:to|from|on|the\b|with|by))"
            r")(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        Kind.RANSOMWARE,
        re.compile(
            r"(?<![\w-])(?:ransomware|ransom(?:\s+demands?)?|extortion|double\s+extortion|(?:data\s+)?leak\s+sites?)"
            r"(?![\w-])",
            re.I,
        ),
    ),
    (
        Kind.BREACH,
        re.compile(
            r"(?<![\w-])(?:(?:data\s+)?breach(?:es|ed)?|(?:data\s+)?leak(?:s|ed)?|stolen(?:\s+data)?|data\s+theft|"
            # "data exposed", not "are we exposed?" (to a bug: a vulnerability question)
            r"exposed(?=\s+(?:data|records|information|credentials|databases?|details)\b)|"
            r"(?:data|records|information|credentials|details)\s+(?:(?:was|were|got|been)\s+)?exposed|"
            r"data\s+exposure|hack(?:s|ed)?|heists?|compromised\s+accounts?)(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        Kind.ADVISORY,
        re.compile(
            # "ICS advisories": the kind is advisory, and "ICS" stays a topic word (ICS advisories carry it as a tag)
            r"(?<![\w-])(?:(?:security\s+|cisa\s+)?advisor(?:y|ies)|(?:security\s+)?bulletins?)(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        Kind.VULNERABILITY,
        re.compile(
            r"(?<![\w-])(?:vulnerabilit(?:y|ies)|vulns?|cves?|flaws?|bugs?|security\s+(?:holes?|fix(?:es)?|updates?)|"
            r"patch(?:es|ed|ing)?(?:\s+tuesday)?|fix(?:es|ed)|rce|remote\s+code\s+execution|"
            r"privilege\s+escalation|auth(?:entication)?\s+bypass)(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        Kind.MALWARE,
        re.compile(
            r"(?<![\w-])(?:malware|trojans?|(?:info)?stealers?|botnets?|backdoors?|rats?|spyware|loaders?|"
            r"wipers?|worms?|rootkits?|droppers?|infostealer)(?![\w-])",
            re.IGNORECASE,
        ),
    ),
]

_NOT_EXPLOITED = re.compile(
    r"(?<![\w-])(?:not\s+(?:yet\s+|being\s+|been\s+)?(?:actively\s+)?exploited|unexploited|"
    r"no\s+(?:known\s+|active\s+)?exploitation)(?![\w-])",
    re.IGNORECASE,
)
_EXPLOITED = re.compile(
    r"(?<![\w-])(?:(?:actively\s+|being\s+|mass[\s-])?exploit(?:ed|ation|ing)|in[\s-]the[\s-]wild|itw|"
    r"zero[\s-]?days?|0[\s-]?days?|kev|known\s+exploited(?:\s+vulnerabilit(?:y|ies))?|weaponi[sz]ed|"
    r"under\s+(?:active\s+)?attack)(?![\w-])",
    re.IGNORECASE,
)

_SEVERITY_PHRASES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Severity | None]]] = [
    # "high or critical", "high and critical", "critical/high": the lower level is the threshold
    (
        re.compile(
            r"(?<![\w-])(?P<a>critical|high|medium|moderate|low)\s*(?:or|and|/|&|,)\s*(?P<b>critical|high|medium|moderate|low)"
            r"(?:\s*[-\s]?(?:severity|sev|risk|rated))?(?![\w-])",
            re.IGNORECASE,
        ),
        lambda m: min(_SEVERITY_WORDS[m["a"].lower()], _SEVERITY_WORDS[m["b"].lower()], key=lambda s: s.rank),
    ),
    # "medium or higher", "high and above", "at least high", "high+"
    (
        re.compile(
            r"(?<![\w-])(?:(?:at\s+least|minimum|min\.?)\s+(?P<c>critical|high|medium|moderate|low)"
            r"|(?P<d>critical|high|medium|moderate|low)(?:[\s-]?(?:severity|sev|risk))?\s*(?:or|and)\s+"
            r"(?:higher|above|worse|more|greater|up)|(?P<e>high|medium|moderate|low)\+)(?:[\s-]?(?:severity|sev|risk))?",
            re.IGNORECASE,
        ),
        lambda m: _SEVERITY_WORDS[(m["c"] or m["d"] or m["e"]).lower()],
    ),
    # "sev1", "sev 2", "sev-1"
    (
        re.compile(r"(?<![\w-])sev(?:erity)?[\s-]?(?P<n>[0-4])(?![\w])", re.IGNORECASE),
        lambda m: _SEVERITY_WORDS[m["n"]],
    ),
    # "CVSS 9+", "cvss above 7", "CVSS >= 8.8"; not the standard's versions ("cvss 4.0 finally released?")
    (
        re.compile(
            r"(?<![\w-])cvss(?:v?3(?:\.1)?)?\s*+(?!v?(?:[234]\.0|3\.1)(?![\d.])|v\d)(?:score\s*)?(?:>=|=>|>|of|above|over|at\s+least|:)?\s*"
            r"(?P<s>10(?:\.0)?|\d(?:\.\d)?)\s*\+?(?![\w.])",
            re.IGNORECASE,
        ),
        lambda m: Severity.from_cvss(float(m["s"])),
    ),
    # "high-severity", "critical severity", "high risk", "high-priority"
    (
        re.compile(
            r"(?<![\w-])(?P<f>critical|high|medium|moderate|low)[\s-](?:severity|sev|risk|priority|impact|rated)(?![\w-])",
            re.IGNORECASE,
        ),
        lambda m: _SEVERITY_WORDS[m["f"].lower()],
    ),
    # "critical" on its own (not "critical infrastructure", which is a topic); "severe"
    (
        re.compile(
            r"(?<![\w-])(?:(?P<g>critical)(?!\s+(?:infrastructure|sectors?|services|national|manufacturing|"
            r"systems|thinking|mass))|(?P<h>severe))(?![\w-])",
            re.IGNORECASE,
        ),
        lambda m: Severity.CRITICAL if m["g"] else Severity.HIGH,
    ),
]

# Words that carry no search meaning in a question to the bot ("any", "show me", "what did … this week").
_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any anybody anyone anything are aren't as at be because been
    before being below between both but by can could did didn't do does doesn't doing don't during each few for from
    further had has hasn't have haven't having he her here hers him his how i if in into is isn't it it's its itself
    just me more most my no nor not now of off on once only or other our ours out over own same she should so some
    such than that that's the their theirs them then there there's these they this those through to too under until
    up very was wasn't we were weren't what what's when where which while who whom why will with won't would you
    your yours yourself
    show tell give list find get search look lookup check know let lets let's see seen hear heard
    please pls thanks thank thx smth sth ppl idk tbh imo fyi btw afaik iirc oncall on-call hi hello hey hiya howdy moin gm greetings bot threatbot yo ok okay
    new news latest recent recently lately update updates updated info information anything something stuff things
    thing happening happened going on whats wats there're
    add adds adding additions added addition entries entry items item reports reported report stories story articles
    article
    attack attacks attacked incidents incident issue issues problem problems alerts alert
    happen happens got gotten yet still already ever may might must shall many much
    cant wont dont didnt doesnt isnt arent wasnt werent havent hasnt hadnt couldnt wouldnt shouldnt
    im ive youre theyre thats theres thru tho bc cuz ur u w/ pls plz whatever etc
    targeting targeted targets target hitting hit affecting affected impacting impacted involving related
    regarding using used via across against
    """.split()  # noqa: SIM905 - prose is easier to review than quoted strings
)
#: Names that contain a weekday but are no date; taken before time parsing.
_NOT_A_DAY = re.compile(r"(?<![\w-])(?:(?P<pt>patch\s+tuesday)|black\s+friday|cyber\s+monday)(?![\w-])", re.I)
#: "Now" words: the question is about the present, so old records cannot answer it ("is X down right now?").
#: Chat shorthand counts ("rn"; "atm" only in lower case and not as the cash machine).
_NOW_WORDS = re.compile(
    r"(?<![\w-])(?:right\s+now|at\s+the\s+moment|at\s+present|currently|as\s+of\s+(?:now|today)|as\s+we\s+speak|"
    r"(?-i:rn)|(?-i:atm)(?!\s+(?:malware|jackpot\w*|machines?|cash\w*|skimm\w*)))(?![\w-])",
    re.I,
)
#: Words of something continuing: the present too ("is it still down?", "ongoing outage"); not the asker's own
#: state ("our plant still has these", "we still run it"), which says nothing of when the news is from.
_ONGOING_WORDS = re.compile(
    r"(?<![\w-])(?:(?<!\bwe\s)(?<!\bi\s)still(?!\s+(?:have|has|had|use|uses|using|run|runs|running|rely|relies|"
    r"need|needs|own|owns|got)\b)|ongoing|on-going|continu(?:es|ing)|lingering)(?![\w-])",
    re.I,
)
#: A service failing as the asker speaks ("teams down??", "console wont load", "is it just us?"): with no time
#: named, such a question is about the present, as "right now" is. Past tense (_PAST_TENSE) says otherwise.
_STATUS_NOW = re.compile(
    r"(?<![\w-])(?:down\s*(?:\?|for\s+(?:any|every)one|again|$)|failing|broken|erroring|timing\s+out|unreachable|"
    r"crawling|lagging|stuck|flapping|falling\s+over|fell\s+over|"
    r"not\s+(?:loading|working|resolving|responding|connecting|starting)|"
    r"(?:wont|won't|cant|can't|cannot)\s+(?:load|start|connect|resolve|reach|log\s*in|sign\s*in)|"
    r"keeps?\s+(?:failing|crashing|rebooting|dropping|disconnecting|erroring|timing\s+out)|"
    r"(?:having|experiencing)\s+(?:issues|problems|trouble|an?\s+(?:outage|incident))|"
    r"known\s+issue|anyone\s+else|for\s+anyone|is\s+it\s+(?:just\s+)?(?:me|us))(?![\w-])",
    re.I | re.M,
)
#: Words of a service in trouble, any tense ("super slow this morning", "hit by the aws mess", "acting up"):
#: a status page's report answers such a question by its service alone (see ``asks_about_trouble``).
_MALFUNCTION_WORDS = (
    r"slow\w*|sluggish|lag\w*|down|outages?|issues?|problems?|trouble\w*|incidents?|stuck|"
    r"errors?|erroring|degraded|flaky|flapping|broken|borked|fail\w*|time\s*outs?|timing\s+out|unreachable|"
    r"[45]xx|latency|acting\s+(?:up|weird)|(?:wont|won't|cant|can't|cannot)\s+\w+|not\s+\w+ing|died|dead"
)
#: A service in trouble: a malfunction, or being "hit" (by an outage elsewhere, "a mess").
_TROUBLE = re.compile(rf"(?<![\w-])(?:{_MALFUNCTION_WORDS}|mess|hit)(?![\w-])", re.IGNORECASE)
#: A service malfunctioning; not "hit", which attacks do too ("lazarus using the manageengine bug? who got hit").
_MALFUNCTION = re.compile(rf"(?<![\w-])(?:{_MALFUNCTION_WORDS})(?![\w-])", re.IGNORECASE)
#: Words of a vulnerability that, in a question about a service malfunctioning, mean the fault and its repair.
_MALFUNCTION_WORD = re.compile(r"bugs?|fix(?:es|ed)?", re.IGNORECASE)


def asks_about_trouble(text: str) -> bool:
    """Whether a question speaks of a service in trouble (see :data:`_TROUBLE`)."""
    return _TROUBLE.search(text) is not None


def speaks_of_malfunction(text: str) -> bool:
    """Whether a question speaks of a service malfunctioning (see :data:`_MALFUNCTION`)."""
    return _MALFUNCTION.search(text) is not None


def is_trouble_question(kinds: Sequence[Kind], text: str) -> bool:
    """Whether a question asks about trouble at a service: outages by kind, or in words ("github flaky?")."""
    return Kind.OUTAGE in kinds or asks_about_trouble(text)


#: Past tense: the question asks about something that happened, not about the present ("what caused…").
_PAST_TENSE = re.compile(
    r"(?<![\w-])(?:was|were|did|went|caused|happened|took|had|postmortem|post-mortem|root\s+cause|rca)(?![\w-])", re.I
)
#: Questions about the KEV catalogue itself, not about news of exploitation ("is CVE-… in KEV yet?").
_KEV_CATALOGUE = re.compile(
    r"(?<![\w-])(?:(?:in|to|into|on|from|onto)\s+(?:the\s+)?(?:cisa(?:'s)?\s+)?(?:kev|known\s+exploited\s+vulnerabilities)"
    r"(?:\s+(?:catalog(?:ue)?|list|database))?"
    r"|kev\s+(?:catalog(?:ue)?|list|entr(?:y|ies)|additions?|listings?|updates?)"
    r"|(?:hit|hits|made|make|makes|landed|land)\s+(?:the\s+)?kev"
    r"|(?:cisa(?:'s)?\s+)?known\s+exploited\s+vulnerabilities\s+(?:catalog(?:ue)?|list)"
    r"|(?:in|to|into|on|onto|from)\s+(?:the\s+)?(?:cisa(?:'s)?\s+)?(?:known[\s-]+)?exploited(?:\s+vuln(?:erabilitie)?s)?"
    r"\s+(?:catalog(?:ue)?|list)"
    r"|cisa(?:'s)?\s+(?:known\s+)?exploited(?:\s+vuln(?:erabilitie)?s)?\s+(?:catalog(?:ue)?|list)"
    r"|cisa\s+(?:add(?:s|ed|ing)?|list(?:s|ed)?)(?=\s))(?![\w-])",
    re.I,
)
#: "KEV" said with a period ("KEV today?", "KEV adds yesterday?"): the catalogue's entries of that period.
_BARE_KEV = re.compile(r"(?<![\w-])kev(?![\w-])", re.IGNORECASE)
#: ICS-CERT, the ICS advisories' publisher before CISA: a word of the catalogue, not of its advisories.
_ICS_CERT = re.compile(r"(?<![\w-])ics-?cert(?![\w-])", re.IGNORECASE)
#: Questions for ICS advisories: CISA's ICSA/ICSMA series, or advisories about industrial control systems.
_ICS_ADVISORIES = re.compile(
    r"(?<![\w-])(?:(?:ics|ics/ot|ot|scada|industrial\s+control(?:\s+systems?)?)\s+(?:security\s+)?"
    r"(?:advisor(?:y|ies)|bulletins?)|icsm?as?)(?![\w-])",
    re.IGNORECASE,
)
#: Asking whether an incident was an attack ("united ground stop - was it a hack??", "were they hacked or
#: what?"): the answer is the report of the incident, whatever its kind, so the attack word filters nothing.
#: "Was it ransomware?" still asks for ransomware reports: that names what the incident would be.
_CAUSE_QUESTION = re.compile(
    r"(?<![\w-])(?:(?:was|is|were)\s+(?:it|that|this|they|we)\s+(?:(?:just|really|actually)\s+)?(?:an?\s+)?"
    r"(?:hack(?:ed)?|cyber[\s-]?attack(?:ed)?|attack(?:ed)?)"
    r"|(?:hack|cyber[\s-]?attack|attack)\s+or\s+(?:not|what|just\s+an?\s+(?:outage|bug|glitch)))(?![\w-])",
    re.IGNORECASE,
)
_TAKEDOWN = re.compile(r"(?<![\w-])(?:take[sn]?|taking|took)\s+down(?![\w-])", re.IGNORECASE)
_PHRASE_TERMS = re.compile(
    r"(?<![\w-])(?:critical\s+infrastructure|supply[\s-]chain|zero\s+trust|social\s+engineering|"
    r"credential\s+stuffing|business\s+email\s+compromise|denial[\s-]of[\s-]service|ddos)(?![\w-])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9][\w.+'-]*[\w+]|[A-Za-z0-9]")
#: An English clitic at a word's end: a possessive or a contraction ("court's", "who's", "we're", "they've").
#: The word is its base ("court"; "who", a stopword); a negated auxiliary ("can't", "shouldn't") is a stopword.
_CLITIC = re.compile(r"(?:'s|'re|'ve|'ll|'d|'m)$")
_NEGATED = re.compile(r"n't$")
#: Scripts written without spaces between words (Han, Kana, Hangul): a question mixing them with Latin words
#: ("昨日KEVに追加されたの何?") has no space where one script meets the other.
_UNSPACED_SCRIPT = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
_SCRIPT_BOUNDARY = re.compile(rf"(?<={_UNSPACED_SCRIPT})(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?={_UNSPACED_SCRIPT})")


def word_of(token: str) -> str:
    """A leftover token as a search word: lowercase, without an English clitic; "" for a negated auxiliary."""
    word = token.lower().strip("'.")
    if _NEGATED.search(word):
        return ""
    return _CLITIC.sub("", word)


def spaced_scripts(text: str) -> str:
    """``text`` with a space where a Latin word meets a word of a script written without spaces, so each is a
    word of its own ("昨日 KEV に追加" reads "KEV" as the catalogue)."""
    return _SCRIPT_BOUNDARY.sub(" ", text)
