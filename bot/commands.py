"""The chat grammar: one set of commands for every adapter, plus the shapes of thread follow-ups.

Commands (``search``, ``latest``, ``show``, ``subscribe``, ``unsubscribe``, ``subscriptions``, ``resume``,
``sources``, ``help``) arrive either as text (the console, Slack's ``/threat search …``, a
mention) — :func:`parse_command` — or as a name with options (Discord app commands) —
:meth:`Command.from_options`. Anything that is not a command is a question (:attr:`Verb.ASK`):
people ask "any Exchange outages today?" without a command word.

Inside a thread a question may be a follow-up to the previous answer ("what's the mitigation?",
"only critical ones", "tell me more about the second one"): :func:`parse_followup` recognises
its shape. Which follow-ups apply is the conversation's call, since it knows the thread.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verb(StrEnum):
    SEARCH = "search"
    LATEST = "latest"
    SHOW = "show"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    SUBSCRIPTIONS = "subscriptions"
    #: Re-enable this channel's feed posts after what stopped them was fixed (``bot.health``).
    RESUME = "resume"
    SOURCES = "sources"
    STACK = "stack"
    HELP = "help"
    #: Free text: a question, or in a thread possibly a follow-up.
    ASK = "ask"


#: How many stories ``latest`` lists when no number is given, and the most it lists.
LATEST_DEFAULT = 5
LATEST_MAX = 20

#: Usage lines, in the order help shows them. Adapters may reuse them for their own command menus.
USAGE: dict[Verb, tuple[str, str]] = {
    Verb.SEARCH: ("search <query>", "find stories, e.g. `search fortinet exploited this week`"),
    Verb.LATEST: ("latest [n] [filters]", "the newest stories, e.g. `latest 5 critical outages`"),
    Verb.SHOW: ("show <id>", "one record in full (an id, an id prefix, or a number from the list above)"),
    Verb.SUBSCRIBE: ("subscribe [filters]", "post new matching stories to this channel"),
    Verb.UNSUBSCRIBE: ("unsubscribe <id>", "stop a subscription"),
    Verb.SUBSCRIPTIONS: ("subscriptions", "this channel's subscriptions and whether posts reach it"),
    Verb.RESUME: ("resume", "post here again after fixing what stopped the feed (invited me back, …)"),
    Verb.SOURCES: ("sources", "the feeds and their health (`sources add <url>` to add one)"),
    Verb.STACK: (
        "stack [add <product version> | remove <id> | report]",
        "what this workspace runs, e.g. `stack add FortiOS 7.2.5`; answers then mark what affects it",
    ),
    Verb.HELP: ("help", "this message"),
}


@dataclass(frozen=True)
class Command:
    """A parsed chat command, whichever way it arrived.

    ``text`` holds the query or filters (search, latest, subscribe) or the question (ask);
    ``target`` the id (show, unsubscribe) or URL (``sources add``); ``count`` latest's n.
    ``unknown`` is set when the input looked like a mistyped command: the answer is help.
    """

    verb: Verb
    text: str = ""
    count: int | None = None
    target: str | None = None
    action: str | None = None
    unknown: str | None = None

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any] | None = None) -> Command:
        """A command from a name and named options, as Discord app commands deliver them.

        Option names: ``query`` (search), ``count`` and ``filters`` (latest), ``id`` (show,
        unsubscribe), ``filters`` (subscribe), ``action`` and ``url`` (sources), ``question`` (ask).
        Unknown names give help, like unknown text does.
        """
        options = dict(options or {})
        try:
            verb = Verb(name.strip().lower())
        except ValueError:
            return cls(Verb.HELP, unknown=name)

        def text_of(*keys: str) -> str:
            for key in keys:
                value = options.get(key)
                if value not in (None, ""):
                    return " ".join(str(value).split())
            return ""

        if verb is Verb.LATEST:
            count = options.get("count")
            return cls(verb, text=text_of("filters", "query"), count=_clamp_count(int(count)) if count else None)
        if verb in (Verb.SHOW, Verb.UNSUBSCRIBE):
            return cls(verb, target=text_of("id", "target") or None)
        if verb is Verb.SOURCES:
            action = text_of("action").lower() or None
            return cls(verb, action=action, target=text_of("url", "target") or None)
        if verb is Verb.STACK:
            action = text_of("action").lower() or None
            return cls(verb, action=action, target=text_of("id", "target") or None, text=text_of("product", "text"))
        return cls(verb, text=text_of("query", "filters", "question", "text"))

    def display(self) -> str:
        """The command as a person would type it: what a console or log shows."""
        parts = [] if self.verb is Verb.ASK else [self.verb.value]
        if self.count is not None:
            parts.append(str(self.count))
        parts += [p for p in (self.action, self.target, self.text) if p]
        return " ".join(parts)


_ID_LIKE = re.compile(r"^(?:\d{1,3}|[\w.-]+:[\w.:-]+|[0-9a-f]{6,}|[\w-]*\d[\w-]*)$", re.IGNORECASE)
_WORD = re.compile(r"\S+")


def parse_command(text: str) -> Command:
    """Text after the bot's name or ``/threat`` → a :class:`Command`. Never raises."""
    text = " ".join(text.split())
    if text.startswith("/"):  # "/threat search x" pasted into a mention, or "/search x"
        text = text[1:]
        if text.lower().startswith("threat "):
            text = text[len("threat ") :]
    if not text:
        return Command(Verb.HELP)
    head, _, rest = text.partition(" ")
    word = head.lower().rstrip("?!.:,")
    rest = rest.strip()
    if word in ("help", "?", "commands", "usage"):
        return Command(Verb.HELP, text=rest)
    if word == "search":
        return Command(Verb.SEARCH, text=rest) if rest else Command(Verb.HELP, text="search")
    if word == "latest":
        return _parse_latest(rest)
    if word == "show" and rest and len(rest.split()) == 1 and _ID_LIKE.match(rest):
        return Command(Verb.SHOW, target=rest)
    if word == "show" and not rest:
        return Command(Verb.HELP, text="show")
    if word == "subscribe":
        return Command(Verb.SUBSCRIBE, text=rest)
    if word == "unsubscribe":
        return Command(Verb.UNSUBSCRIBE, target=rest.split()[0] if rest else None)
    if word in ("subscriptions", "subs") and not rest:
        return Command(Verb.SUBSCRIPTIONS)
    if word in ("resume", "reenable", "re-enable") and not rest:
        return Command(Verb.RESUME)
    if word == "stack" and (not rest or rest.split()[0].lower() in _STACK_ACTIONS):
        return _parse_stack(rest)
    if word == "sources" and (not rest or rest.lower().startswith(("add ", "list"))):
        action, _, target = rest.partition(" ")
        return Command(Verb.SOURCES, action=action.lower() or None, target=target.strip() or None)
    if not rest or len(rest.split()) <= 2:
        guess = _mistyped_verb(word)
        if guess is not None:
            return Command(Verb.HELP, text=guess.value, unknown=head)
    return Command(Verb.ASK, text=text)


