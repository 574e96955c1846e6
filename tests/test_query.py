"""Query understanding: phrasings in, structured filters out, each case at a fixed moment and zone.

Every case states the complete expected query (fields it leaves out must be empty/None), so a parser
that invents stray terms or kinds fails. Times are written as the ISO strings a reviewer can check
against a calendar: 2024-06-05 is a Wednesday; Berlin is +02:00 in summer and +01:00 in winter, and
switched on 2024-03-31 (02:00 -> 03:00) and 2024-10-27 (03:00 -> 02:00).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from retrieval.query import StructuredQuery, TimeWindow, merge_queries, parse_query
from retrieval.records import Kind, Severity
from retrieval.vendors import VendorDictionary

BER = "Europe/Berlin"
UTC = "UTC"
WED = "2024-06-05T09:30:00+00:00"  # Wednesday 11:30 in Berlin
WED_LOCAL = "2024-06-05T11:30:00+02:00"
#: A service failing as the asker speaks ("github down?") is a question about the last 48 hours.
NOW_48H = ("2024-06-03T11:30:00+02:00", WED_LOCAL, "right now (past 48 hours)")

VULN, OUTAGE, BREACH, RANSOM, MALWARE, ADVISORY = (
    Kind.VULNERABILITY,
    Kind.OUTAGE,
    Kind.BREACH,
    Kind.RANSOMWARE,
    Kind.MALWARE,
    Kind.ADVISORY,
)
CRIT, HIGH, MED = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

DEFAULTS: dict[str, Any] = {
    "window": None,
    "kinds": [],
    "exploited": None,
    "min_severity": None,
    "cves": [],
    "has_cve": False,
    "vendors": [],
    "products": [],
    "terms": [],
    "exclude_terms": [],
    "alternatives": [],
}


def case(text: str, now: str = WED, tz: str = BER, **expected: Any) -> Any:
    return pytest.param(text, now, tz, expected, id=f"{text} @{now[:16]} {tz}")


CASES = [
    # -- realistic analyst questions ---------------------------------------------------------------------------------
    case(
        "any Exchange outages today?",
        window=("2024-06-05T00:00:00+02:00", WED_LOCAL, "today"),
        kinds=[OUTAGE],
        vendors=["Microsoft"],
        products=["Exchange"],
    ),
    case(
        "what did Fortinet patch this week?",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"),
        kinds=[VULN],
        vendors=["Fortinet"],
    ),
    case(
        "MOVEit exploitation in June 2023",
        window=("2023-06-01T00:00:00+02:00", "2023-07-01T00:00:00+02:00", "June 2023"),
        exploited=True,
        vendors=["Progress"],
        products=["MOVEit Transfer"],
    ),
    case(
        "critical Ivanti vulns since Monday",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "since Monday"),
        kinds=[VULN],
        min_severity=CRIT,
        vendors=["Ivanti"],
    ),
    case(
        "ransomware attacks on hospitals last month",
        window=("2024-05-01T00:00:00+02:00", "2024-06-01T00:00:00+02:00", "last month"),
        kinds=[RANSOM],
        terms=["hospitals"],
    ),
    case("is CVE-2023-34362 exploited?", exploited=True, cves=["CVE-2023-34362"]),
    case(
        "github down?",
        window=NOW_48H,
        kinds=[OUTAGE],
        vendors=["GitHub"],
    ),
    case("github outages?", kinds=[OUTAGE], vendors=["GitHub"]),
    case(
        "advantech advisories this yr",
        window=("2024-01-01T00:00:00+01:00", WED_LOCAL, "this year"),
        kinds=[ADVISORY],
        terms=["advantech"],
    ),
    case(  # past tense: what happened, not what is happening
        "what caused the github outage? pushes were failing",
        kinds=[OUTAGE],
        vendors=["GitHub"],
        terms=["caused", "pushes", "failing"],
    ),
    case(
        "emerson advisories? rosemount / ovation",
        kinds=[ADVISORY],
        terms=["emerson", "rosemount", "ovation"],
        alternatives=[["rosemount", "ovation"]],
    ),
    case(
        "any new reporting on Void Blizzard / Laundry Bear?",
        terms=["reporting", "void", "blizzard", "laundry", "bear"],
        alternatives=[["void blizzard", "laundry bear"]],
    ),
    case(
        "emerson advisories? we have rosemount + ovation kit",
        kinds=[ADVISORY],
        terms=["emerson", "rosemount", "ovation", "kit"],
        alternatives=[["rosemount", "ovation"]],  # "+" lists what the asker runs, as "/" does
    ),
    case(
        "star blizzard / coldriver or seaborgium phishing",
        terms=["star", "blizzard", "coldriver", "seaborgium", "phishing"],
        alternatives=[["blizzard", "coldriver", "seaborgium"]],
    ),
    case(
        "m365 admin center wont load, known issue?",
        window=NOW_48H,
        vendors=["Microsoft"],
        products=["Microsoft 365"],
        terms=["admin", "center", "load", "known"],
    ),
    case(
        "anything new on Cloudflare in the past 24h",
        window=("2024-06-04T11:30:00+02:00", WED_LOCAL, "last 24 hours"),
        vendors=["Cloudflare"],
    ),
    case(
        "show me KEV additions yesterday",
        window=("2024-06-04T00:00:00+02:00", "2024-06-05T00:00:00+02:00", "yesterday"),
        exploited=True,
    ),
    case(
        "crypto exchange hacks this year",
        window=("2024-01-01T00:00:00+01:00", WED_LOCAL, "this year"),
        kinds=[BREACH],
        terms=["crypto", "exchange"],
    ),
    # -- time zones: "today" is the asker's today ---------------------------------------------------------------------
    case(
        "any Exchange outages today?",
        now="2024-06-06T03:00:00+00:00",  # already Thursday in UTC, still Wednesday 20:00 in Los Angeles
        tz="America/Los_Angeles",
        window=("2024-06-05T00:00:00-07:00", "2024-06-05T20:00:00-07:00", "today"),
        kinds=[OUTAGE],
        vendors=["Microsoft"],
        products=["Exchange"],
    ),
    case(
        "outages yesterday",
        now="2024-06-05T20:00:00+00:00",  # 05:00 on Thursday in Tokyo
        tz="Asia/Tokyo",
        window=("2024-06-05T00:00:00+09:00", "2024-06-06T00:00:00+09:00", "yesterday"),
        kinds=[OUTAGE],
    ),
    case(
        "today",
        now="2024-06-05T23:59:59+00:00",
        tz=UTC,
        window=("2024-06-05T00:00:00+00:00", "2024-06-05T23:59:59+00:00", "today"),
    ),
    case(
        "this week",
        now="2024-06-03T02:00:00+00:00",  # Monday in UTC, Sunday 22:00 in New York
        tz="America/New_York",
        window=("2024-05-27T00:00:00-04:00", "2024-06-02T22:00:00-04:00", "this week"),
    ),
    case("since 9am", window=("2024-06-05T09:00:00+02:00", WED_LOCAL, "since 09:00")),
    case("since 9pm", window=("2024-06-04T21:00:00+02:00", WED_LOCAL, "since 21:00")),
    case("this morning", window=("2024-06-05T00:00:00+02:00", WED_LOCAL, "this morning")),
    # asked in the afternoon: reports of the morning's trouble are written later the same day
    case(
        "this morning",
        now="2024-06-05T13:00:00+00:00",
        window=("2024-06-05T00:00:00+02:00", "2024-06-05T15:00:00+02:00", "this morning"),
    ),
    case(
        "any outages last night",
        window=("2024-06-04T18:00:00+02:00", "2024-06-05T06:00:00+02:00", "last night"),
        kinds=[OUTAGE],
    ),
    # -- month / year / quarter boundaries -------------------------------------------------------------------------------
    case(
        "last month",
        now="2024-01-15T12:00:00+00:00",
        tz=UTC,
        window=("2023-12-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00", "last month"),
    ),
    case(
        "this month",
        now="2024-01-15T12:00:00+00:00",
        tz=UTC,
        window=("2024-01-01T00:00:00+00:00", "2024-01-15T12:00:00+00:00", "this month"),
    ),
    case(
        "breaches last year",
        now="2024-01-15T12:00:00+00:00",
        tz=UTC,
        window=("2023-01-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00", "last year"),
        kinds=[BREACH],
    ),
    case(
        "last week",
        now="2024-01-03T12:00:00+00:00",  # a Wednesday: last week straddles the new year
        tz=UTC,
        window=("2023-12-25T00:00:00+00:00", "2024-01-01T00:00:00+00:00", "last week"),
    ),
    case(
        "last quarter",
        now="2024-01-15T12:00:00+00:00",
        tz=UTC,
        window=("2023-10-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00", "last quarter"),
    ),
    case(
        "this quarter",
        now="2024-05-20T12:00:00+00:00",
        tz=UTC,
        window=("2024-04-01T00:00:00+00:00", "2024-05-20T12:00:00+00:00", "this quarter"),
    ),
    case(
        "Q2 2023 ransomware",
        window=("2023-04-01T00:00:00+02:00", "2023-07-01T00:00:00+02:00", "Q2 2023"),
        kinds=[RANSOM],
    ),
    case(
        "in Q2",
        now="2024-03-10T12:00:00+00:00",
        tz=UTC,
        window=("2023-04-01T00:00:00+00:00", "2023-07-01T00:00:00+00:00", "Q2 2023"),
    ),
    case(
        "breaches in June",
        now="2024-03-10T12:00:00+00:00",  # June has not come yet this year: the most recent June is 2023's
        tz=UTC,
        window=("2023-06-01T00:00:00+00:00", "2023-07-01T00:00:00+00:00", "June 2023"),
        kinds=[BREACH],
    ),
    case(
        "in March",
        now="2024-03-10T12:00:00+00:00",  # the current month counts, up to now
        tz=UTC,
        window=("2024-03-01T00:00:00+00:00", "2024-03-10T12:00:00+00:00", "March 2024"),
    ),
    case(
        "on June 2",
        now="2024-06-01T12:00:00+00:00",
        tz=UTC,
        window=("2023-06-02T00:00:00+00:00", "2023-06-03T00:00:00+00:00", "2023-06-02"),
    ),
    case("2 Jun", window=("2024-06-02T00:00:00+02:00", "2024-06-03T00:00:00+02:00", "2024-06-02")),
    case(
        "on Feb 29",
        now="2025-03-10T12:00:00+00:00",  # no 29 February in 2025: the most recent one is 2024's
        tz=UTC,
        window=("2024-02-29T00:00:00+00:00", "2024-03-01T00:00:00+00:00", "2024-02-29"),
    ),
    case(
        "vulns in 2023",
        window=("2023-01-01T00:00:00+01:00", "2024-01-01T00:00:00+01:00", "2023"),
        kinds=[VULN],
    ),
    case("ytd breaches", window=("2024-01-01T00:00:00+01:00", WED_LOCAL, "this year"), kinds=[BREACH]),
    case(
        "Exchange Server 2019 bugs",  # a version number is not a year
        kinds=[VULN],
        vendors=["Microsoft"],
        products=["Exchange"],
    ),
    # -- rolling windows ------------------------------------------------------------------------------------------------
    case("last 7 days", window=("2024-05-29T11:30:00+02:00", WED_LOCAL, "last 7 days")),
    case("in the last 48h", window=("2024-06-03T11:30:00+02:00", WED_LOCAL, "last 48 hours")),
    case("past 24 hours", window=("2024-06-04T11:30:00+02:00", WED_LOCAL, "last 24 hours")),
    case("last hour", window=("2024-06-05T10:30:00+02:00", WED_LOCAL, "past hour")),
    case("past week", window=("2024-05-29T11:30:00+02:00", WED_LOCAL, "past week")),
    case("within the past two weeks", window=("2024-05-22T11:30:00+02:00", WED_LOCAL, "last 2 weeks")),
    case("last 3 months", window=("2024-03-05T11:30:00+01:00", WED_LOCAL, "last 3 months")),
    case("3 days ago", window=("2024-06-02T00:00:00+02:00", "2024-06-03T00:00:00+02:00", "3 days ago")),
    # -- weeks and weekdays ---------------------------------------------------------------------------------------------
    case(
        "this week",
        now="2024-06-09T15:00:00+00:00",  # Sunday 17:00 in Berlin: the ISO week began six days ago
        window=("2024-06-03T00:00:00+02:00", "2024-06-09T17:00:00+02:00", "this week"),
    ),
    case(
        "last week",
        now="2024-06-09T15:00:00+00:00",
        window=("2024-05-27T00:00:00+02:00", "2024-06-03T00:00:00+02:00", "last week"),
    ),
    case(
        "this week",
        now="2024-06-02T22:30:00+00:00",  # Sunday in UTC, already Monday 00:30 in Berlin
        window=("2024-06-03T00:00:00+02:00", "2024-06-03T00:30:00+02:00", "this week"),
    ),
    case(
        "since Monday",
        now="2024-06-03T08:00:00+00:00",  # asked on a Monday: since this Monday's midnight
        window=("2024-06-03T00:00:00+02:00", "2024-06-03T10:00:00+02:00", "since Monday"),
    ),
    case(
        "last Monday",
        now="2024-06-03T08:00:00+00:00",  # "last Monday" on a Monday is a week ago
        window=("2024-05-27T00:00:00+02:00", "2024-05-28T00:00:00+02:00", "last Monday"),
    ),
    case("on Friday", window=("2024-05-31T00:00:00+02:00", "2024-06-01T00:00:00+02:00", "Friday")),
    case("since Sunday", window=("2024-06-02T00:00:00+02:00", WED_LOCAL, "since Sunday")),
    case("over the weekend", window=("2024-06-01T00:00:00+02:00", "2024-06-03T00:00:00+02:00", "weekend")),
    # -- since / on / between / from…to -----------------------------------------------------------------------------------
    case("since 2024-06-01", window=("2024-06-01T00:00:00+02:00", WED_LOCAL, "since 2024-06-01")),
    case("since June 1st", window=("2024-06-01T00:00:00+02:00", WED_LOCAL, "since 2024-06-01")),
    case("since last week", window=("2024-05-27T00:00:00+02:00", WED_LOCAL, "since last week")),
    case("since the start of may", window=("2024-05-01T00:00:00+02:00", WED_LOCAL, "since May 2024")),
    case("since early may", window=("2024-05-01T00:00:00+02:00", WED_LOCAL, "since May 2024")),
    case(  # a launch, like a patch, dates what followed it until now
        "the portal launched last week",
        window=("2024-05-27T00:00:00+02:00", WED_LOCAL, "since last week"),
        terms=["portal", "launched"],
    ),
    case(
        "between 2024-05-01 and 2024-05-15",
        window=("2024-05-01T00:00:00+02:00", "2024-05-16T00:00:00+02:00", "2024-05-01 to 2024-05-15"),
    ),
    case(
        "from May 28 to yesterday",
        window=("2024-05-28T00:00:00+02:00", "2024-06-05T00:00:00+02:00", "2024-05-28 to yesterday"),
    ),
    case(
        "between June 3 and today",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "2024-06-03 to today"),
    ),
    case(
        "MOVEit from May 31 to June 5 2023",  # the end's year carries to a start without one
        window=("2023-05-31T00:00:00+02:00", "2023-06-06T00:00:00+02:00", "2023-05-31 to 2023-06-05"),
        vendors=["Progress"],
        products=["MOVEit Transfer"],
    ),
    case(
        "between Dec 28 and Jan 3",
        now="2024-01-10T12:00:00+00:00",
        tz=UTC,
        window=("2023-12-28T00:00:00+00:00", "2024-01-04T00:00:00+00:00", "2023-12-28 to 2024-01-03"),
    ),
    case(
        "critical vulns from the last 2 weeks",  # "from" a rolling window is that window, not "since"
        window=("2024-05-22T11:30:00+02:00", WED_LOCAL, "last 2 weeks"),
        kinds=[VULN],
        min_severity=CRIT,
    ),
    case(
        "Okta breach news from last year",
        window=("2023-01-01T00:00:00+01:00", "2024-01-01T00:00:00+01:00", "last year"),
        kinds=[BREACH],
        vendors=["Okta"],
    ),
    case(
        "SharePoint zero day july",  # a month name that is no ordinary word needs no preposition
        window=("2023-07-01T00:00:00+02:00", "2023-08-01T00:00:00+02:00", "July 2023"),
        exploited=True,
        vendors=["Microsoft"],
        products=["SharePoint"],
    ),
    case(
        "microsoft 365 outage right now",  # "now" words mean the present: an outage of last year is no answer
        window=("2024-06-03T11:30:00+02:00", WED_LOCAL, "right now (past 48 hours)"),
        kinds=[OUTAGE],
        vendors=["Microsoft"],
        products=["Microsoft 365"],
    ),
    case(
        "is Fortinet currently exploited",  # exploitation is a state that lasts weeks, not an event of a day
        window=("2024-05-15T11:30:00+02:00", WED_LOCAL, "right now (past 3 weeks)"),
        exploited=True,
        vendors=["Fortinet"],
    ),
    case(
        "siemens advisories from yesterdays patch tuesday",  # chat drops the possessive's apostrophe
        window=("2024-06-04T00:00:00+02:00", WED_LOCAL, "since yesterday"),
        kinds=[VULN, ADVISORY],
        vendors=["Siemens"],
    ),
    case(
        "this weeks breaches",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"),
        kinds=[BREACH],
    ),
    case(
        "ongoing ransomware attacks on hospitals",  # a story going on: the last week's reports of it
        window=("2024-05-29T11:30:00+02:00", WED_LOCAL, "still (past week)"),
        kinds=[RANSOM],
        terms=["hospitals"],
    ),
    case(
        "is GitHub still down at the moment?",  # "at the moment" wins over "still"
        window=("2024-06-03T11:30:00+02:00", WED_LOCAL, "right now (past 48 hours)"),
        kinds=[OUTAGE],
        vendors=["GitHub"],
    ),
    case(
        "ATM malware rn",
        window=("2024-06-03T11:30:00+02:00", WED_LOCAL, "right now (past 48 hours)"),
        kinds=[MALWARE],
        terms=["atm"],
    ),
    case("CVE\u20112024\u20113400 exploited", exploited=True, cves=["CVE-2024-3400"]),  # a chat client's dash
    case("cve\u20142023\u201534362", cves=["CVE-2023-34362"]),
    case("CVE 2024 21887", cves=["CVE-2024-21887"]),
    case(
        "lockbit leak site posts this week",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"),
        kinds=[RANSOM],
        terms=["lockbit", "posts"],
    ),
    case(
        "on 2023-06-01",
        window=("2023-06-01T00:00:00+02:00", "2023-06-02T00:00:00+02:00", "2023-06-01"),
    ),
    # -- DST days in Berlin -------------------------------------------------------------------------------------------------
    case(
        "today",
        now="2024-03-31T10:00:00+00:00",  # clocks went forward at 02:00: midnight was still +01:00
        window=("2024-03-31T00:00:00+01:00", "2024-03-31T12:00:00+02:00", "today"),
    ),
    case(
        "yesterday",
        now="2024-04-01T08:00:00+00:00",  # yesterday had 23 hours
        window=("2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "yesterday"),
    ),
    case(
        "last 24 hours",
        now="2024-03-31T10:00:00+00:00",  # 24 real hours, which is 25 on the wall clock
        window=("2024-03-30T11:00:00+01:00", "2024-03-31T12:00:00+02:00", "last 24 hours"),
    ),
    case(
        "last 7 days",
        now="2024-03-31T10:00:00+00:00",  # days follow the wall clock: same local time a week ago
        window=("2024-03-24T12:00:00+01:00", "2024-03-31T12:00:00+02:00", "last 7 days"),
    ),
    case(
        "today",
        now="2024-10-27T12:00:00+00:00",  # clocks went back at 03:00
        window=("2024-10-27T00:00:00+02:00", "2024-10-27T13:00:00+01:00", "today"),
    ),
    case(
        "this week",
        now="2024-03-31T10:00:00+00:00",
        window=("2024-03-25T00:00:00+01:00", "2024-03-31T12:00:00+02:00", "this week"),
    ),
    # "the 2023 ransomware" says which event; the writeups asked for are this year's
    case("any writeups on the 2023 capita ransomware?", kinds=[RANSOM], terms=["writeups", "capita"]),
    case(
        "capita writeups in 2023?",
        window=("2023-01-01T00:00:00+01:00", "2024-01-01T00:00:00+01:00", "2023"),
        terms=["capita", "writeups"],
    ),
    # after the asking sentence, a period after what the asker must do says when to act; in it, what to read
    case("acme rce poc out yet? need to know if we patch it this weekend", kinds=[VULN], terms=["acme", "poc", "need"]),
    case("what should we patch this week?", window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"), kinds=[VULN]),
    case(
        "acme 143 is out - anything nasty? deciding whether to push it today",
        terms=["acme", "nasty", "deciding", "whether", "push"],
    ),
    case(
        "acme backdoor: what else? need a ttp/ioc summary for the soc tonight",
        kinds=[MALWARE],
        terms=["acme", "else", "need", "ttp", "ioc", "summary", "soc"],
        alternatives=[["ttp", "ioc"]],
    ),
    # "back in" dates the story retold; the message's other period is the one asked about, if there is one
    case(
        "the pentesters arrested back in 2019 - news yesterday that they settled?",
        window=("2024-06-04T00:00:00+02:00", "2024-06-05T00:00:00+02:00", "yesterday"),
        terms=["pentesters", "arrested", "back", "settled"],
    ),
    case(
        "what happened back in 2019?",
        window=("2019-01-01T00:00:00+01:00", "2020-01-01T00:00:00+01:00", "2019"),
        terms=["back"],
    ),
    # a period right after a release verb dates the release; what followed runs until now
    case(
        "did the webkit 0days apple patched last week make it into KEV?",
        window=("2024-05-27T00:00:00+02:00", WED_LOCAL, "since last week"),
        kinds=[VULN],
        exploited=True,
        vendors=["Apple"],
        products=["WebKit"],
        terms=["apple", "make"],
    ),
    case(
        "what did microsoft patch last week?",
        window=("2024-05-27T00:00:00+02:00", "2024-06-03T00:00:00+02:00", "last week"),
        kinds=[VULN],
        vendors=["Microsoft"],
    ),
    # beside a CVE, "the december fix" says which fix of the bug; without one, the december bulletin is December's
    case("CVE-2024-1234 - a bypass of the december fix?", cves=["CVE-2024-1234"], terms=["bypass", "fix"]),
    case(
        "which 0days from the december bulletin are exploited?",
        window=("2023-12-01T00:00:00+01:00", WED_LOCAL, "since December 2023"),
        kinds=[ADVISORY],
        exploited=True,
    ),
    # -- kinds --------------------------------------------------------------------------------------------------------------
    case("Slack outage", kinds=[OUTAGE], vendors=["Slack"]),
    case("slack not working", window=NOW_48H, kinds=[OUTAGE], vendors=["Slack"]),
    case("is okta degraded?", kinds=[OUTAGE], vendors=["Okta"]),
    case("what went wrong at github?", kinds=[OUTAGE], vendors=["GitHub"]),  # a failure asked about, not a breach
    case("moin, any slack outage?", kinds=[OUTAGE], vendors=["Slack"]),  # a greeting is no subject
    # asking whether an incident was an attack asks for the incident's reports, whatever their kind…
    case("acme ground stop - was it a hack??", terms=["acme", "ground", "stop"]),
    case("acme app died - were they hacked or what?", terms=["acme", "app", "died"]),
    case("acme offline - was it ransomware?", kinds=[OUTAGE, RANSOM], terms=["acme"]),  # …but ransomware names one
    case("capita leak - how many ppl? smth about 90k", kinds=[BREACH], terms=["capita", "90k"]),
    case("oncall here - capita vpn flaky?", terms=["capita", "vpn", "flaky"]),  # who asks is no subject
    case("is slack still down?", window=NOW_48H, kinds=[OUTAGE], vendors=["Slack"]),
    # the asker's own state says nothing of when the news is from
    case("opto 22 advisory? our plant still has these", kinds=[ADVISORY], terms=["opto", "plant"]),
    case("we still run exim - any advisory?", kinds=[ADVISORY], vendors=["Exim"], terms=["run"]),
    # a part of the day not yet begun says when to act, not what to read
    case(
        "exim exploited yet? deciding if we patch tonight",
        exploited=True,
        vendors=["Exim"],
        kinds=[VULN],
        terms=["deciding"],
    ),
    case("teams down", window=NOW_48H, kinds=[OUTAGE], vendors=["Microsoft"], products=["Teams"]),
    case(
        "Azure service disruption in West Europe",
        kinds=[OUTAGE],
        vendors=["Microsoft"],
        products=["Azure"],
        terms=["service", "west", "europe"],
    ),
    case(
        "data leaks and stolen data this week",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"),
        kinds=[BREACH],
    ),
    case("exposed databases", kinds=[BREACH], terms=["databases"]),
    case(
        "litellm on kev? we proxy our llm traffic thru it", exploited=True, terms=["litellm", "proxy", "llm", "traffic"]
    ),
    case(
        "users cant pull mail, outlook wont load",  # contractions typed without the apostrophe are stop words too
        window=NOW_48H,
        vendors=["Microsoft"],
        products=["Outlook"],
        terms=["users", "pull", "mail", "load"],
    ),
    case(
        "grafana bug - are we exposed?", kinds=[VULN], vendors=["Grafana Labs"], products=["Grafana"], terms=["exposed"]
    ),
    case("Ticketmaster breach", kinds=[BREACH], vendors=["Ticketmaster"]),
    case("new infostealer malware targeting macOS", kinds=[MALWARE], vendors=["Apple"], products=["macOS"]),
    case("botnets and trojans", kinds=[MALWARE]),
    case(
        "Patch Tuesday fixes this month",  # a release name, not last Tuesday
        window=("2024-06-01T00:00:00+02:00", WED_LOCAL, "this month"),
        kinds=[VULN],
    ),
    case("Black Friday scams", terms=["black friday", "scams"]),
    case("ICS advisories from CISA", kinds=[ADVISORY], terms=["ics", "cisa"]),  # "ICS" stays a topic word
    case("police take down botnet", kinds=[MALWARE], terms=["police", "takedown"]),
    case(
        "breaches and ransomware in May",
        window=("2024-05-01T00:00:00+02:00", "2024-06-01T00:00:00+02:00", "May 2024"),
        kinds=[BREACH, RANSOM],
    ),
    case("flaws that may be exploited", kinds=[VULN], exploited=True),  # "may" is not the month
    # -- exploitation -------------------------------------------------------------------------------------------------------
    case("zero-day in Chrome", exploited=True, vendors=["Google"], products=["Chrome"]),
    case("0day exploits for Citrix", exploited=True, vendors=["Citrix"], terms=["exploits"]),
    case("vulns exploited in the wild", kinds=[VULN], exploited=True),
    case("Fortinet bugs not exploited yet", kinds=[VULN], exploited=False, vendors=["Fortinet"]),
    case("actively exploited Citrix Bleed", exploited=True, vendors=["Citrix"], products=["NetScaler"]),
    case("new KEV entries", exploited=True),
    # -- severity -----------------------------------------------------------------------------------------------------------
    case("high-severity SAP bugs", kinds=[VULN], min_severity=HIGH, vendors=["SAP"]),
    case("high or critical advisories", kinds=[ADVISORY], min_severity=HIGH),
    case("severity>=medium juniper", min_severity=MED, vendors=["Juniper"]),
    case("sev1 outages", kinds=[OUTAGE], min_severity=CRIT),
    case("sev 2 incidents", min_severity=HIGH),
    case("medium or higher vmware vulns", kinds=[VULN], min_severity=MED, vendors=["VMware"]),
    case("CVSS 9+ bugs", kinds=[VULN], min_severity=CRIT),
    case("critical infrastructure attacks", terms=["critical infrastructure"]),
    case("severity>high", min_severity=CRIT),
    case("at least high", min_severity=HIGH),
    # -- operators (the subscription language) ---------------------------------------------------------------------------
    case("vendor:fortinet kind:outage", kinds=[OUTAGE], vendors=["Fortinet"]),
    case('vendor:"palo alto networks" severity>=high', min_severity=HIGH, vendors=["Palo Alto Networks"]),
    case("product:exchange exploited:no", exploited=False, vendors=["Microsoft"], products=["Exchange"]),
    case("kind:vuln,breach", kinds=[VULN, BREACH]),
    case(
        "cve:any vendor:ivanti since:2024-06-01",
        window=("2024-06-01T00:00:00+02:00", WED_LOCAL, "since 2024-06-01"),
        has_cve=True,
        vendors=["Ivanti"],
    ),
    case("cve:CVE-2024-3400", cves=["CVE-2024-3400"]),
    case("has:cve ransomware", kinds=[RANSOM], has_cve=True),
    case("vendor:acme", vendors=["acme"]),
    case("type:breach is:kev", kinds=[BREACH], exploited=True),
    # -- exclusions ---------------------------------------------------------------------------------------------------------
    case(
        "Exchange outage -crypto",
        kinds=[OUTAGE],
        vendors=["Microsoft"],
        products=["Exchange"],
        exclude_terms=["crypto"],
    ),
    case(
        'exchange hacks -"crypto exchange"',
        kinds=[BREACH],
        vendors=["Microsoft"],
        products=["Exchange"],
        exclude_terms=["crypto exchange"],
    ),
    case("ransomware excluding lockbit", kinds=[RANSOM], exclude_terms=["lockbit"]),
    case("breaches -healthcare -education", kinds=[BREACH], exclude_terms=["healthcare", "education"]),
    # a zone typed after its region ("us-east1 … erroring in -c"), a flag: one letter excludes nothing
    case("us-east1 vms erroring in -c", window=NOW_48H, terms=["us-east1", "vms", "erroring"]),
    # -- a bug in a question about a service in trouble is a malfunction ------------------------------------------
    case(
        "merge queue stuck - is that a github bug?",
        window=NOW_48H,
        kinds=[OUTAGE],
        vendors=["GitHub"],
        terms=["merge", "queue", "stuck"],
    ),
    case(
        "r2 buckets erroring again?? thought that got fixed",
        window=NOW_48H,
        kinds=[OUTAGE],
        terms=["r2", "buckets", "erroring", "thought"],
    ),
    case(
        "exchange bug exploited, servers erroring",
        window=("2024-05-15T11:30:00+02:00", WED_LOCAL, "right now (past 3 weeks)"),
        kinds=[VULN],
        exploited=True,
        vendors=["Microsoft"],
        products=["Exchange"],
        terms=["servers", "erroring"],
    ),
    case("chrome bug fixed?", kinds=[VULN], vendors=["Google"], products=["Chrome"]),
    # -- CVE identifiers ----------------------------------------------------------------------------------------------------
    case("CVE-2021-44228 and cve-2021-45046", cves=["CVE-2021-44228", "CVE-2021-45046"]),
    case("what is CVE 2024 3400", cves=["CVE-2024-3400"]),
    case("any CVEs for Zimbra?", kinds=[VULN], vendors=["Synacor"], products=["Zimbra Collaboration Suite"]),
    # -- "Exchange" and other ambiguous names ----------------------------------------------------------------------------
    case("Binance exchange outage", kinds=[OUTAGE], terms=["binance", "exchange"]),
    case("Exchange Online degraded", kinds=[OUTAGE], vendors=["Microsoft"], products=["Exchange"]),
    case("EXO mail flow issues", vendors=["Microsoft"], products=["Exchange"], terms=["mail", "flow"]),
    case("is exchange down?", window=NOW_48H, kinds=[OUTAGE], vendors=["Microsoft"], products=["Exchange"]),
    case(
        "exchange vulns this week",
        window=("2024-06-03T00:00:00+02:00", WED_LOCAL, "this week"),
        kinds=[VULN],
        vendors=["Microsoft"],
        products=["Exchange"],
    ),
    case("stock exchange cyberattack", terms=["stock", "exchange", "cyberattack"]),
    case(
        "Securities and Exchange Commission breach disclosure rules",
        kinds=[BREACH],
        terms=["securities", "exchange", "commission", "disclosure", "rules"],
    ),
    case("security teams burnout", terms=["security", "teams", "burnout"]),
    case("MS Teams phishing", vendors=["Microsoft"], products=["Teams"], terms=["phishing"]),
    case("any intel on lockbit?", terms=["intel", "lockbit"]),
    case(
        "apple zero-days this month",
        window=("2024-06-01T00:00:00+02:00", WED_LOCAL, "this month"),
        exploited=True,
        vendors=["Apple"],
    ),
    case("aws down?", window=NOW_48H, kinds=[OUTAGE], vendors=["Amazon"], products=["AWS"]),
    # -- leftover terms -------------------------------------------------------------------------------------------------
    case('"supply chain" attacks on npm packages', terms=["supply chain", "npm", "packages"]),
    case("tell me about Scattered Spider", terms=["scattered", "spider"]),
    case("What's new?"),
]


def _actual(q: StructuredQuery) -> dict[str, Any]:
    window = (q.window.start.isoformat(), q.window.end.isoformat(), q.window.label) if q.window else None
    return {
        "window": window,
        "kinds": q.kinds,
        "exploited": q.exploited,
        "min_severity": q.min_severity,
        "cves": q.cves,
        "has_cve": q.has_cve,
        "vendors": q.vendors,
        "products": q.products,
        "terms": q.terms,
        "exclude_terms": q.exclude_terms,
        "alternatives": q.alternatives,
    }


@pytest.mark.parametrize(("text", "now", "tz", "expected"), CASES)
def test_parse_query(text: str, now: str, tz: str, expected: dict[str, Any]) -> None:
    moment = datetime.fromisoformat(now)
    q = parse_query(text, now=moment, tz=tz)
    assert _actual(q) == {**DEFAULTS, **expected}
    # Invariants every query keeps: the original text, an upper bound at the moment of asking, the asker's zone.
    assert q.text == text
    assert q.until == moment
    assert q.until.tzinfo == ZoneInfo(tz)
    if q.window is not None:
        assert q.window.start.tzinfo == ZoneInfo(tz)
        assert q.window.end <= moment
        assert q.window.start <= q.window.end


def test_there_are_at_least_80_phrasings() -> None:
    assert len(CASES) >= 80


def test_until_is_now_without_any_time_words() -> None:
    now = datetime(2024, 6, 5, 9, 30, tzinfo=ZoneInfo("UTC"))
    q = parse_query("github outages?", now=now, tz="America/Los_Angeles")
    assert q.window is None
    assert q.until.isoformat() == "2024-06-05T02:30:00-07:00"
    assert q.to_filters()["until"] == "2024-06-05T02:30:00-07:00"


def test_future_period_gives_an_empty_window_not_a_future_end() -> None:
    now = datetime(2024, 6, 5, 9, 30, tzinfo=ZoneInfo("UTC"))
    q = parse_query("outages in June 2031", now=now, tz=UTC)
    assert q.window is not None and q.window.is_empty
    assert q.window.end == now and q.window.label == "June 2031"
    assert not q.window.contains(now)


def test_window_is_half_open() -> None:
    now = datetime(2024, 6, 5, 9, 30, tzinfo=ZoneInfo("UTC"))
    window = parse_query("yesterday", now=now, tz=UTC).window
    assert isinstance(window, TimeWindow)
    assert window.contains(datetime(2024, 6, 4, 0, 0, tzinfo=ZoneInfo("UTC")))
    assert window.contains(datetime(2024, 6, 4, 23, 59, 59, tzinfo=ZoneInfo("UTC")))
    assert not window.contains(datetime(2024, 6, 5, 0, 0, tzinfo=ZoneInfo("UTC")))


def test_naive_now_is_utc_and_zoneinfo_is_accepted() -> None:
    q = parse_query("today", now=datetime(2024, 6, 5, 23, 0), tz=ZoneInfo("Europe/Berlin"))
    assert q.window is not None
    assert q.window.start.isoformat() == "2024-06-06T00:00:00+02:00"  # 23:00 UTC is already the 6th in Berlin
    assert q.until.isoformat() == "2024-06-06T01:00:00+02:00"


def test_to_filters_is_json_ready() -> None:
    now = datetime(2024, 6, 5, 9, 30, tzinfo=ZoneInfo("UTC"))
    q = parse_query("critical Exchange vulns exploited since Monday -crypto cve:any", now=now, tz=BER)
    filters = json.loads(json.dumps(q.to_filters()))
    assert filters == {
        "window": {"start": "2024-06-03T00:00:00+02:00", "end": WED_LOCAL, "label": "since Monday"},
        "until": WED_LOCAL,
        "kinds": ["vulnerability"],
        "exploited": True,
        "min_severity": "critical",
        "cves": [],
        "has_cve": True,
        "vendors": ["Microsoft"],
        "products": ["Exchange"],
        "terms": [],
        "exclude_terms": ["crypto"],
        "kinds_required": False,
        "cves_required": False,
        "catalogue": None,
        "alternatives": [],
        "exploited_required": False,
    }


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("is CVE-2024-3400 in KEV yet?", None),  # membership is a state: no "now" window
        ("did CISA add any Cisco bugs to the KEV catalog today?", "today"),
        ("is it on the known exploited vulnerabilities list", None),
        ("KEV additions this week", "this week"),
        ("what hit KEV this week so far?", "this week"),
        ("whatsapp got added to cisa's exploited list yesterday??", "yesterday"),  # the catalogue by description
        ("is the fortisiem CVE-2023-36553 on the known exploited list yet?", None),
        ("cisa put another coldfusion bug on the exploited list yesterday?", "yesterday"),
    ],
)
def test_questions_about_the_kev_catalogue(text: str, window: str | None) -> None:
    q = parse_query(text, now=datetime.fromisoformat(WED), tz=BER)
    assert q.catalogue == "kev" and q.exploited is True
    assert (q.window.label if q.window else None) == window
    assert "kev" not in q.terms and "catalog" not in q.terms


def test_news_about_exploitation_is_not_a_catalogue_question() -> None:
    q = parse_query("Ivanti zero-day exploited in the wild", now=datetime.fromisoformat(WED), tz=BER)
    assert q.catalogue is None and q.exploited is True


@pytest.mark.parametrize(
    ("text", "catalogue"),
    [
        ("any new CISA ICS advisories today?", "ics"),
        ("ICSMA advisories this year", "ics"),
        ("SCADA advisories from schneider", "ics"),
        ("did ICS-CERT publish a triconex advisory?", "ics"),  # the series' publisher before CISA
        ("anything from icscert on tricon", "ics"),
        ("siemens advisories today", None),  # a vendor's advisories, ICS or not
        ("ICS attack on a water utility", None),  # about ICS, but no advisory asked for
    ],
)
def test_questions_for_ics_advisories(text: str, catalogue: str | None) -> None:
    q = parse_query(text, now=datetime.fromisoformat(WED), tz=BER)
    assert q.catalogue == catalogue
    assert not {"ics-cert", "icscert"} & set(q.terms), "the publisher's name is the catalogue, no word to match"
    if catalogue and "advisor" in text.lower():
        assert Kind.ADVISORY in q.kinds


def test_only_a_kind_operator_makes_kinds_required() -> None:
    now = datetime.fromisoformat(WED)
    assert parse_query("kind:advisory siemens", now=now).kinds_required
    assert not parse_query("siemens advisories", now=now).kinds_required


def test_only_a_cve_operator_makes_cves_required() -> None:
    now = datetime.fromisoformat(WED)
    typed = parse_query("cve:CVE-2024-3400 exploited?", now=now)
    assert typed.cves == ["CVE-2024-3400"] and typed.cves_required
    plain = parse_query("CVE-2024-3400 exploited?", now=now)
    assert plain.cves == ["CVE-2024-3400"] and not plain.cves_required
    assert not parse_query("cve:any fortinet", now=now).cves_required  # any CVE: a filter of its own (has_cve)


def test_a_refinement_keeps_or_drops_a_typed_cve_with_its_topic() -> None:
    now = datetime.fromisoformat(WED)
    typed = parse_query("cve:CVE-2024-3400", now=now)
    assert merge_queries(typed, parse_query("only critical", now=now)).cves_required  # no new topic: kept
    assert merge_queries(typed, parse_query("fortinet", now=now), narrow=True).cves_required  # narrowed: kept
    moved_on = merge_queries(typed, parse_query("what about CVE-2024-21762?", now=now))
    assert moved_on.cves == ["CVE-2024-21762"] and not moved_on.cves_required


def test_a_given_dictionary_is_used() -> None:
    tiny = VendorDictionary.from_data(
        {"vendors": [{"name": "Globex", "aliases": ["Globex"]}], "products": [{"vendor": "Globex", "name": "Hammer"}]}
    )
    now = datetime(2024, 6, 5, 9, 30, tzinfo=ZoneInfo("UTC"))
    q = parse_query("Globex Hammer outage and Fortinet", now=now, dictionary=tiny)
    assert q.vendors == ["Globex"]
    assert q.products == ["Hammer"]
    assert q.kinds == [Kind.OUTAGE]
    assert q.terms == ["fortinet"]  # not in this dictionary, so just a word


def test_query_is_immutable() -> None:
    q = parse_query("github down?", now=datetime(2024, 6, 5, tzinfo=ZoneInfo("UTC")))
    with pytest.raises(AttributeError):
        q.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "catalogue"),
    [
        ("KEV today? seeing old IE bugs", "kev"),  # "KEV" with a period: what the catalogue gained then
        ("kev adds yesterday?", "kev"),
        ("exploited fortinet bugs this week", None),
        ("any KEV-style bugs in fortinet?", None),  # no period: "KEV" alone only says exploited
    ],
)
def test_kev_said_with_a_period_asks_for_the_catalogue(text: str, catalogue: str | None) -> None:
    assert parse_query(text, now=datetime.fromisoformat(WED), tz=BER).catalogue == catalogue


def test_not_in_capitals_excludes_the_name_that_follows() -> None:
    q = parse_query(
        "any cisa advisory on cobalt lately? (the ashlar-vellum cad app, NOT cobalt strike)",
        now=datetime.fromisoformat(WED),
        tz=BER,
    )
    assert q.exclude_terms == ["cobalt strike"]
    assert "cobalt" in q.terms and q.products == [], "the excluded name is not read as a product"
    assert parse_query("is it not down?", now=datetime.fromisoformat(WED), tz=BER).exclude_terms == []


@pytest.mark.parametrize(
    ("text", "exploited", "required"),
    [
        ("superset default key - exploited?", True, False),  # words ask
        ("fortinet is:exploited", True, True),  # an operator filters
        ("fortinet exploited:yes", True, True),
        ("fortinet exploited:no", False, True),
    ],
)
def test_exploitation_said_in_words_asks_and_as_an_operator_filters(text: str, exploited: bool, required: bool) -> None:
    q = parse_query(text, now=datetime.fromisoformat(WED), tz=BER)
    assert (q.exploited, q.exploited_required) == (exploited, required)


def test_a_severity_written_as_an_operator_excludes_and_one_said_in_words_ranks():
    """ "intel patch day - anything critical?" asks which of Intel's news matters; most news states no rating."""
    now = datetime.fromisoformat(WED)
    said = parse_query("intel patch day - anything critical?", now=now, tz=BER)
    assert said.min_severity is CRIT and not said.severity_required
    for operator in ("severity:critical intel", "sev>=high intel", "cvss:9 intel"):
        assert parse_query(operator, now=now, tz=BER).severity_required, operator
    follow_up = merge_queries(said, parse_query("severity:high", now=now, tz=BER))
    assert follow_up.min_severity is HIGH and follow_up.severity_required


