"""Link-archive JSON: feed items saved as ``{title, link, description, date_published, source}``.

This is how RSS link databases and many scrapers keep what they read (the 2023 news fixtures
are one such archive). The fields are the RSS ones, so the mapping is direct; the only work is
naming the publisher, since ``source`` there is the feed's URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from dateutil import parser as dateparser
from pydantic import ValidationError

from retrieval.formats.feeds import html_to_text
from retrieval.records import ThreatRecord

#: Feed hosts whose publisher name is not their domain.
KNOWN_PUBLISHERS = {
    "feeds.feedburner.com/thehackersnews": "The Hacker News",
    "thehackernews.com": "The Hacker News",
    "bleepingcomputer.com": "BleepingComputer",
    "securityweek.com": "SecurityWeek",
    "securityaffairs.com": "Security Affairs",
    "securityaffairs.co": "Security Affairs",
    "hackread.com": "HackRead",
    "zdnet.com": "ZDNet",
    "arstechnica.com": "Ars Technica",
    "feeds.arstechnica.com": "Ars Technica",
    "krebsonsecurity.com": "Krebs on Security",
    "darkreading.com": "Dark Reading",
    "therecord.media": "The Record",
}

LINK_ITEM_KEYS = frozenset({"link", "title"})


def looks_like_link_item(item: Mapping[str, Any]) -> bool:
    """A saved feed item rather than a canonical record: it has ``link`` and no ``url``."""
    return item.keys() >= LINK_ITEM_KEYS and "url" not in item


def publisher_name(feed_url: str) -> str:
    """``https://feeds.feedburner.com/TheHackersNews`` → ``The Hacker News``; unknown hosts → their domain."""
    parts = urlsplit(feed_url if "//" in feed_url else f"//{feed_url}")
    host = (parts.hostname or "").lower().removeprefix("www.")
    first_segment = parts.path.strip("/").split("/")[0].lower()
    for key in (f"{host}/{first_segment}", host, ".".join(host.split(".")[-2:])):
        if key in KNOWN_PUBLISHERS:
            return KNOWN_PUBLISHERS[key]
    return host or feed_url


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = dateparser.parse(str(value))
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def link_item_to_record(item: Mapping[str, Any]) -> ThreatRecord:
    """One saved feed item as a record; raises ``ValueError`` naming what is missing."""
    published = _date(item.get("date_published") or item.get("published") or item.get("pubDate"))
    if published is None:
        raise ValueError(f"no usable date in {item.get('date_published')!r}")
    try:
        return ThreatRecord(
            title=item.get("title") or "",
            url=item.get("link") or "",
            summary=html_to_text(item.get("description") or ""),
            published=published,
            source=publisher_name(item.get("source") or item.get("link") or ""),
        )
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"]) from None