_STACK_ACTIONS = {"add", "remove", "rm", "delete", "del", "report", "list", "ls", "show"}


def _parse_stack(rest: str) -> Command:
    """``stack``, ``stack add FortiOS 7.2.5``, ``stack remove 3``, ``stack report``."""
    action, _, argument = rest.partition(" ")
    action = {"rm": "remove", "delete": "remove", "del": "remove", "ls": "list", "show": "list"}.get(
        action.lower(), action.lower()
    )
    argument = argument.strip()
    if action == "remove":
        return Command(Verb.STACK, action="remove", target=argument.lstrip("#") or None)
    if action == "add":
        return Command(Verb.STACK, action="add", text=argument)
    return Command(Verb.STACK, action=action or "list")


def _parse_latest(rest: str) -> Command:
    words = rest.split()
    count = None
    if words and words[0].isdigit():
        count = _clamp_count(int(words.pop(0)))
    return Command(Verb.LATEST, text=" ".join(words), count=count)


def _clamp_count(count: int) -> int:
    return max(1, min(LATEST_MAX, count))


_VERB_WORDS = {v.value for v in Verb}
#: Words close to a command but also ordinary words: never read as a typo.
_REAL_WORDS = {"short", "shows", "source", "latex", "later", "sub"}


def _mistyped_verb(word: str) -> Verb | None:
    """``serch`` → search: a near-miss of a command word (one or two letters off), not an ordinary word."""
    if len(word) < 4 or word in _REAL_WORDS or not word.isalpha() or word in _VERB_WORDS:
        return None
    verbs = [v.value for v in Verb if v is not Verb.ASK]
    match = difflib.get_close_matches(word, verbs, n=1, cutoff=0.8)
    return Verb(match[0]) if match else None


# -- follow-ups -----------------------------------------------------------------------------------


class FollowUpKind(StrEnum):
    FIELD = "field"  # one field of the record in focus
    SOURCE = "source"  # where it comes from: URL and the other reporting sources
    UPDATES = "updates"  # anything new since the last answer
    MORE = "more"  # the next page of the last list
    SELECT = "select"  # one story of the list in detail ("the second one", "tell me more")
    REFINE = "refine"  # the previous question with changed filters ("only critical ones", "what about yesterday?")