def test_a_severity_said_in_words_filters_a_listing_and_ranks_about_a_subject(store):
    """ "intel and amd patch day - anything critical?": sources rate one bug differently, news rarely at all."""
    from retrieval.search import Searcher

    searcher, now = Searcher(store), datetime.fromisoformat(WED)
    for text, excludes in [
        ("critical advisories today?", True),  # no subject: the rating is all that is asked
        ("intel patch day - anything critical?", False),  # a subject: the rating ranks its records
        ("severity:critical intel", True),  # an operator always excludes
        ("cvss 4.0 finally released?", False),  # the standard's version, not a score
    ]:
        where = searcher._filter(parse_query(text, now=now, tz=BER), None, now.timestamp())
        assert (where.min_severity_rank is not None) is excludes, text
        if excludes:
            assert where.min_severity_rank == CRIT.rank, text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("merge queue stuck - is that a github bug?", OUTAGE),
        ("lazarus using the manageengine bug now? who got hit", VULN),  # hit by attackers: an attack, not a fault
        ("array AG gateways getting hit? what's the bug", VULN),
    ],
)
def test_a_bug_is_a_malfunction_only_where_a_service_malfunctions(text: str, kind: Kind) -> None:
    assert parse_query(text, now=datetime.fromisoformat(WED), tz=BER).kinds == [kind]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("qakbot crew still active after the fbi takedown?", "still (past week)"),  # a story going on for days
        ("lastpass breach still costing people money?", "still (past week)"),
        ("is slack still down?", "right now (past 48 hours)"),  # trouble at a service: the last two days
        ("ongoing github outage?", "right now (past 48 hours)"),
        ("is CVE-2024-3400 still being exploited?", "right now (past 3 weeks)"),  # exploitation lasts weeks
        ("lockbit still active right now?", "right now (past 48 hours)"),  # "right now" is the present itself
    ],
)
def test_still_reaches_back_as_far_as_what_goes_on_lasts(text: str, label: str) -> None:
    window = parse_query(text, now=datetime.fromisoformat(WED), tz=BER).window
    assert window is not None and window.label == label, text


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("confluence zero-day - who's behind it?", ["behind"]),  # "who's" is "who", a stopword
        ("the court's ruling on lockbit - we're asking, can't find it", ["court", "ruling", "lockbit", "asking"]),
        ("they've seen the exploit? where's the write-up", ["exploit", "write-up"]),
        ("macy's breach details", ["macy", "details"]),  # a possessive is its word ("Macy's" says "macy")
    ],
)
def test_an_english_clitic_is_not_part_of_the_word(text: str, terms: list[str]) -> None:
    assert parse_query(text, now=datetime(2023, 10, 18, 12, tzinfo=ZoneInfo("UTC"))).terms == terms


