"""Argument types shared by the CLI's commands: a moment (``--now``), a time zone (``--tz``), a ``--limit``.

Each refuses bad values with a one-line message (argparse shows it; ``search --batch`` puts it in
that line's error object) rather than letting an extreme value reach date arithmetic.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _moment(value: str, flag: str) -> datetime:
    """An ISO 8601 date or time; one without a zone is UTC."""
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"{flag} wants an ISO 8601 time as a string, not {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{flag} wants an ISO 8601 time, e.g. 2026-06-02T18:00:00Z ({error})"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST_MOMENT <= moment < LATEST_MOMENT
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past datetime's range in UTC
        in_range = False
    if not in_range:
        raise argparse.ArgumentTypeError(
            f"{flag} {value!r} is outside {EARLIEST_MOMENT:%Y-%m-%d} .. {LATEST_MOMENT:%Y-%m-%d}"
        )
    return moment


#: Moments a question can be asked at: windows ("last 3 years", "next week") must still be dates.
EARLIEST_MOMENT = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(2200, 1, 1, tzinfo=UTC)
#: IANA names are short ("America/Argentina/ComodRivadavia" is among the longest).
MAX_TZ_CHARS = 64


def parse_limit(value: str | int | float) -> int:
    """``--limit``: how many results, 1 to 100."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"limit wants a whole number from 1 to 100, not {value!r}") from None
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError(f"limit wants a whole number from 1 to 100, not {number}")
    return number


def parse_now(value: str) -> datetime:
    """``--now``: the moment a question is asked (replays pin it)."""
    return _moment(value, "--now")


def parse_since(value: str) -> datetime:
    """``--since``: where a backfill starts."""
    return _moment(value, "--since")


def parse_tz(value: str) -> str:
    """An IANA time-zone name, checked against the zone database."""
    if not isinstance(value, str) or len(value) > MAX_TZ_CHARS:
        shown = repr(value)[:40] + ("…" if len(repr(value)) > 40 else "")
        raise argparse.ArgumentTypeError(f"unknown time zone {shown} (use an IANA name such as Europe/Berlin)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return value
