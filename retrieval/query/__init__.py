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

from retrieval.query.model import StructuredQuery, TimeWindow, has_topic, is_understood, merge_queries
from retrieval.query.parser import (
    MAX_QUESTION_CHARS,
    MAX_TERMS,
    QuestionTooLong,
    check_question,
    parse_query,
    without_time_phrases,
)
from retrieval.query.vocabulary import asks_about_trouble, is_trouble_question

__all__ = [
    "MAX_QUESTION_CHARS",
    "MAX_TERMS",
    "QuestionTooLong",
    "StructuredQuery",
    "TimeWindow",
    "asks_about_trouble",
    "check_question",
    "has_topic",
    "is_trouble_question",
    "is_understood",
    "merge_queries",
    "parse_query",
    "without_time_phrases",
]
