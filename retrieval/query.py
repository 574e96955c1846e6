"""Query understanding without an LLM: an analyst's question becomes filters the store can apply.

"any Exchange outages today?" asked at 09:00 in Berlin means: kind outage, product Microsoft Exchange,
published between local midnight and now. Getting that right by hand-written grammar (rather than a
model) keeps answers reproducible, testable and instant, and the same language serves subscriptions
(``vendor:fortinet kind:outage severity>=high -crypto``).

Decisions worth knowing (each has tests):

* Time is resolved in the asker's zone ``tz`` against ``now`` (converted to that zone). Windows are
  half-open, ``start <= published < end``, and ``end`` is never after ``now``: records published after
  the moment of asking do not exist for that question. Every query also carries ``until = now``, kept
  apart from the user's explicit ``window``.
* Calendar phrases are calendar units: "this week"/"last week" are ISO weeks (Monday start), "last
  month" is the previous calendar month. "past/last N days|weeks|months" are rolling windows ending now,
  counted on the local wall clock; "N hours" are counted in absolute time (so DST days stay N hours).
* A bare weekday ("since Monday", "on Friday") is the most recent such day *on or before today*: asked
  on a Monday, "since Monday" means since this morning's midnight. "last Monday" is strictly before
  today. A month or date without a year is the most recent one not in the future ("June" asked in
  March 2024 is June 2023).
* "exploited", "in the wild", "zero-day", "0day", "KEV" set ``exploited=True`` and add no kind: news
  about exploitation is often filed as kind ``other``; "not exploited" sets False.
* "Exchange" and other ambiguous names are resolved by :meth:`VendorDictionary.find` in lenient mode:
  taken unless vetoed by context ("crypto exchange", "Securities and Exchange"); in an all-lower-case
  question case-sensitive names match in any case ("aws down?").
* Left out: "before <date>" (a window needs a start), US/EU-ambiguous numeric dates such as 06/07/2023
  (only ISO and unambiguous forms are read), time-of-day ranges other than "since 9am", ranges across
  phrases such as "last week and today".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from retrieval.records import Kind, Severity
from retrieval.vendors import VendorDictionary

__all__ = ["StructuredQuery", "TimeWindow", "parse_query"]


# ==================================================================================================================
# Result types
# ==================================================================================================================


@dataclass(frozen=True)
class TimeWindow:
    """A half-open period ``[start, end)`` in the asker's zone; ``label`` says it back in words."""

    start: datetime
    end: datetime
    label: str

    @property
    def is_empty(self) -> bool:
        """True for a period entirely in the future ("June 2031"): nothing can have been published in it."""
        return self.end <= self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


@dataclass(frozen=True)
class StructuredQuery:
    """What a question asks for, as filters. Empty lists and None mean "no constraint"."""

    text: str
    until: datetime
    window: TimeWindow | None = None
    kinds: list[Kind] = field(default_factory=list)
    exploited: bool | None = None
    min_severity: Severity | None = None
    cves: list[str] = field(default_factory=list)
    has_cve: bool = False
    vendors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    exclude_terms: list[str] = field(default_factory=list)

    def to_filters(self) -> dict[str, Any]:
        """A JSON-ready dict of every filter (enums as their values, datetimes as ISO strings)."""
        return {
            "window": self.window.to_dict() if self.window else None,
            "until": self.until.isoformat(),
            "kinds": [k.value for k in self.kinds],
            "exploited": self.exploited,
            "min_severity": self.min_severity.value if self.min_severity else None,
            "cves": list(self.cves),
            "has_cve": self.has_cve,
            "vendors": list(self.vendors),
            "products": list(self.products),
            "terms": list(self.terms),
            "exclude_terms": list(self.exclude_terms),
        }


# ==================================================================================================================
# Text bookkeeping: every recognised phrase is blanked out so later passes and the leftover terms skip it.
# ==================================================================================================================


