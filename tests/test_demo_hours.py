"""The demo's "today" records stay today, and "yesterday"'s stay yesterday, at any hour of the asker's day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.demo import demo_records, parse_age, place_ages

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("hour", range(24))
def test_every_record_keeps_its_day_and_order_at_any_hour(hour: int) -> None:
    now = datetime(2026, 6, 2, hour, 30, tzinfo=BERLIN).astimezone(UTC)
    authored = datetime(2026, 6, 2, 16, 0, tzinfo=BERLIN).astimezone(UTC)
    at_authored_hour = {r.title: r.published for r in demo_records(authored, tz="Europe/Berlin")}
    records = demo_records(now, tz="Europe/Berlin")
    for record in records:
        assert record.published <= now, record.title
        meant = at_authored_hour[record.title].astimezone(BERLIN).date()
        assert record.published.astimezone(BERLIN).date() == meant, (hour, record.title)
    ordered = sorted(records, key=lambda r: at_authored_hour[r.title])
    assert [r.published for r in ordered] == sorted(r.published for r in records)  # newest stays newest
    exchange = next(r for r in records if "Exchange Online outage causes" in r.title)
    assert exchange.published.astimezone(BERLIN).date() == now.astimezone(BERLIN).date()


def test_ages_are_exact_whenever_they_fit_the_day() -> None:
    now = datetime(2026, 6, 2, 18, 0, tzinfo=UTC)
    ages = [parse_age(a) for a in ("3h", "5h30m", "1d", "3d8h")]
    assert place_ages(ages, now) == [now - age for age in ages]
    early = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)
    placed = place_ages([timedelta(hours=3), timedelta(hours=5)], early)
    assert all(p.date() == early.date() and p <= early for p in placed) and placed[0] > placed[1]