@pytest.mark.parametrize(
    ("text", "terms", "vendors", "products"),
    [
        # "not X" tells which X is meant: X is neither asked about nor a veto of the sense meant.
        ("exchange exploited this week? on-prem exchange, not crypto", ["on-prem"], ["Microsoft"], ["Exchange"]),
        ("play hit anyone new this week? ransomware gang not the store", ["play", "gang"], [], []),
        ("sandworm up to anything? the gru unit, not that npm worm", ["sandworm", "gru", "unit"], [], []),
        ("cloud atlas doing anything this week? the apt, not mongodb atlas", ["cloud", "atlas", "apt"], [], []),
        # A "not" that rules out no sense stays what it was.
        ("teams not loading today", ["loading"], ["Microsoft"], ["Teams"]),
        ("is it exploited, not just a poc?", ["poc"], [], []),
        ("gemini down in github copilot, not sure if its google or github", ["gemini"], ["GitHub", "Google"],
         ["GitHub Copilot"]),
    ],
)  # fmt: skip
def test_a_sense_the_question_rules_out_is_neither_asked_nor_a_veto(
    text: str, terms: list[str], vendors: list[str], products: list[str]
) -> None:
    query = parse_query(text, now=datetime(2023, 10, 18, 12, tzinfo=ZoneInfo("UTC")))
    assert (query.terms, query.vendors, query.products, query.exclude_terms) == (terms, vendors, products, [])