class _Text:
    """The question with consumed spans blanked (replaced by spaces, so offsets never shift)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.chars = list(text)

    @property
    def current(self) -> str:
        return "".join(self.chars)

    def consume(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.chars[i] = " "

    def free(self, start: int, end: int) -> bool:
        return all(self.chars[i] != " " or self.original[i] == " " for i in range(start, end)) and any(
            self.chars[i] != " " for i in range(start, end)
        )

    def drop(self, pattern: re.Pattern[str]) -> None:
        """Consume every match of ``pattern``: words that mean nothing for the filters."""
        for _ in self.take(pattern):
            pass

    def take(self, pattern: re.Pattern[str]) -> Iterable[re.Match[str]]:
        """Matches of ``pattern`` in the not-yet-consumed text, each consumed as it is yielded.

        A match that overlaps consumed text is skipped and the search resumes one character later, so
        a shorter alternative inside it still gets its chance.
        """
        pos = 0
        while pos <= len(self.chars):
            m = pattern.search(self.current, pos)
            if m is None:
                return
            if m.end() > m.start() and self.free(m.start(), m.end()):
                self.consume(m.start(), m.end())
                yield m
                pos = m.end()
            else:
                pos = m.start() + 1


# ==================================================================================================================
# Time
# ==================================================================================================================

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH_NAMES = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fourteen": 14,
    "thirty": 30,
    "couple of": 2,
    "a couple of": 2,
    "few": 3,
    "a few": 3,
}

_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY_RE = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d\d"

# One date-like expression. Named groups tell _point() which form matched. Forms that are also ordinary
# words (a bare month "may", a bare year) are only accepted after a preposition; see _SOLO_OK.
_POINT = (
    rf"(?P<iso>(?P<iy>{_YEAR})[-/](?P<im>\d{{1,2}})[-/](?P<id>\d{{1,2}}))(?!\d)"
    rf"|(?P<dmy>(?P<dd>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<dm>{_MONTH_RE})(?:,?\s+(?P<dy>{_YEAR}))?)(?![\w])"
    rf"|(?P<mdy>(?P<mm>{_MONTH_RE})\s+(?P<md>\d{{1,2}}){_ORD}(?!\d)(?:,?\s+(?P<my>{_YEAR}))?)(?![\w])"
    rf"|(?P<monyear>(?P<mym>{_MONTH_RE})\s+(?:of\s+)?(?P<myy>{_YEAR}))(?!\d)"
    rf"|(?P<quarter>q(?P<q>[1-4])(?:\s*(?P<qy>{_YEAR}))?|(?P<qy2>{_YEAR})\s*q(?P<q2>[1-4]))(?![\w])"
    r"|(?P<today>today)"
    r"|(?P<yesterday>yesterday)"
    r"|(?P<ago>(?P<agon>\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?P<agou>days?|weeks?|months?)\s+ago)"
    rf"|(?P<lastwd>(?:last|previous)\s+(?P<lwd>{_WEEKDAY_RE}))"
    rf"|(?P<weekday>(?:this\s+(?:past\s+)?)?(?P<wd>{_WEEKDAY_RE}))"
    rf"|(?P<month>(?P<mo>{_MONTH_RE}))"
    rf"|(?P<year>(?P<yr>{_YEAR}))"
)
#: The same grammar without group names, for embedding in larger patterns (a name may occur only once per regex).
_POINT_ANON = re.sub(r"\(\?P<\w+>", "(?:", _POINT)
_POINT_RE = re.compile(_POINT, re.IGNORECASE)
_WORD_MONTHS = {"may", "mar", "march"}
_SOLO_OK = {"iso", "dmy", "mdy", "monyear", "quarter", "today", "yesterday", "ago", "lastwd", "weekday"}


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime
    label: str


class _Clock:
    """Calendar arithmetic in the asker's zone, with local times that DST skipped moved forward."""

    def __init__(self, now: datetime, tz: ZoneInfo) -> None:
        self.tz = tz
        self.now = now.astimezone(tz)
        self.today = self.now.date()

    def at(self, day: date, hour: int = 0, minute: int = 0) -> datetime:
        naive = datetime(day.year, day.month, day.day, hour, minute)
        # Round-tripping through UTC turns a local time that does not exist (skipped by DST) into a real one.
        return naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    def day(self, day: date, label: str) -> _Span:
        return _Span(self.at(day), self.at(day + timedelta(days=1)), label)

    def month(self, year: int, month: int) -> _Span:
        first = date(year, month, 1)
        return _Span(self.at(first), self.at(first + relativedelta(months=1)), f"{_MONTH_NAMES[month]} {year}")

    def year(self, year: int) -> _Span:
        return _Span(self.at(date(year, 1, 1)), self.at(date(year + 1, 1, 1)), str(year))

    def quarter(self, year: int, q: int) -> _Span:
        first = date(year, 3 * (q - 1) + 1, 1)
        return _Span(self.at(first), self.at(first + relativedelta(months=3)), f"Q{q} {year}")

    def week_start(self, day: date) -> date:
        return day - timedelta(days=day.weekday())

    def hours_ago(self, hours: int) -> datetime:
        """``now`` minus real elapsed hours (aware-datetime arithmetic in one zone would use the wall clock)."""
        return (self.now.astimezone(UTC) - timedelta(hours=hours)).astimezone(self.tz)

    def wall_minus(self, delta: relativedelta) -> datetime:
        """``now`` minus a calendar amount on the local wall clock (7 days ago at the same local time)."""
        naive = self.now.replace(tzinfo=None) - delta
        return naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)


