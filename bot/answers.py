"""Extractive answers: the exact, short wording threatbot uses when no LLM writes the reply.

Every sentence here is built from record fields and the understood query, nothing else: when a
record lacks a field the answer says so rather than guessing. Times are in the asker's zone and
the window is named ("Today (Tue 2 Jun, Europe/Berlin)") so "none today" is checkable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands import Field
from bot.messages import ReplyItem
from retrieval.aboutness import names_a_subject
from retrieval.query import StructuredQuery
from retrieval.records import Kind, Severity, ThreatRecord

#: How each kind is counted in a sentence: (singular, plural).
KIND_NOUNS: dict[Kind, tuple[str, str]] = {
    Kind.OUTAGE: ("outage", "outages"),
    Kind.VULNERABILITY: ("vulnerability", "vulnerabilities"),
    Kind.BREACH: ("breach", "breaches"),
    Kind.RANSOMWARE: ("ransomware attack", "ransomware attacks"),
    Kind.MALWARE: ("malware story", "malware stories"),
    Kind.ADVISORY: ("advisory", "advisories"),
    Kind.OTHER: ("story", "stories"),
}


# -- time -----------------------------------------------------------------------------------------


def day_label(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """``Tue 2 Jun`` (with the year when it is not the current one) in the asker's zone."""
    local = moment.astimezone(zone)
    text = f"{local:%a} {local.day} {local:%b}"
    return text if local.year == now.astimezone(zone).year else f"{text} {local.year}"