def test_a_not_that_rules_out_no_sense_keeps_its_meaning() -> None:
    now = datetime(2023, 10, 18, 12, tzinfo=ZoneInfo("UTC"))
    assert parse_query("CVE-2023-1234 patched, not in KEV yet?", now=now).catalogue == "kev"
    assert parse_query("fortinet bug - not exploited yet?", now=now).exploited is False
    assert parse_query("exchange outage, NOT crypto", now=now).exclude_terms == ["crypto"], "the operator excludes"


def test_a_latin_word_written_against_an_unspaced_script_is_a_word_of_its_own() -> None:
    # "昨日KEVに追加されたの何?" ("what was added to KEV yesterday?"): Japanese writes no space before or after "KEV".
    query = parse_query(
        "昨日KEVに追加されたの何? what did cisa add yesterday",
        now=datetime(2025, 10, 21, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
        tz="Asia/Tokyo",
    )
    assert query.catalogue == "kev"
    assert query.terms == []
    assert query.window is not None and query.window.label == "yesterday"


@pytest.mark.parametrize(
    ("asked", "tz", "start", "end"),
    [
        # The day after: that release's news so far.
        ("2024-08-14T09:00:00+02:00", "Europe/Berlin", "2024-08-13T00:00:00+02:00", "2024-08-14T09:00:00+02:00"),
        # The Monday before August's: July's is still the latest, and its week is over.
        ("2024-08-12T09:00:00-07:00", "America/Los_Angeles", "2024-07-08T17:00:00-07:00", "2024-07-16T00:00:00-07:00"),
        # Advisories are dated by their UTC day, which starts the evening before in Los Angeles.
        ("2024-08-13T20:00:00-07:00", "America/Los_Angeles", "2024-08-12T17:00:00-07:00", "2024-08-13T20:00:00-07:00"),
        # January 2026: the 1st is a Thursday, so the second Tuesday is the 13th.
        ("2026-01-31T12:00:00+09:00", "Asia/Tokyo", "2026-01-13T00:00:00+09:00", "2026-01-20T00:00:00+09:00"),
    ],
)
def test_patch_tuesday_named_without_a_time_is_the_latest_ones_week(asked, tz, start, end) -> None:
    query = parse_query("siemens ics advisories from this patch tuesday?", now=datetime.fromisoformat(asked), tz=tz)
    assert query.window is not None
    assert (query.window.start.isoformat(), query.window.end.isoformat()) == (start, end)
    assert query.window.label == "the week of Patch Tuesday"  # it reads mid-sentence: "No … the week of Patch Tuesday"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("patch tuesday today - any zero days?", "today"),  # a time named wins
        ("feb patch tuesday - how many zero days", "February 2026"),
        ("CVE-2026-21510 from patch tuesday - exploited?", None),  # the CVE names the bug, whenever reported
    ],
)
def test_patch_tuesday_beside_a_time_or_a_cve(text, label) -> None:
    query = parse_query(text, now=datetime.fromisoformat("2026-02-20T09:00:00+00:00"))
    assert (query.window.label if query.window else None) == label