def _month_number(token: str) -> int:
    return _MONTHS[token.lower().rstrip(".")[:3]]


def _number(token: str) -> int:
    token = token.lower().strip()
    return int(token) if token.isdigit() else _NUMBER_WORDS[token]


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _point(m: re.Match[str], clock: _Clock, anchor: date | None = None) -> _Span | None:
    """The period one date-like expression names, or None if it is not a real date (31 June).

    A date without a year is the most recent one on or before ``anchor`` (default: today); a range's
    end is the anchor of its start, so "from Dec 28 to Jan 3 2024" starts in 2023.
    """
    g = m.groupdict()
    today = anchor or clock.today
    if g["iso"]:
        d = _safe_date(int(g["iy"]), int(g["im"]), int(g["id"]))
        return clock.day(d, d.isoformat()) if d else None
    if g["dmy"] or g["mdy"]:
        day_s, mon_s, year_s = (g["dd"], g["dm"], g["dy"]) if g["dmy"] else (g["md"], g["mm"], g["my"])
        month, day = _month_number(mon_s), int(day_s)
        if year_s:
            d = _safe_date(int(year_s), month, day)
        else:
            # The most recent such date not in the future; "Feb 29" looks back to the last leap year.
            candidates = (_safe_date(today.year - back, month, day) for back in range(9))
            d = next((c for c in candidates if c is not None and c <= today), None)
        return clock.day(d, d.isoformat()) if d else None
    if g["monyear"]:
        return clock.month(int(g["myy"]), _month_number(g["mym"]))
    if g["quarter"]:
        q = int(g["q"] or g["q2"])
        year_s = g["qy"] or g["qy2"]
        if year_s:
            return clock.quarter(int(year_s), q)
        year = today.year if date(today.year, 3 * (q - 1) + 1, 1) <= today else today.year - 1
        return clock.quarter(year, q)
    today = clock.today  # the rest is relative to the real today, whatever the anchor
    if g["today"]:
        return clock.day(today, "today")
    if g["yesterday"]:
        return clock.day(today - timedelta(days=1), "yesterday")
    if g["ago"]:
        n, unit = _number(g["agon"]), g["agou"].lower().rstrip("s")
        delta = {"day": relativedelta(days=n), "week": relativedelta(weeks=n), "month": relativedelta(months=n)}[unit]
        d = today - delta
        return clock.day(d, f"{n} {unit}{'s' if n != 1 else ''} ago")
    if g["lastwd"]:
        target = _WEEKDAYS.index(g["lwd"].lower().rstrip("s"))
        back = (today.weekday() - target) % 7 or 7
        return clock.day(today - timedelta(days=back), f"last {_WEEKDAYS[target].title()}")
    if g["weekday"]:
        target = _WEEKDAYS.index(g["wd"].lower().rstrip("s"))
        back = (today.weekday() - target) % 7
        return clock.day(today - timedelta(days=back), _WEEKDAYS[target].title())
    if g["month"]:
        ref = anchor or today
        month = _month_number(g["mo"])
        return clock.month(ref.year if month <= ref.month else ref.year - 1, month)
    if g["year"]:
        return clock.year(int(g["yr"]))
    return None


def _last(n: int, word: str) -> str:
    """Label of a rolling window: "last 7 days", but "past day" (so it cannot be read as calendar "last week")."""
    return f"last {n} {word}s" if n != 1 else f"past {word}"


