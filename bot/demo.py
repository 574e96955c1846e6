"""The demo data set: ~40 sample records so ``threatbot chat`` answers something on a fresh install.

The records are realistic but illustrative (their links point at ``demo.threatbot.example``).
Their times are stored as ages ("3h", "2d6h") and made absolute when seeded, so "any Exchange
outages today?" finds one on whatever day the demo runs, and "yesterday" finds none but names
the one three days back.

The ages were written for an afternoon (:data:`AUTHORED_AT`); at 1 a.m. "3h" ago would be yesterday.
So each record keeps the calendar day its age means at that hour, in the asker's zone: when now minus
the age lands on another day, that day's records are placed on their own day instead (today's ones
squeezed, in order, into the part of today that has passed). At the authored hour every age is exact.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

from retrieval.records import STORED, ThreatRecord
from retrieval.store import RecordStore, UpsertReport

DEMO_RESOURCE = "demo_records.jsonl"
_AGE = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """``"2d6h"`` → 2 days 6 hours. Raises ValueError on anything else."""
    compact = text.replace(" ", "").lower()
    parts = _AGE.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not an age like '3h' or '2d6h': {text!r}")
    return sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())


#: The local hour the demo's ages describe ("3h" ago is a late-morning story on the same day).
AUTHORED_AT = time(16, 0)


def place_ages(ages: list[timedelta], now: datetime, tz: str = "UTC") -> list[datetime]:
    """When each age happened, keeping the calendar day (in ``tz``) it means at :data:`AUTHORED_AT`."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    today = local_now.date()
    anchor = datetime.combine(today, AUTHORED_AT, zone)
    intended = [anchor - age for age in ages]
    exact = [now - age for age in ages]
    days = [moment.astimezone(zone).date() for moment in intended]
    # A day keeps exact ages only if all of its records stay on it; otherwise none do (order is kept).
    shifted = {day for day, moment in zip(days, exact, strict=True) if moment.astimezone(zone).date() != day}
    start = datetime.combine(today, time(0), zone)
    squeeze = (local_now - start) / (anchor - start) if anchor > local_now else 1.0
    placed = []
    for day, moment, wanted in zip(days, exact, intended, strict=True):
        if day not in shifted:
            placed.append(moment)
        elif day == today:  # squeezed into the part of today that has passed, in the same order
            placed.append((start + (wanted - start) * squeeze).astimezone(UTC))
        else:
            placed.append(wanted.astimezone(UTC))
    return placed


def demo_records(now: datetime | None = None, *, tz: str = "UTC") -> list[ThreatRecord]:
    """The demo records, with ``published`` placed relative to ``now`` on the day each is meant for in ``tz``."""
    now = now or datetime.now(UTC)
    text = resources.files("bot").joinpath("data", DEMO_RESOURCE).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        try:
            age = parse_age(data.pop("published_ago"))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{DEMO_RESOURCE} line {number}: {error}") from None
        rows.append((age, data))
    moments = place_ages([age for age, _ in rows], now, tz)
    return [  # ours: dated relative to any --now
        ThreatRecord.model_validate({**data, "published": moment}, context=STORED)
        for (_, data), moment in zip(rows, moments, strict=True)
    ]


def seed_demo(
    store: RecordStore, now: datetime | None = None, *, tz: str = "UTC", only_if_empty: bool = True
) -> UpsertReport | None:
    """Store the demo records; by default only into an empty store (never mixed into real data)."""
    if only_if_empty and store.count() > 0:
        return None
    return store.upsert(demo_records(now, tz=tz))
