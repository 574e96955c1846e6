"""Argument types shared by the CLI's commands: a moment (``--now``) and a time zone (``--tz``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_now(value: str) -> datetime:
    """An ISO 8601 moment; one without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--now wants an ISO 8601 time, e.g. 2026-06-02T18:00:00Z ({error})") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_tz(value: str) -> str:
    """An IANA time-zone name, checked against the zone database."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return value
