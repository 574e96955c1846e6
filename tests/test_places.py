"""Places named in questions and status reports, from CLDR's data: which can be the same place."""

from __future__ import annotations

import pytest

from retrieval.places import may_be_about, names_a_place, places_in


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("cloudflare tunnel problems in lisbon this week?", ["lisbon"]),
        ("cloudflare slow in korea today?", ["korea"]),  # a short name CLDR writes in full ("South Korea")
        ("network trouble in south america? brazil users complaining", ["south america", "brazil"]),
        ("Network Performance Issues in Warsaw, Poland (WAW)", ["warsaw", "poland"]),
        ("is github down?", []),
        ("a resolute troll farm in casey's town", []),  # cities named by English words are words here
        ("São Paulo and Kolkata", ["são paulo", "kolkata"]),  # CLDR's exemplar cities, not only zone ids
    ],
)
def test_places_are_found_by_their_names(text: str, names: list[str]) -> None:
    assert [p.name for p in places_in(text)] == names


@pytest.mark.parametrize(
    ("report", "asked", "about"),
    [
        ("Network Performance Issues in Warsaw, Poland (WAW)", "warsaw", True),
        ("Network Performance Issues in Warsaw, Poland (WAW)", "lisbon", False),
        ("Delayed responses for 1.1.1.1 in Vienna", "austria", True),  # a city of the asked country
        ("Increased R2 Error Rate in South America", "brazil", True),  # a region around the asked country
        ("Issues with Durable Objects in Western Europe", "brazil", False),
        ("Network Performance Issues in APAC", "korea", True),  # the trade's region names too
        ("Increased HTTP 522 Errors across multiple locations in EEUR region", "eastern europe", True),  # a code
        ("Increased HTTP 522 Errors across multiple locations in ENAM region", "eastern europe", False),
        ("Multiple GCP products impacted in asia-southeast2", "jakarta", True),  # a cloud region: maybe there
        ("Workers API errors", "warsaw", False),  # no place: the service's trouble everywhere
        ("Increased HTTP Errors in Hawaii", "honolulu", True),  # a state, from the zone database's old names
    ],
)
def test_a_report_may_be_about_an_asked_place_inside_or_around_it(report: str, asked: str, about: bool) -> None:
    assert may_be_about(report, places_in(asked)) is about


def test_a_cloud_region_is_a_place() -> None:
    assert names_a_place("Elevated errors in us-east-1") and names_a_place("europe-west9 unavailable")
    assert not names_a_place("Elevated errors for Workers KV")