def moment_label(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """``Tue 2 Jun 17:02``: a record's time, to the minute, in the asker's zone."""
    return f"{day_label(moment, zone, now)} {moment.astimezone(zone):%H:%M}"


def ago(moment: datetime, zone: ZoneInfo, now: datetime) -> str:
    """How long ago, as a person says it: "25 min ago", "3 h ago", "yesterday", "3 days ago"."""
    delta = now - moment
    if delta < timedelta(0):
        return "in the future"
    days = (now.astimezone(zone).date() - moment.astimezone(zone).date()).days
    if delta < timedelta(hours=1):
        return f"{max(1, int(delta.total_seconds() // 60))} min ago"
    if days == 0:
        return f"{int(delta.total_seconds() // 3600)} h ago"
    if days == 1:
        return "yesterday"
    if days < 45:
        return f"{days} days ago"
    if days < 730:
        return f"{round(days / 30.4)} months ago"
    return f"{days // 365} years ago"


def window_phrase(query: StructuredQuery, zone: ZoneInfo, now: datetime) -> str | None:
    """The window's name and its dates in the asker's zone: "Today (Tue 2 Jun, Europe/Berlin)"."""
    dates = window_dates(query, zone, now)
    if dates is None:
        return None
    label = (query.window.label if query.window else "").strip() or "In the window"
    return f"{label[0].upper()}{label[1:]} {dates}"


def window_dates(query: StructuredQuery, zone: ZoneInfo, now: datetime) -> str | None:
    """The window's days in the asker's zone, in brackets: "(Sun 8 Feb – Tue 10 Feb, Europe/Berlin)"."""
    window = query.window
    if window is None:
        return None
    last = min(window.end, now) - timedelta(microseconds=1)
    first_day, last_day = day_label(window.start, zone, now), day_label(max(last, window.start), zone, now)
    dates = first_day if first_day == last_day else f"{first_day} – {last_day}"
    return f"({dates}, {zone.key})"


def window_words(query: StructuredQuery) -> str:
    """The window as it goes mid-sentence: "today", "this week"."""
    return (query.window.label or "in that window").strip() if query.window else ""


# -- what was asked -------------------------------------------------------------------------------


def subject(query: StructuredQuery, count: int) -> str:
    """The noun phrase for ``count`` matches: "Exchange outages", "critical exploited vulnerabilities"."""
    plural = count != 1
    adjectives: list[str] = []
    if query.min_severity is not None and query.min_severity is not Severity.UNKNOWN:
        adjectives.append(
            query.min_severity.value if query.min_severity is Severity.CRITICAL else f"{query.min_severity.value}+"
        )
    if query.exploited:
        adjectives.append("exploited")
    # A product names the vendor too ("Exchange", not "Microsoft Exchange outages"): products win.
    entities = list(dict.fromkeys([*(query.products or query.vendors), *query.cves]))
    kinds = list(query.kinds)
    if len(kinds) == 1:
        noun = KIND_NOUNS[kinds[0]][1 if plural else 0]
    elif kinds:
        noun = " or ".join(KIND_NOUNS[k][1 if plural else 0] for k in kinds)
    else:
        noun = "stories" if plural else "story"
    phrase = " ".join([*adjectives, *(_entity_text(e) for e in entities[:3]), noun])
    topic = [t for t in query.terms if names_a_subject(t)]  # "what went into KEV?" is not about "went"
    if not entities and topic:
        phrase += " about “" + " ".join(topic) + "”"
    return phrase


def _entity_text(name: str) -> str:
    return name if any(c.isupper() for c in name) else name.title() if not name.upper().startswith("CVE-") else name


def count_phrase(count: int, capped: bool) -> str:
    return f"{count}+" if capped else str(count)


# -- stories --------------------------------------------------------------------------------------


def item_line(item: ReplyItem, zone: ZoneInfo, now: datetime) -> str:
    """One story: number, title, how many sources, severity, exploitation, when, link, id."""
    record = item.record
    facts = [f"{item.source_count} sources" if item.source_count > 1 else record.source or "1 source"]
    if record.severity is not Severity.UNKNOWN:
        facts.append(record.severity.value)
    if record.exploited:
        facts.append("exploited")
    when = f"{moment_label(record.published, zone, now)} ({ago(record.published, zone, now)})"
    facts.append(f"{when}, reported after {item.reported_after}" if item.reported_after else when)
    link = f"\n   {record.url}" if record.url else ""
    mark = f"\n   {item.stack_note}" if item.stack_note else ""
    return f"{item.label}. *{record.title}* — {' · '.join(facts)}{link}\n   id `{record.id}`{mark}"


def list_answer(
    heading: str, items: Sequence[ReplyItem], zone: ZoneInfo, now: datetime, *, more: int = 0, footer: str = ""
) -> str:
    lines = [heading, *(item_line(i, zone, now) for i in items)]
    if more > 0:
        lines.append(f"{more} more — say “more” to see them.")
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def none_answer(
    query: StructuredQuery,
    zone: ZoneInfo,
    now: datetime,
    latest: ReplyItem | None,
    mentions: Sequence[ReplyItem] = (),
) -> str:
    """Says there is none, in the window, and names the latest earlier match: "No Exchange outages today (…)".

    ``mentions``: stories that name the subject without being what was asked ("2 stories mention Cloudflare
    (…)"), so an honest "nothing" does not hide what the analyst may have seen elsewhere.
    """
    what = subject(query, 0)
    window = window_phrase(query, zone, now)
    if query.catalogue == "kev":
        named = ", ".join([*query.cves, *(query.products or query.vendors)]) or what
        head = f"{named}: not in the CISA KEV catalogue as of {moment_label(now, zone, now)} ({zone.key})"
        head += f", {window_words(query)}." if window is not None else "."
    elif window is not None:
        head = f"No {what} {window_words(query)} {window_dates(query, zone, now)}."
    else:
        head = f"No {what} in the records."
    if latest is not None:
        record = latest.record
        sources = f"{latest.source_count} sources" if latest.source_count > 1 else record.source
        head += (
            f"\nThe last one: *{record.title}* ({sources}), {moment_label(record.published, zone, now)}, "
            f"{ago(record.published, zone, now)}."
        )
        if record.url:
            head += f"\n   {record.url}"
        head += f"\n   id `{record.id}`"
    elif window is not None and query.catalogue != "kev":
        head += " None earlier in the records either."
    if mentions:
        named = ", ".join(_entity_text(e) for e in [*(query.products or query.vendors), *query.cves][:2])
        count = len(mentions)
        titles = "; ".join(f"“{_clip(m.record.title, 90)}”" for m in mentions)
        head += f"\n{count} {'story mentions' if count == 1 else 'stories mention'} {named} ({titles})."
    return head


def record_detail(record: ThreatRecord, members: Sequence[ThreatRecord], zone: ZoneInfo, now: datetime) -> str:
    """A record in full: what ``show`` and "tell me more about the second one" answer."""
    facts = [record.kind.value]
    if record.severity is not Severity.UNKNOWN:
        facts.append(f"severity {record.severity.value}")
    if record.exploited:
        facts.append("exploited")
    lines = [
        f"*{record.title}*",
        f"{' · '.join(facts)} · {moment_label(record.published, zone, now)} ({ago(record.published, zone, now)})"
        f" · {record.source}",
    ]
    if record.url:
        lines.append(record.url)
    for label, values in (
        ("CVEs", record.cves),
        ("Vendors", record.vendors),
        ("Products", record.products),
        ("Countries", record.countries),
    ):
        if values:
            lines.append(f"{label}: {', '.join(values)}")
    if record.summary:
        lines.append("")
        lines.append(_clip(record.summary, 700))
    if record.impact:
        lines.append(f"\nImpact: {record.impact}")
    if record.mitigation:
        lines.append(f"\nMitigation: {record.mitigation}")
    others = [m for m in members if m.id != record.id]
    if others:
        lines.append(f"\nAlso reported by {len({m.source for m in others})} other source(s):")
        lines += [f"• {m.source}: {m.title} — {m.url}" for m in others[:6]]
    lines.append(f"id `{record.id}`")
    return "\n".join(lines)


def source_answer(record: ThreatRecord, members: Sequence[ThreatRecord], zone: ZoneInfo, now: datetime) -> str:
    lines = [f"Source: {record.source or 'not stated'}, {moment_label(record.published, zone, now)}"]
    lines.append(record.url or "The record has no link.")
    others = [m for m in members if m.id != record.id]
    if others:
        lines.append("Also reported by:")
        lines += [f"• {m.source}, {moment_label(m.published, zone, now)}: {m.url or m.title}" for m in others[:8]]
    return "\n".join(lines)


def field_answer(field: Field, record: ThreatRecord, zone: ZoneInfo, now: datetime) -> str:
    """One field of the record in focus — or a plain statement that the record does not list it."""
    title = f"*{record.title}*"
    if field is Field.MITIGATION:
        return (
            f"Mitigation for {title}: {record.mitigation}"
            if record.mitigation
            else (f"The record doesn't list a mitigation for {title}." + _see_link(record))
        )
    if field is Field.COUNTRIES:
        if record.countries:
            return f"Countries named for {title}: {', '.join(record.countries)}."
        return f"The record doesn't list affected countries for {title}."
    if field is Field.IMPACT:
        if record.impact:
            return f"Impact of {title}: {record.impact}"
        return f"The record doesn't describe the impact of {title}." + _see_link(record)
    if field is Field.EXPLOITED:
        if record.exploited:
            cves = f" ({', '.join(record.cves)})" if record.cves else ""
            return f"Yes — the record marks {title}{cves} as exploited."
        return f"The record doesn't say {title} is exploited."
    if field is Field.SEVERITY:
        if record.severity is Severity.UNKNOWN:
            return f"The record doesn't state a severity for {title}."
        return f"{title} is rated {record.severity.value} by its source record."
    if field is Field.CVES:
        if record.cves:
            return f"CVEs in {title}: {', '.join(record.cves)}."
        return f"The record doesn't list any CVE for {title}."
    if field is Field.PRODUCTS:
        named = [*record.vendors, *record.products]
        if named:
            parts = []
            if record.vendors:
                parts.append(f"vendors {', '.join(record.vendors)}")
            if record.products:
                parts.append(f"products {', '.join(record.products)}")
            return f"{title} names {'; '.join(parts)}."
        return f"The record doesn't name affected vendors or products for {title}."
    if field is Field.PUBLISHED:
        return (
            f"{title} was published {moment_label(record.published, zone, now)} ({zone.key}), "
            f"{ago(record.published, zone, now)}, by {record.source or 'an unnamed source'}."
        )
    raise ValueError(f"no answer for field {field}")


def _see_link(record: ThreatRecord) -> str:
    return f" The source may say more: {record.url}" if record.url else ""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
