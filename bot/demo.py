"""The demo data set: ~40 sample records so ``threatbot chat`` answers something on a fresh install.

The records are realistic but illustrative (their links point at ``demo.threatbot.example``).
Their times are stored as ages ("3h", "2d6h") and made absolute when seeded, so "any Exchange
outages today?" finds one on whatever day the demo runs, and "yesterday" finds none but names
the one three days back.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from importlib import resources

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


def demo_records(now: datetime | None = None) -> list[ThreatRecord]:
    """The demo records, with ``published`` (and ``updated``) placed relative to ``now``."""
    now = now or datetime.now(UTC)
    text = resources.files("bot").joinpath("data", DEMO_RESOURCE).read_text(encoding="utf-8")
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        try:
            data["published"] = now - parse_age(data.pop("published_ago"))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{DEMO_RESOURCE} line {number}: {error}") from None
        records.append(ThreatRecord.model_validate(data, context=STORED))  # ours: dated relative to any --now
    return records


def seed_demo(store: RecordStore, now: datetime | None = None, *, only_if_empty: bool = True) -> UpsertReport | None:
    """Store the demo records; by default only into an empty store (never mixed into real data)."""
    if only_if_empty and store.count() > 0:
        return None
    return store.upsert(demo_records(now))