class Field(StrEnum):
    MITIGATION = "mitigation"
    COUNTRIES = "countries"
    IMPACT = "impact"
    EXPLOITED = "exploited"
    SEVERITY = "severity"
    CVES = "cves"
    PRODUCTS = "products"
    PUBLISHED = "published"


@dataclass(frozen=True)
class FollowUp:
    kind: FollowUpKind
    field: Field | None = None
    #: SELECT: 0-based position in the thread's list; -1 is the last; None means the story in focus.
    index: int | None = None
    #: REFINE: what changes, e.g. "critical" or "yesterday"; ``explicit`` when a cue word ("only",
    #: "what about") says it refines rather than asks anew.
    text: str = ""
    explicit: bool = False
    #: REFINE: "only …" narrows (adds to the topic); "what about …" replaces the topic.
    narrow: bool = False


_ORDINALS = {
    "first": 0,
    "1st": 0,
    "second": 1,
    "2nd": 1,
    "third": 2,
    "3rd": 2,
    "fourth": 3,
    "4th": 3,
    "fifth": 4,
    "5th": 4,
    "sixth": 5,
    "6th": 5,
    "seventh": 6,
    "7th": 6,
    "eighth": 7,
    "8th": 7,
    "ninth": 8,
    "9th": 8,
    "tenth": 9,
    "10th": 9,
    "last": -1,
    "latter": -1,
    "former": 0,
    "top": 0,
}
_ORDINAL_RE = "|".join(sorted(map(re.escape, _ORDINALS), key=len, reverse=True))

_MORE = re.compile(
    r"^(?:(?:show |give me |any |and )?more(?: results| stories| please| of them)?|next(?: page| ones?)?|"
    r"keep going|continue|\.\.\.|…)$"
)
_UPDATES = re.compile(
    r"^(?:(?:are there |is there )?(?:any|anything)\s+(?:new\s+)?(?:updates?|news|changes?|developments?|new)"
    r"|(?:updates?|anything new|what'?s new|any news|status|news|latest news)"
    r"|what'?s the (?:latest|status)|has (?:it|this|that|anything) changed|is (?:it|this|that) (?:still )?ongoing"
    r"|is (?:it|this|that) (?:fixed|resolved|over)(?: yet| now)?)"
    r"(?: (?:on|about|for|with) (?:it|this|that|these|those|them|this one|that one))?(?: since)?(?: yet| now| so far)?$"
)
_SOURCE = re.compile(
    r"^(?:(?:show|give|send|post)(?: me)? (?:the |its |their )?(?:sources?|links?|urls?|articles?|references?)"
    r"|(?:what|where)(?:'s| is| are)? (?:the |its )?(?:sources?|links?|urls?|articles?)"
    r"|(?:sources?|links?|url|urls|reference|references)|who reported (?:it|this|that)|where(?:'s| is| does) (?:this|it|that)"
    r" (?:from|come from)|where did (?:you|this|it) (?:get|read|see) (?:this|that|it)(?: from)?)\b"
)
_SELECT_ORDINAL = re.compile(
    rf"^(?:(?:tell|show|give) me (?:more )?(?:about )?|more (?:about|on) |(?:what|how) about |details (?:on|of|for) |"
    rf"open |expand )?(?:the |that )?(?:(?P<ord>{_ORDINAL_RE})|(?:number |no\.? ?|#)(?P<num>\d{{1,2}}))"
    rf"(?: one| story| item| result| incident| record)?(?: please)?$"
)
_SELECT_FOCUS = re.compile(
    r"^(?:tell me more|more details|details|more about (?:it|this|that)|tell me (?:more )?about (?:it|this|that)|"
    r"what happened|full details|show (?:it|details)|summary|summari[sz]e(?: it)?|what is it|what's this)(?: please)?$"
)
_REFINE_CUE = re.compile(
    r"^(?:(?:and )?(?:what|how) about|(?:and )?only|just|same (?:thing )?for|now|and|also|but|show (?:me )?only|"
    r"only show|narrow (?:it )?(?:down )?to|filter (?:to|by)|limit (?:it )?to)\s+(?P<rest>.+)$"
)
_NARROWING_CUE = re.compile(r"^(?:and )?(?:only|just|show (?:me )?only|only show|narrow|filter|limit)\b")
_REFINE_TAIL = re.compile(r"^(?P<rest>.+?)\s+only$")

