"""Argument types shared by the CLI's commands: a moment (``--now``) and a time zone (``--tz``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _moment(value: str, flag: str) -> datetime:
    """An ISO 8601 date or time; one without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{flag} wants an ISO 8601 time, e.g. 2026-06-02T18:00:00Z ({error})"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_now(value: str) -> datetime:
    """``--now``: the moment a question is asked (replays pin it)."""
    return _moment(value, "--now")


def parse_since(value: str) -> datetime:
    """``--since``: where a backfill starts."""
    return _moment(value, "--since")


def parse_tz(value: str) -> str:
    """An IANA time-zone name, checked against the zone database."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return value
