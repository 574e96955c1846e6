"""Ransomware leak-site posts as tracked by ransomwatch: ``[{post_title, group_name, discovered}]``.

Each post is a group naming a victim on its leak site — a ransomware incident with a date and
little else. The record says exactly that and no more: kind ``ransomware``, the group as a tag,
the victim as the title's subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dateutil import parser as dateparser
from pydantic import ValidationError

from retrieval.formats import ParsedSource, item_problem
from retrieval.records import Kind, ThreatRecord

POST_KEYS = frozenset({"post_title", "group_name", "discovered"})


def looks_like_ransomware_posts(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], Mapping) and data[0].keys() >= POST_KEYS


def parse_posts(data: list[Any], *, origin: str) -> ParsedSource:
    """Every post as a record; bad posts are reported by index and the rest still load."""
    parsed = ParsedSource(format="ransomware-posts")
    for number, post in enumerate(data):
        try:
            parsed.records.append(post_to_record(post))
        except Exception as error:  # one bad post costs one record, whatever it trips over
            parsed.errors.append(f"{origin} post {number}: {item_problem(error)}")
    return parsed


def post_to_record(post: Mapping[str, Any]) -> ThreatRecord:
    """One leak-site post; raises ``ValueError`` for a post without a victim or a date."""
    victim = " ".join(str(post.get("post_title") or "").split())
    group = str(post.get("group_name") or "").strip()
    if not victim or not group:
        raise ValueError("a post needs post_title and group_name")
    try:
        discovered = dateparser.parse(str(post.get("discovered")))
    except (ValueError, OverflowError):
        raise ValueError(f"bad date {post.get('discovered')!r}") from None
    if discovered is None:
        raise ValueError("no date")
    if discovered.tzinfo is None:
        discovered = discovered.replace(tzinfo=UTC)
    try:
        return _record(group, victim, discovered)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None


def _record(group: str, victim: str, discovered: datetime) -> ThreatRecord:
    return ThreatRecord(
        id=f"ransomwatch:{group}:{victim}".lower(),
        title=f"{group} ransomware gang lists {victim} on its leak site",
        summary=f"The {group} ransomware group posted {victim} as a victim on its data-leak site.",
        published=discovered,
        source="ransomwatch",
        kind=Kind.RANSOMWARE,
        tags=["ransomware", group, "leak-site"],
        fetched_at=datetime.now(UTC),
    )