#: Field questions, checked in order: "which countries are affected?" is about countries, not impact.
_FIELD_PATTERNS: list[tuple[Field, re.Pattern[str]]] = [
    (
        Field.COUNTRIES,
        re.compile(r"\b(?:countr(?:y|ies)|regions?|geograph\w*|where (?:is|was|are) (?:it|this|that)\b)"),
    ),
    (
        Field.MITIGATION,
        re.compile(
            r"\b(?:mitigat\w*|remediat\w*|workarounds?|fix(?:ed|es)?|patch(?:ed|es)?|what (?:should|can|do) (?:we|i) do|"
            r"how (?:do|can) (?:we|i) (?:protect|defend|stop|prevent)|recommend\w*|countermeasures?)\b"
        ),
    ),
    (
        Field.EXPLOITED,
        re.compile(r"\b(?:exploit(?:ed|s|ation)?|in the wild|actively used|under attack|kev|weaponi[sz]ed)\b"),
    ),
    (Field.CVES, re.compile(r"\b(?:cves?|cve ids?|which vulnerabilit\w*|vuln ids?)\b")),
    (
        Field.SEVERITY,
        re.compile(r"\b(?:severity|how (?:bad|serious|severe|critical)|is it (?:critical|serious|bad))\b"),
    ),
    (
        Field.PRODUCTS,
        re.compile(r"\b(?:which|what) (?:products?|vendors?|versions?|systems?|services?|software)\b|\bproducts?\b"),
    ),
    (
        Field.IMPACT,
        re.compile(r"\b(?:impact\w*|affect(?:s|ed)?|consequences?|who (?:is|was|are|were) (?:hit|affected)|damage)\b"),
    ),
    (
        Field.PUBLISHED,
        re.compile(r"^when\b|\b(?:what time|what date|published|reported when|when (?:was|did) (?:it|this|that))\b"),
    ),
]
_CVE_ID = re.compile(r"\bcve-\d{4}-\d{4,}\b", re.IGNORECASE)
#: A field question is short; a long sentence that mentions "patch" is a new question.
_FIELD_MAX_WORDS = 9


def parse_followup(text: str) -> FollowUp | None:
    """The follow-up shape of ``text``, or None when it reads as a new question."""
    clean = " ".join(re.sub(r"[?!.,;:]+(?=\s|$)", " ", text.lower()).split())
    clean = re.sub(r"^(?:ok(?:ay)?|thanks|cool|great|hm+|so|and so|please|pls)\s+", "", clean)
    if not clean:
        return None
    if _MORE.match(clean):
        return FollowUp(FollowUpKind.MORE)
    if m := _SELECT_ORDINAL.match(clean):
        index = _ORDINALS[m["ord"]] if m["ord"] else int(m["num"]) - 1
        return FollowUp(FollowUpKind.SELECT, index=index)
    if _SELECT_FOCUS.match(clean):
        return FollowUp(FollowUpKind.SELECT)
    if _SOURCE.match(clean):
        return FollowUp(FollowUpKind.SOURCE)
    if _UPDATES.search(clean):
        return FollowUp(FollowUpKind.UPDATES)
    if m := _REFINE_CUE.match(clean):
        # "what about the second one?" is a selection, caught above; "what about CVE-…?" is a refinement too.
        narrow = bool(_NARROWING_CUE.match(clean))
        return FollowUp(FollowUpKind.REFINE, text=m["rest"], explicit=True, narrow=narrow)
    if m := _REFINE_TAIL.match(clean):
        return FollowUp(FollowUpKind.REFINE, text=m["rest"], explicit=True, narrow=True)
    if len(clean.split()) <= _FIELD_MAX_WORDS and not _CVE_ID.search(clean):
        for field, pattern in _FIELD_PATTERNS:
            if pattern.search(clean):
                return FollowUp(FollowUpKind.FIELD, field=field)
    # Bare filters ("yesterday?", "critical ones?"): a refinement only if the conversation can read them as filters.
    return FollowUp(FollowUpKind.REFINE, text=clean, explicit=False)


def help_text(topic: str = "") -> str:
    """The command list; with a topic (a command word) just that command's line first."""
    lines = ["Ask me in plain words — e.g. _any Exchange outages today?_ or _what did Fortinet patch this week?_ — "]
    lines[0] += "then follow up in the thread (_only critical ones_, _what's the mitigation?_, _more_)."
    lines.append("Commands:")
    try:
        first = Verb(topic.strip().lower()) if topic else None
    except ValueError:
        first = None
    order = [v for v in USAGE if v is first] + [v for v in USAGE if v is not first]
    for verb in order:
        usage, what = USAGE[verb]
        lines.append(f"• `{usage}` — {what}")
    return "\n".join(lines)
