"""Time phrases ("today", "since Monday", "last 7 days", "Q3 2024", "from Dec 28 to Jan 3") as half-open windows.

Resolved in the asker's zone against ``now``; the rules are listed in :mod:`retrieval.query`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from retrieval.query.model import TimeWindow
from retrieval.query.text import _Text
from retrieval.records import EARLIEST_PLAUSIBLE

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
    "couple": 2,
    "a couple": 2,
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
#: Possessive time words typed without the apostrophe, as chat does ("yesterdays patch tuesday", "this weeks").
_BARE_POSSESSIVE = re.compile(
    r"(?<![\w'])(?P<word>today|yesterday|tonight|(?:this|last)\s+(?:week|month|year|quarter))s(?![\w'])", re.IGNORECASE
)


def restore_possessives(text: str) -> str:
    """``text`` with "yesterdays"/"this weeks" read as "yesterday's"/"this week's", so they parse as time."""
    return _BARE_POSSESSIVE.sub(lambda m: f"{m['word']}'s", text)


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
        try:
            d = today - delta
        except (OverflowError, ValueError):  # "99999999 days ago": a day before any record
            d = EARLIEST_PLAUSIBLE.date() - timedelta(days=1)
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


#: News of a Patch Tuesday (and the advisories vendors time to it) comes that day and the days after.
PATCH_TUESDAY_NEWS = timedelta(days=7)


def latest_patch_tuesday(clock: _Clock) -> _Span:
    """The week from the latest Patch Tuesday (a month's second Tuesday) on or before today.

    "siemens advisories from this patch tuesday?" asks about that release, not about all time. Advisories
    are dated by their UTC day, so the window opens at the earlier of the day's local and UTC midnights.
    """

    def second_tuesday(year: int, month: int) -> date:
        first = date(year, month, 1)
        return first + timedelta(days=(1 - first.weekday()) % 7 + 7)

    day = second_tuesday(clock.today.year, clock.today.month)
    if day > clock.today:
        previous = clock.today.replace(day=1) - timedelta(days=1)
        day = second_tuesday(previous.year, previous.month)
    utc_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).astimezone(clock.tz)
    start = min(clock.at(day), utc_midnight)
    # The label goes mid-sentence ("No Siemens advisories the week of Patch Tuesday (Tue 10 Nov – …)"), and the
    # answer adds the dates.
    return _Span(start, clock.at(day + PATCH_TUESDAY_NEWS), "the week of Patch Tuesday")


def _last(n: int, word: str) -> str:
    """Label of a rolling window: "last 7 days", but "past day" (so it cannot be read as calendar "last week")."""
    return f"last {n} {word}s" if n != 1 else f"past {word}"


def _rolling(n: int, unit: str, clock: _Clock) -> _Span | None:
    """ "last N <unit>": a window ending now. Hours are absolute time; longer units follow the wall clock."""
    unit = unit.lower()
    if unit in {"h", "hr", "hrs"} or unit.startswith("hour"):
        return _Span(_or_earliest(lambda: clock.hours_ago(n), clock), clock.now, _last(n, "hour"))
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
    return _Span(_or_earliest(lambda: clock.wall_minus(delta), clock), clock.now, _last(n, word))


def _or_earliest(start: Callable[[], datetime], clock: _Clock) -> datetime:
    """A window's start, or the earliest plausible record date when "last 99999999999999 days" overflows."""
    try:
        return start()
    except (OverflowError, ValueError):
        return EARLIEST_PLAUSIBLE.astimezone(clock.tz)


#: Chat spelling of calendar units ("this yr", "last wk").
_UNIT_ABBREVIATIONS = {"wk": "week", "mo": "month", "yr": "year"}


def _calendar(which: str, unit: str, clock: _Clock) -> _Span:
    """ "this week", "last month", "previous quarter", "last weekend": whole calendar units."""
    today = clock.today
    previous = which.lower() in {"last", "previous", "prior"}
    word = "last" if previous else "this"
    unit = _UNIT_ABBREVIATIONS.get(unit.lower(), unit.lower())
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


def _part_of_day(part: str, clock: _Clock) -> _Span | None:
    """A part of today, up to now: reports of what broke this morning are written after it, the same day.

    None for a part not yet begun: "should we patch tonight?" asked in the morning says when to act.
    """
    today = clock.today
    part = " ".join(part.lower().split())
    if part == "this morning":
        return _Span(clock.at(today), max(clock.at(today, 12), clock.now), part)
    if part == "this afternoon":
        span = _Span(clock.at(today, 12), max(clock.at(today, 18), clock.now), part)
        return span if span.start <= clock.now else None
    if part in {"this evening", "tonight"}:
        span = _Span(clock.at(today, 18), clock.at(today + timedelta(days=1)), part)
        return span if span.start <= clock.now else None
    return _Span(clock.at(today - timedelta(days=1), 18), clock.at(today, 6), "last night")  # last night, overnight


_NUM = (
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fourteen|thirty|"
    r"(?:a\s+)?couple(?:\s+of)?|(?:a\s+)?few)"
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
            r"(?<![\w-])(?:(?P<w>this|last|previous|prior|current)\s+(?P<u>week|wk|month|mo|year|yr|quarter|weekend)"
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
#: "… exploited already? iphones need the update today?", "… need to know if we patch this weekend": after
#: the asking sentence, a period after what the asker must do says when to act, not which reports to read.
_ACTION_LEAD = re.compile(
    r"(?<![\w-])(?:need|needs|have\s+to|has\s+to|must|should|going\s+to|gonna|plan\s+to|want\s+to|"
    r"whether\s+to|if\s+we|do\s+we)\s+(?:[\w+'/-]+\s+){0,4}$",
    re.I,
)
#: "back in 2019", "back on monday": a period the message looks back to, the time of the story it retells.
_BACK_IN = re.compile(r"(?<![\w-])back\s+(?:in\s+|on\s+|around\s+)?$", re.I)
_ASKING_SENTENCE_END = re.compile(r"\?+(?=\s*\S)")
#: "the webkit 0days apple patched last week - in KEV yet?": a period right after a release verb dates the
#: release, and what followed it (the KEV entries, the exploitation reports) runs from then until now.
_RELEASED_LEAD = re.compile(
    r"(?<![\w-])(?:patched|fixed|disclosed|released|announced|published|issued|shipped|dropped|pushed|launched|"
    r"put\s+out|rolled\s+out)\s+(?:it\s+|them\s+)?$",
    re.I,
)
#: "since october", "since the start of october", "since early october": from that period's start until now.
_SINCE = re.compile(
    rf"(?<![\w-])(?:since|after|from)\s+(?:the\s+)?(?:(?:start|beginning|middle|end)\s+of\s+(?:the\s+)?|early\s+|"
    rf"mid[\s-]+|late\s+)?(?P<p>{_POINT_ANON})(?![\w])",
    re.IGNORECASE,
)
_SINCE_TIME = re.compile(
    r"(?<![\w-])since\s+(?P<h>\d{1,2})(?::(?P<mi>\d\d))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)?(?![\w])", re.IGNORECASE
)
_ON = re.compile(
    rf"(?<![\w-])(?:on|in|during|for|of|throughout|over)\s+(?:the\s+(?:month\s+of\s+|year\s+)?)?(?P<p>{_POINT_ANON})(?![\w])",
    re.IGNORECASE,
)
_SOLO = re.compile(rf"(?<![\w-])(?P<p>{_POINT_ANON})(?![\w])", re.IGNORECASE)
#: "the 2023 ransomware", "the 2020 twitter hack": a year that names which event, not when it was written about
#: ("capita got a record fine for the 2023 ransomware - any writeups?" asks for this year's writeups).
_EVENT_YEAR = re.compile(
    rf"(?<![\w-])(?:(?:on|in|during|for|of|from|about)\s+)?the\s+{_YEAR}(?=\s+(?!q[1-4]\b)[a-z])", re.IGNORECASE
)
#: "CVE-… - a bypass of the december fix?": beside a CVE, which names the bug, a month before a noun names which
#: release of it ("the jan patch"), not when the reports were written. Without one, "the december bulletin" is
#: the month's, and so are its reports.
_EVENT_MONTH = re.compile(
    rf"(?<![\w-])(?:(?:on|in|during|for|of|from|about)\s+)?the\s+{_MONTH_RE}(?:\s+{_YEAR})?"
    r"(?=\s+(?!(?:of|to|and|through|until|till|or)\b)[a-z])",
    re.IGNORECASE,
)


def _sub_point(m: re.Match[str], group: str, clock: _Clock, anchor: date | None = None) -> _Span | None:
    """Re-parse a point captured inside a larger pattern (Python cannot reuse named groups there)."""
    inner = _POINT_RE.fullmatch(m.group(group))
    return _point(inner, clock, anchor) if inner else None


def _parse_time(text: _Text, clock: _Clock, *, names_a_bug: bool = False) -> _Span | None:
    """The first time expression in the text (all of them are consumed, so none becomes a search term).

    ``names_a_bug``: the question names a CVE, so a month naming a release of it is no window (_EVENT_MONTH).
    """
    found: list[tuple[int, _Span]] = []
    for pattern in (_EVENT_YEAR, _EVENT_MONTH) if names_a_bug else (_EVENT_YEAR,):
        for _ in text.take(pattern):
            pass  # consumed: neither a window nor a search term

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
            elif span.end < clock.now and _RELEASED_LEAD.search(text.current, 0, m.start()):
                span = _Span(span.start, clock.now, f"since {span.label}")  # "patched last week": and since
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
    if len(found) > 1:
        # "the pentesters arrested back in 2019 - news yesterday that they settled?": "back in" dates the story
        # told, and the other period is the one asked about.
        told = [(at, span) for at, span in found if _BACK_IN.search(text.original, 0, at)]
        if len(told) < len(found):
            found = [item for item in found if item not in told]
    asked = _ASKING_SENTENCE_END.search(text.original)
    if asked is not None:
        found = [(at, span) for at, span in found if at < asked.end() or not _ACTION_LEAD.search(text.original, 0, at)]
    if not found:
        return None
    found.sort(key=lambda item: item[0])
    return found[0][1]


def _window(span: _Span, now: datetime) -> TimeWindow:
    """Clamp to the moment of asking: a window never ends after ``now``; a wholly future one is empty."""
    end = min(span.end, now)
    start = span.start if span.start <= now else now
    return TimeWindow(start=start, end=max(end, start), label=span.label)