def _rolling(n: int, unit: str, clock: _Clock) -> _Span | None:
    """ "last N <unit>": a window ending now. Hours are absolute time; longer units follow the wall clock."""
    unit = unit.lower()
    if unit in {"h", "hr", "hrs"} or unit.startswith("hour"):
        return _Span(clock.hours_ago(n), clock.now, _last(n, "hour"))
    if unit == "d" or unit.startswith("day"):
        delta, word = relativedelta(days=n), "day"
    elif unit in {"w", "wk", "wks"} or unit.startswith("week"):
        delta, word = relativedelta(weeks=n), "week"
    elif unit in {"mo", "mos"} or unit.startswith("month"):
        delta, word = relativedelta(months=n), "month"
    elif unit in {"y", "yr", "yrs"} or unit.startswith("year"):
        delta, word = relativedelta(years=n), "year"
    else:
        return None
    return _Span(clock.wall_minus(delta), clock.now, _last(n, word))


def _calendar(which: str, unit: str, clock: _Clock) -> _Span:
    """ "this week", "last month", "previous quarter", "last weekend": whole calendar units."""
    today = clock.today
    previous = which.lower() in {"last", "previous", "prior"}
    word = "last" if previous else "this"
    unit = unit.lower()
    if unit == "week":
        monday = clock.week_start(today) - timedelta(weeks=1 if previous else 0)
        return _Span(clock.at(monday), clock.at(monday + timedelta(weeks=1)), f"{word} week")
    if unit == "month":
        first = date(today.year, today.month, 1) - relativedelta(months=1 if previous else 0)
        span = clock.month(first.year, first.month)
        return _Span(span.start, span.end, f"{word} month")
    if unit == "year":
        span = clock.year(today.year - (1 if previous else 0))
        return _Span(span.start, span.end, f"{word} year")
    if unit == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1) - relativedelta(months=3 if previous else 0)
        span = clock.quarter(first.year, (first.month - 1) // 3 + 1)
        return _Span(span.start, span.end, f"{word} quarter")
    # weekend: the most recent one that has begun ("last weekend" on a Sunday is the one before)
    saturday = today - timedelta(days=(today.weekday() - 5) % 7)
    if previous and today.weekday() >= 5:
        saturday -= timedelta(weeks=1)
    return _Span(clock.at(saturday), clock.at(saturday + timedelta(days=2)), f"{'last ' if previous else ''}weekend")


def _part_of_day(part: str, clock: _Clock) -> _Span:
    today = clock.today
    part = " ".join(part.lower().split())
    if part == "this morning":
        return _Span(clock.at(today), clock.at(today, 12), part)
    if part == "this afternoon":
        return _Span(clock.at(today, 12), clock.at(today, 18), part)
    if part in {"this evening", "tonight"}:
        return _Span(clock.at(today, 18), clock.at(today + timedelta(days=1)), part)
    return _Span(clock.at(today - timedelta(days=1), 18), clock.at(today, 6), "last night")  # last night, overnight


_NUM = (
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fourteen|thirty|"
    r"(?:a\s+)?couple\s+of|(?:a\s+)?few)"
)
_LONG_UNIT = r"(?:hours?|hrs?|days?|weeks?|wks?|months?|mos?|years?|yrs?)"
_ANY_UNIT = r"(?:hours?|hrs?|h|days?|d|weeks?|wks?|w|months?|mos?|years?|yrs?|y)"
_THE = r"(?:(?:with)?in\s+the\s+|over\s+the\s+|during\s+the\s+|for\s+the\s+)"

#: (pattern, handler) for phrases relative to now, tried in order; each match is consumed.
_RELATIVE: list[tuple[re.Pattern[str], Callable[[re.Match[str], _Clock], _Span | None]]] = [
    # "last 7 days", "past 24h", "previous 2 weeks", "in the last 3 months", "within the past 48 hours"
    (
        re.compile(
            rf"(?<![\w-]){_THE}?(?:last|past|previous|prior)\s+(?P<n>{_NUM})\s*(?P<u>{_ANY_UNIT})(?![\w-])", re.I
        ),
        lambda m, c: _rolling(_number(" ".join(m["n"].split())), m["u"], c),
    ),
    # "past week", "past month", "in the last month", "over the past year", "last hour", "past day"
    (
        re.compile(
            rf"(?<![\w-])(?:{_THE}(?:last|past)|past)\s+(?P<u>{_LONG_UNIT})(?![\w-])"
            rf"|(?<![\w-])(?:last|previous)\s+(?P<u2>hour|day|24h)(?![\w-])",
            re.I,
        ),
        lambda m, c: _rolling(24, "h", c) if (m["u2"] or "").lower() == "24h" else _rolling(1, m["u"] or m["u2"], c),
    ),
    # "24h", "48 hours", "7d" on their own
    (
        re.compile(r"(?<![\w.-])(?P<n>[1-9]\d{0,2})\s*(?P<u>h|hrs?|hours?|d|days?)(?![\w-])(?!\s+ago\b)", re.I),
        lambda m, c: _rolling(int(m["n"]), m["u"], c),
    ),
    # "this week", "last month", "previous quarter", "current year", "last weekend", "over the weekend"
    (
        re.compile(
            r"(?<![\w-])(?:(?P<w>this|last|previous|prior|current)\s+(?P<u>week|month|year|quarter|weekend)"
            r"|(?:over\s+)?the\s+(?P<u2>weekend))(?![\w-])",
            re.I,
        ),
        lambda m, c: _calendar(m["w"] or "this", m["u"] or m["u2"], c),
    ),
    (
        re.compile(
            r"(?<![\w-])(?P<p>this\s+morning|this\s+afternoon|this\s+evening|tonight|last\s+night|overnight)"
            r"(?![\w-])",
            re.I,
        ),
        lambda m, c: _part_of_day(m["p"], c),
    ),
    (
        re.compile(r"(?<![\w-])(?:year[\s-]to[\s-]date|ytd|so\s+far\s+this\s+year)(?![\w-])", re.I),
        lambda m, c: _calendar("this", "year", c),
    ),
]
_RANGE = re.compile(
    rf"(?<![\w-])(?:between\s+(?P<a1>{_POINT_ANON})\s+(?:and|&)\s+(?P<b1>{_POINT_ANON})"
    rf"|from\s+(?P<a2>{_POINT_ANON})\s+(?:to|until|till|through|thru|-|–)\s+(?P<b2>{_POINT_ANON}))(?![\w])",
    re.IGNORECASE,
)
_SINCE_LEAD = re.compile(r"(?<![\w-])(?:since|after)\s+(?:the\s+)?(?:start\s+of\s+|beginning\s+of\s+)?$", re.I)
_SINCE = re.compile(rf"(?<![\w-])(?:since|after|from)\s+(?:the\s+)?(?P<p>{_POINT_ANON})(?![\w])", re.IGNORECASE)
_SINCE_TIME = re.compile(
    r"(?<![\w-])since\s+(?P<h>\d{1,2})(?::(?P<mi>\d\d))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?(?![\w])", re.IGNORECASE
)
_ON = re.compile(
    rf"(?<![\w-])(?:on|in|during|for|of|throughout|over)\s+(?:the\s+(?:month\s+of\s+|year\s+)?)?(?P<p>{_POINT_ANON})(?![\w])",
    re.IGNORECASE,
)
_SOLO = re.compile(rf"(?<![\w-])(?P<p>{_POINT_ANON})(?![\w])", re.IGNORECASE)


def _sub_point(m: re.Match[str], group: str, clock: _Clock, anchor: date | None = None) -> _Span | None:
    """Re-parse a point captured inside a larger pattern (Python cannot reuse named groups there)."""
    inner = _POINT_RE.fullmatch(m.group(group))
    return _point(inner, clock, anchor) if inner else None


def _parse_time(text: _Text, clock: _Clock) -> _Span | None:
    """The first time expression in the text (all of them are consumed, so none becomes a search term)."""
    found: list[tuple[int, _Span]] = []

    for m in text.take(_RANGE):
        b = _sub_point(m, "b1" if m.group("b1") else "b2", clock)
        anchor = (b.end - timedelta(microseconds=1)).date() if b else None
        a = _sub_point(m, "a1" if m.group("a1") else "a2", clock, anchor)
        if a and b:
            lo, hi = (a, b) if a.start <= b.start else (b, a)
            found.append((m.start(), _Span(lo.start, max(hi.end, lo.end), f"{lo.label} to {hi.label}")))
    for pattern, handler in _RELATIVE:
        for m in text.take(pattern):
            span = handler(m, clock)
            if span is None:
                continue
            lead = _SINCE_LEAD.search(text.current, 0, m.start()) if span.end < clock.now else None
            if lead:  # "since last week": from the start of that period until now
                text.consume(lead.start(), lead.end())
                span = _Span(span.start, clock.now, f"since {span.label}")
            found.append((m.start(), span))
    for m in text.take(_SINCE_TIME):
        hour, minute = int(m.group("h")), int(m.group("mi") or 0)
        ap = (m.group("ap") or "").lower().replace(".", "")
        if ap == "pm" and hour < 12:
            hour += 12
        elif ap == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59 or (not ap and not m.group("mi")):
            continue
        start = clock.at(clock.today, hour, minute)
        if start > clock.now:  # "since 9pm" asked at 08:00 means last night
            start = clock.at(clock.today - timedelta(days=1), hour, minute)
        found.append((m.start(), _Span(start, clock.now, f"since {hour:02d}:{minute:02d}")))
    for m in text.take(_SINCE):
        p = _sub_point(m, "p", clock)
        if p:
            found.append((m.start(), _Span(p.start, clock.now, f"since {p.label}")))
    for m in text.take(_ON):
        p = _sub_point(m, "p", clock)
        if p:
            found.append((m.start(), p))
    for m in _SOLO.finditer(text.current):
        inner = _POINT_RE.fullmatch(m.group("p"))
        kind = next((k for k, v in inner.groupdict().items() if v and k in _SOLO_OK), None) if inner else None
        if inner and inner["month"] and inner["mo"].lower().rstrip(".") not in _WORD_MONTHS:
            kind = "month"  # "july" alone is a month; "may" and "march" alone are words
        if kind and text.free(m.start(), m.end()):
            p = _point(inner, clock) if inner else None
            if p:
                text.consume(m.start(), m.end())
                found.append((m.start(), p))
    if not found:
        return None
    found.sort(key=lambda item: item[0])
    return found[0][1]


def _window(span: _Span, now: datetime) -> TimeWindow:
    """Clamp to the moment of asking: a window never ends after ``now``; a wholly future one is empty."""
    end = min(span.end, now)
    start = span.start if span.start <= now else now
    return TimeWindow(start=start, end=max(end, start), label=span.label)


# ==================================================================================================================
# Operators, exclusions, CVEs
# ==================================================================================================================

_CVE = re.compile(r"(?<![\w-])CVE[-_\s]?(\d{4})[-_\s]?(\d{4,7})(?![\w])", re.IGNORECASE)
_OPERATOR = re.compile(
    r"(?<!\S)(?P<neg>-)?(?P<key>vendor|product|kind|type|severity|sev|cvss|cve|has|is|exploited|since|on|in)"
    r"(?P<op>>=|=>|<=|>|<|:|=)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;?!]*)",
    re.IGNORECASE,
)
_EXCLUDE = re.compile(
    r"(?:(?<!\S)-(?P<quoted>\"[^\"]+\")|(?<!\S)-(?P<word>[A-Za-z][\w.+-]*)"
    r"|(?<![\w-])(?:excluding|except(?:\s+for)?|without|but\s+not|minus|not\s+about)\s+(?P<after>\"[^\"]+\"|[A-Za-z][\w.+-]*))",
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
            r"unavailable|unavailability|unreachable|"
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
            r"exposed(?:\s+data)?|data\s+exposure|hack(?:s|ed)?|heists?|compromised\s+accounts?)(?![\w-])",
            re.IGNORECASE,
        ),
    ),
    (
        Kind.ADVISORY,
        re.compile(
            r"(?<![\w-])(?:(?:ics\s+|security\s+|cisa\s+)?advisor(?:y|ies)|(?:security\s+)?bulletins?)(?![\w-])",
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
    # "CVSS 9+", "cvss above 7", "CVSS >= 8.8"
    (
        re.compile(
            r"(?<![\w-])cvss(?:v?3(?:\.1)?)?\s*(?:score\s*)?(?:>=|=>|>|of|above|over|at\s+least|:)?\s*"
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
    please pls thanks thank hi hello hey bot threatbot yo ok okay
    new news latest recent recently lately update updates updated info information anything something stuff things
    thing happening happened going on whats wats there're
    add adds adding additions added addition entries entry items item reports reported report stories story articles
    article
    attack attacks attacked incidents incident issue issues problem problems alerts alert
    happen happens got gotten yet still already ever may might must shall
    targeting targeted targets target hitting hit affecting affected impacting impacted involving related
    regarding using used via across against
    """.split()  # noqa: SIM905 - prose is easier to review than quoted strings
)
#: Names that contain a weekday but are no date; taken before time parsing.
_NOT_A_DAY = re.compile(r"(?<![\w-])(?:(?P<pt>patch\s+tuesday)|black\s+friday|cyber\s+monday)(?![\w-])", re.I)
_NOW_WORDS = re.compile(r"(?<![\w-])(?:right\s+now|at\s+the\s+moment|currently|as\s+of\s+now)(?![\w-])", re.I)
_TAKEDOWN = re.compile(r"(?<![\w-])(?:take[sn]?|taking|took)\s+down(?![\w-])", re.IGNORECASE)
_PHRASE_TERMS = re.compile(
    r"(?<![\w-])(?:critical\s+infrastructure|supply[\s-]chain|zero\s+trust|social\s+engineering|"
    r"credential\s+stuffing|business\s+email\s+compromise|denial[\s-]of[\s-]service|ddos)(?![\w-])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9][\w.+'-]*[\w+]|[A-Za-z0-9]")


# ==================================================================================================================
# Parser
# ==================================================================================================================


def _dedupe(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for item in items:
        key = item.lower() if isinstance(item, str) else item
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


@dataclass
class _Found:
    """What the passes over a question have recognised so far."""

    kinds: list[Kind] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    cves: list[str] = field(default_factory=list)
    terms: list[tuple[int, str]] = field(default_factory=list)  # (position, term), sorted at the end
    excludes: list[str] = field(default_factory=list)
    severities: list[Severity] = field(default_factory=list)
    exploited: bool | None = None
    has_cve: bool = False
    span: _Span | None = None


def _read_operators(buf: _Text, found: _Found, vd: VendorDictionary, clock: _Clock) -> None:
    """``vendor:fortinet kind:outage severity>=high cve:any exploited:no since:2024-06-01`` and ``-vendor:x``."""
    for m in buf.take(_OPERATOR):
        key, op, value = m["key"].lower(), m["op"], _unquote(m["value"]).strip()
        name = value.replace("_", " ")
        if m["neg"]:
            if value:
                found.excludes.append(value.lower())  # "-vendor:acme": the name must not appear
        elif key == "vendor" and value:
            found.vendors.append(vd.canonical_vendor(name) or name)
        elif key == "product" and value:
            product = vd.canonical_product(name)
            if product:
                found.vendors.append(product[0])
            found.products.append(product[1] if product else name)
        elif key in {"kind", "type"} and value:
            for part in re.split(r"[,|]", value.lower()):
                kind = _KIND_WORDS.get(part) or next((k for k in Kind if k.value == part), None)
                if kind:
                    found.kinds.append(kind)
        elif key in {"severity", "sev"} and value:
            level = _SEVERITY_WORDS.get(value.lower())
            if level and op in {">", "<", "<="}:
                level = _stricter(level) if op == ">" else None  # upper bounds are not a filter we offer
            if level:
                found.severities.append(level)
        elif key == "cvss" and value:
            with contextlib.suppress(ValueError):
                found.severities.append(Severity.from_cvss(float(value)))
        elif key == "cve":
            match = _CVE.fullmatch(value) if value else None
            if match:
                found.cves.append(f"CVE-{match[1]}-{match[2]}")
            else:
                found.has_cve = True  # "cve:", "cve:any", "cve:*": records that name any CVE
        elif key in {"has", "is"}:
            if value.lower() in {"cve", "cves"}:
                found.has_cve = True
            elif value.lower() in {"exploited", "kev", "itw", "0day", "zero-day", "zeroday"}:
                found.exploited = True
        elif key == "exploited":
            found.exploited = value.lower() not in {"no", "false", "0", "n"}
        elif key in {"since", "on", "in"} and value:
            inner = _POINT_RE.fullmatch(name)
            point = _point(inner, clock) if inner else None
            if point:
                found.span = _Span(point.start, clock.now, f"since {point.label}") if key == "since" else point


def _read_vendors(buf: _Text, found: _Found, vd: VendorDictionary) -> None:
    """Vendors and products, ambiguous names resolved by the dictionary's context rules (lenient: module doc)."""
    for match in vd.find(buf.current, lenient=True):
        if buf.free(match.start, match.end):
            buf.consume(match.start, match.end)
            found.vendors.append(match.vendor)
            if match.product:
                found.products.append(match.product)


def _read_signals(buf: _Text, found: _Found) -> None:
    """Exploitation, severity and kind words, and multi-word topics that must stay one term."""
    buf.drop(_NOW_WORDS)  # "right now": the moment of asking is already the upper bound (``until``)
    for m in buf.take(_TAKEDOWN):  # law-enforcement takedowns are not outages
        found.terms.append((m.start(), "takedown"))
    for _ in buf.take(_NOT_EXPLOITED):
        found.exploited = False
    for _ in buf.take(_EXPLOITED):
        found.exploited = True if found.exploited is None else found.exploited
    for pattern, level_of in _SEVERITY_PHRASES:
        for m in buf.take(pattern):
            level = level_of(m)
            if level:
                found.severities.append(level)
    kinds: list[tuple[int, Kind]] = []
    for kind, pattern in _KIND_PATTERNS:
        kinds.extend((m.start(), kind) for m in buf.take(pattern))
    found.kinds.extend(kind for _, kind in sorted(kinds, key=lambda item: item[0]))
    for m in buf.take(_PHRASE_TERMS):
        found.terms.append((m.start(), " ".join(m.group(0).lower().split())))


def parse_query(
    text: str,
    *,
    now: datetime,
    tz: str | ZoneInfo = "UTC",
    dictionary: VendorDictionary | None = None,
) -> StructuredQuery:
    """Turn a question into a :class:`StructuredQuery`, resolving time in ``tz`` against ``now``.

    ``now`` is the moment of asking (a naive ``now`` is taken as UTC, like record dates); nothing
    published after it can match. ``dictionary`` defaults to the packaged :class:`VendorDictionary`.
    Passes run in a fixed order and each consumes what it recognises, so later passes and the
    leftover terms never see it twice.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    clock = _Clock(now, _zone(tz))
    vd = dictionary or VendorDictionary.default()
    buf = _Text(text)
    found = _Found()

    _read_operators(buf, found, vd, clock)
    # Exclusions go before vendor matching, so "Exchange outage -crypto" is not vetoed by the word excluded.
    for m in buf.take(_EXCLUDE):
        value = _unquote(m["quoted"] or m["word"] or m["after"] or "").strip().lower()
        if value:
            found.excludes.append(value)
    for m in buf.take(_QUOTED):  # quoted phrases are literal search terms
        found.terms.append((m.start(), (m["q"] or m["q2"]).strip().lower()))
    for m in buf.take(_CVE):
        found.cves.append(f"CVE-{m[1]}-{m[2]}")
    _read_vendors(buf, found, vd)
    for m in buf.take(_NOT_A_DAY):  # "Patch Tuesday" is a release, not last Tuesday
        if m["pt"]:
            found.kinds.append(Kind.VULNERABILITY)
        else:
            found.terms.append((m.start(), " ".join(m.group(0).lower().split())))
    parsed = _parse_time(buf, clock)
    span = found.span or parsed
    _read_signals(buf, found)
    for m in _WORD.finditer(buf.current):  # what is left: meaningful words
        word = m.group(0).lower().strip("'.")
        if word and word not in _STOPWORDS and not word.isdigit() and len(word) >= 2:
            found.terms.append((m.start(), word))

    terms = _dedupe(term for _, term in sorted(found.terms, key=lambda item: item[0]))
    return StructuredQuery(
        text=text,
        until=clock.now,
        window=_window(span, clock.now) if span else None,
        kinds=_dedupe(found.kinds),
        exploited=found.exploited,
        min_severity=min(found.severities, key=lambda s: s.rank) if found.severities else None,
        cves=_dedupe(found.cves),
        has_cve=found.has_cve,
        vendors=_dedupe(found.vendors),
        products=_dedupe(found.products),
        terms=[t for t in terms if t not in found.excludes],
        exclude_terms=_dedupe(found.excludes),
    )
