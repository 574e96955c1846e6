"""Places a text names (cities, countries, world regions), and whether two of them can be the same place.

Status pages report local trouble by place ("Network Performance Issues in Warsaw, Poland (WAW)",
"Increased R2 Error Rate in South America"), and analysts ask by place ("cloudflare slow in lisbon this
week?"). The places come from CLDR through Babel, which the ingestion stack already installs: the time zone
database's cities with their countries, the English names of countries and of the UN's world regions.
Nothing here is a list of the places anyone asked about.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from babel import Locale
from babel.core import get_global
from lemminflect import getAllLemmas

#: Continents as the time zone database names them ("Europe/Warsaw"), which is how a city or a country
#: is placed in a world region.
_CONTINENT_WORDS = {
    "america": "America",
    "caribbean": "America",
    "europe": "Europe",
    "asia": "Asia",
    "africa": "Africa",
    "oceania": "Pacific",
    "australasia": "Pacific",
    "melanesia": "Pacific",
    "micronesian": "Pacific",
    "polynesia": "Pacific",
}
#: Old zone names grouped by country ("US/Hawaii", "Canada/Yukon"): their last part is a state or province.
_COUNTRY_ZONE_GROUPS = frozenset({"US", "Canada", "Brazil", "Chile", "Mexico", "Australia"})
#: Australia's and the Pacific's zones are one world region (Oceania).
_ZONE_CONTINENT = {"Australia": "Pacific", "Pacific": "Pacific"}
#: The trade's names of world regions, which CLDR does not list, and the codes status pages write for them
#: ("Increased HTTP 522 Errors across multiple locations in EEUR region"); only those no English word spells.
_TRADE_REGIONS = {
    "apac": ("Asia", "Pacific"),
    "apjc": ("Asia", "Pacific"),
    "asia pacific": ("Asia", "Pacific"),
    "asia-pacific": ("Asia", "Pacific"),
    "emea": ("Europe", "Africa", "Asia"),
    "latam": ("America",),
    "middle east": ("Asia",),
    "enam": ("America",),
    "wnam": ("America",),
    "eeur": ("Europe",),
    "weur": ("Europe",),
}
#: Short names CLDR writes in full ("South Korea", "United Kingdom").
_SHORT_COUNTRY_NAMES = {"korea": "KR", "uk": "GB", "britain": "GB", "great britain": "GB", "usa": "US", "uae": "AE"}
#: A cloud region's identifier ("europe-west9", "us-east-1", "asia-southeast2"): a place, though not one
#: this module can name.
_CLOUD_REGION = re.compile(
    r"(?<![\w-])(?:us|eu|ap|sa|ca|me|af|il|mx|europe|asia|australia|northamerica|southamerica|africa|me)"
    r"-[a-z]+(?:-[a-z]+)?-?\d(?:-[a-z])?(?![\w-])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Place:
    """A named place: a city (with its country), a country, or a world region (continents only)."""

    name: str
    country: str | None
    continents: frozenset[str]
    is_city: bool = False

    def may_be(self, other: Place) -> bool:
        """Whether a report about ``other`` can be about trouble at ``self``: the same place, one inside the
        other ("Vienna" for "austria"), or a world region holding the other ("South America" for "brazil")."""
        if self.is_city and other.is_city:
            return self.name == other.name
        if self.country and other.country:
            return self.country == other.country
        return bool(self.continents & other.continents)


@functools.cache
def _gazetteer() -> dict[str, Place]:
    english = Locale("en")
    territory_zones = get_global("territory_zones")
    zone_territories = get_global("zone_territories")

    def continents_of_zones(zones: list[str]) -> frozenset[str]:
        found = {zone.split("/")[0] for zone in zones}
        return frozenset(
            _ZONE_CONTINENT.get(c, c) for c in found if c in {*_ZONE_CONTINENT, *_CONTINENT_WORDS.values()}
        )

    places: dict[str, Place] = {}
    for code, name in english.territories.items():
        if code.isdigit():  # a UN world region ("South America", "Western Europe")
            holding = {c for word, c in _CONTINENT_WORDS.items() if word in name.lower()}
            if holding:
                places[name.lower()] = Place(name.lower(), None, frozenset(holding))
        elif len(code) == 2 and code in territory_zones:
            places[name.lower()] = Place(name.lower(), code, continents_of_zones(territory_zones[code]))
    for short, code in _SHORT_COUNTRY_NAMES.items():
        places[short] = Place(short, code, continents_of_zones(territory_zones.get(code, [])))
    for region, trade_continents in _TRADE_REGIONS.items():
        places[region] = Place(region, None, frozenset(trade_continents))
    exemplars = english.time_zones
    for zone, country in zone_territories.items():
        if "/" not in zone or zone.startswith(("Etc/", "Antarctica/", "Arctic/")):
            continue  # research stations ("Casey", "Davis") are people's names far more often
        names = {zone.rsplit("/", 1)[1].replace("_", " ").lower()}
        exemplar = exemplars.get(zone, {}).get("city")
        if isinstance(exemplar, str):
            names.add(exemplar.lower())
        for name in names:
            # A city whose name is an English word ("Troll", "Resolute", "Phoenix") is too often not the city.
            if name in places or (" " not in name and getAllLemmas(name)):
                continue
            places[name] = Place(name, country, continents_of_zones([zone]), is_city=True)
    # The zone database's older names add places the current ones lack: states and provinces ("US/Hawaii",
    # "Canada/Yukon", read as their country's) and renamed cities ("America/Montreal").
    for alias, zone in get_global("zone_aliases").items():
        country = zone_territories.get(zone)
        if "/" not in alias or alias.startswith(("Etc/", "Antarctica/")) or country is None:
            continue
        group, _, last = alias.rpartition("/")
        name = last.replace("_", " ").lower()
        if name in places or (" " not in name and getAllLemmas(name)) or not name.isalpha():
            continue
        city = group.split("/")[0] not in _COUNTRY_ZONE_GROUPS
        places[name] = Place(name, country, continents_of_zones([zone]), is_city=city)
    return places


@functools.cache
def _pattern() -> re.Pattern[str]:
    """Every name of the gazetteer (all lowercase), longest first. Matched against lowercased text: with
    ``re.IGNORECASE`` the same 760-name alternation runs six times slower, and the gate reads it over status pages."""
    names = sorted(_gazetteer(), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")


def places_in(text: str) -> list[Place]:
    """The places ``text`` names, longest names first where they overlap ("South Korea" over "Korea")."""
    gazetteer = _gazetteer()
    return [gazetteer[m.group(0)] for m in _pattern().finditer(text.lower())]


def names_a_place(text: str) -> bool:
    """Whether ``text`` names any place, a cloud region's identifier included."""
    return bool(_CLOUD_REGION.search(text)) or bool(places_in(text))


def may_be_about(text: str, asked: Sequence[Place]) -> bool:
    """Whether a report with ``text`` can be about one of the ``asked`` places: it names one of them, a place
    inside or around one, or a cloud region (which this module cannot place, so it gets the benefit of the
    doubt). A report that names no place at all is about the service everywhere, not about trouble there."""
    if _CLOUD_REGION.search(text):
        return True
    return any(place.may_be(said) or said.may_be(place) for place in asked for said in places_in(text))
