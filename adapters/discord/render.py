"""The core's replies and delivery payloads as Discord messages: embeds coloured by severity, within limits.

Two kinds of input, one look:

* chat — a :class:`bot.messages.Reply` → :func:`render_reply`: the answer's text as content (light
  markdown turned into Discord's), and an embed per story (linked title, severity colour, facts,
  published as a Discord timestamp so every reader sees their own zone);
* feed — :class:`~bot.delivery.base.IncidentPost`, ``IncidentUpdate``, ``Digest`` →
  :func:`render_incident`, :func:`render_update`, :func:`render_digest`.

Record text is third-party text: it is markdown-escaped, mention-neutralised (``@everyone`` never
reads as one) and clipped by :mod:`adapters.discord.limits` wherever it goes. Sending code still
passes ``AllowedMentions.none()``; neutralising here keeps the text from even looking like a ping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import discord

from adapters.discord import limits
from adapters.discord.limits import OutgoingMessage, clip, join_within, pack
from bot.delivery.base import Digest, FieldChange, IncidentPost, IncidentUpdate
from bot.incidents import IncidentFacts
from bot.messages import Reply, ReplyItem, ReplyKind
from retrieval.records import Severity, ThreatRecord

__all__ = [
    "SEVERITY_COLOURS",
    "discord_markdown",
    "incident_embed",
    "neutral",
    "record_embed",
    "render_digest",
    "render_incident",
    "render_reply",
    "render_update",
    "thread_name",
    "timestamp",
]

SEVERITY_COLOURS: dict[Severity, int] = {
    Severity.CRITICAL: 0xC62828,
    Severity.HIGH: 0xEF6C00,
    Severity.MEDIUM: 0xF9A825,
    Severity.LOW: 0x2E7D32,
    Severity.UNKNOWN: 0x607D8B,
}
#: How much of a summary a feed post shows: a post, not the article.
FEED_SUMMARY = 1500
#: How much of a summary a story in a chat answer shows.
ITEM_SUMMARY = 280
#: Longest title shown inside a digest line or an update's "new report" line.
LINE_TITLE = 150


# -- text -----------------------------------------------------------------------------------------


def neutral(text: str) -> str:
    """Third-party text made safe to show: markdown escaped, mentions (``@everyone``, ``<@id>``) defused."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text or ""))


def _title(text: str) -> str:
    """An embed title from record text: mentions defused (titles show markdown literally enough to keep)."""
    return discord.utils.escape_mentions(" ".join(text.split()))


def _link_text(text: str) -> str:
    """Text for inside ``[…](url)``: brackets would end the link early."""
    return neutral(text).replace("[", "(").replace("]", ")")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL Discord accepts in an embed or a markdown link, else None."""
    if not url or len(url) > limits.URL:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url.strip()):
        return None
    return url.strip().replace(")", "%29").replace("(", "%28")


def _link(text: str, url: str | None) -> str:
    target = safe_url(url)
    return f"[{_link_text(text)}]({target})" if target else neutral(text)


def timestamp(moment: datetime, style: str = "f") -> str:
    """A Discord timestamp (``<t:1748880000:f>``): each reader sees it in their own zone and language."""
    return discord.utils.format_dt(moment, style)  # type: ignore[arg-type]


def _when(moment: datetime) -> str:
    return f"{timestamp(moment, 'f')} ({timestamp(moment, 'R')})"


_BOLD = re.compile(r"(?<![\w*\\])\*(?![\s*])([^*\n]+?)(?<![\s\\])\*(?![\w*])")
_BARE_URL = re.compile(r"(?<![<(\w])(https?://[^\s<>]*[^\s<>.,;:!?)\]'\"])")
_CODE = re.compile(r"`[^`\n]+`")


def discord_markdown(text: str) -> str:
    """The core's light markdown as Discord's, everything else shown literally.

    The core marks up only ``*bold*`` and `` `code` `` (commands, ids); the rest of its text quotes
    record titles, user input and LLM prose — third-party text. That is markdown-escaped, so a
    feed's ``[vendor.com](https://evil…)`` shows as those characters, never as a masked link; its
    ``*`` and ``_`` stay characters; bare URLs are wrapped in ``<…>`` (no previews). Mentions are
    neutralised too.
    """
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(0))  # inside a code span nothing renders: kept as the core wrote it
        return f"{_SPAN_OPEN}{len(spans) - 1}{_SPAN_CLOSE}"

    marked = _BOLD.sub(rf"{_BOLD_OPEN}\1{_BOLD_CLOSE}", _CODE.sub(keep, text))
    escaped = _BARE_URL.sub(r"<\1>", discord.utils.escape_markdown(marked))
    escaped = escaped.replace(_BOLD_OPEN, "**").replace(_BOLD_CLOSE, "**")
    escaped = _SPAN.sub(lambda m: spans[int(m.group(1))], escaped)
    return discord.utils.escape_mentions(escaped)


# Private-use characters stand in for the core's own markup while the rest is escaped.
_SPAN_OPEN, _SPAN_CLOSE, _BOLD_OPEN, _BOLD_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_SPAN = re.compile(f"{_SPAN_OPEN}(\\d+){_SPAN_CLOSE}")


def thread_name(text: str) -> str:
    """A thread title from a question or a record title: one line, at most 100 characters, never empty."""
    line = " ".join(discord.utils.remove_markdown(text or "").split())
    line = discord.utils.escape_mentions(line)
    return clip(line, limits.THREAD_NAME) or "threatbot"


# -- records --------------------------------------------------------------------------------------


def _severity_line(record: ThreatRecord, facts: IncidentFacts | None = None) -> str:
    """How bad: the record's own severity, or for a feed incident the worst any of its reports states."""
    severity = facts.severity if facts is not None else record.severity
    parts = ["not stated" if severity is Severity.UNKNOWN else severity.value.capitalize()]
    if facts.exploited if facts is not None else record.exploited:
        parts.append("**exploited**")
    return " · ".join(parts)


def _distinct(sources: Iterable[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Sources by name, first mention wins (with its link)."""
    seen: dict[str, tuple[str, str | None]] = {}
    for name, url in sources:
        name = (name or "").strip()
        if name and name.lower() not in seen:
            seen[name.lower()] = (name, url)
    return list(seen.values())


def _sources_of(members: Sequence[ThreatRecord], record: ThreatRecord) -> list[tuple[str, str | None]]:
    """Distinct sources of an incident, headline's first, each with the link of its first report."""
    found = _distinct((m.source, m.url or None) for m in [record, *members])
    return found or [("source not stated", record.url or None)]


def record_embed(
    record: ThreatRecord,
    *,
    sources: Sequence[tuple[str, str | None]],
    summary_limit: int = limits.DESCRIPTION,
    detail: bool = False,
    footer: str = "",
    title_prefix: str = "",
    facts: IncidentFacts | None = None,
) -> discord.Embed:
    """A record as an embed: title linked to the story, colour by severity, facts as fields.

    ``facts``: the incident's severity and exploitation (``bot.incidents``) when the record stands
    for an incident of several reports; by default the record's own.
    """
    embed = discord.Embed(
        title=clip(_title(title_prefix + record.title), limits.TITLE),
        url=safe_url(record.url),
        colour=SEVERITY_COLOURS[facts.severity if facts is not None else record.severity],
    )
    summary = record.summary or (record.body or "")
    if summary:
        embed.description = clip(neutral(" ".join(summary.split())), summary_limit)
    embed.add_field(name="Severity", value=_severity_line(record, facts), inline=True)
    embed.add_field(name="Kind", value=record.kind.value.capitalize(), inline=True)
    embed.add_field(name="Published", value=_when(record.published), inline=True)
    links = [_link(name, url) for name, url in sources]
    embed.add_field(
        name=f"Sources ({len(links)})" if len(links) > 1 else "Source",
        value=join_within(links, limits.FIELD_VALUE),
        inline=False,
    )
    if record.cves:
        embed.add_field(name=f"CVEs ({len(record.cves)})", value=join_within(record.cves, limits.FIELD_VALUE))
    affected = [neutral(v) for v in dict.fromkeys([*record.vendors, *record.products])]
    if affected:
        embed.add_field(name="Affects", value=join_within(affected, limits.FIELD_VALUE))
    if detail and record.countries:
        embed.add_field(name="Countries", value=join_within([neutral(c) for c in record.countries], limits.FIELD_VALUE))
    if record.impact:
        embed.add_field(name="Impact", value=clip(neutral(record.impact), limits.FIELD_VALUE))
    if record.mitigation:
        embed.add_field(name="Mitigation", value=clip(neutral(record.mitigation), limits.FIELD_VALUE))
    embed.set_footer(text=clip(f"id {record.id}" + (f" · {footer}" if footer else ""), limits.FOOTER))
    return limits.fit_embed(embed)


def incident_embed(post: IncidentPost) -> discord.Embed:
    """A new incident for a feed channel."""
    matched = ", ".join(f"“{q}”" for q in post.subscriptions)
    return record_embed(
        post.record,
        sources=_sources_of(post.members, post.record),
        summary_limit=FEED_SUMMARY,
        footer=f"matched {matched}" if matched else "",
        facts=post.facts,
    )


def _item_embed(item: ReplyItem) -> discord.Embed:
    """One story of a chat answer, compact: what it is, how bad, who reports it, when."""
    record = item.record
    sources = [record.source or "source not stated", *item.member_sources]
    distinct = list(dict.fromkeys(s for s in sources if s))
    facts = [_severity_line(record), record.kind.value]
    facts.append(f"{len(distinct)} sources" if len(distinct) > 1 else neutral(distinct[0]))
    facts.append(timestamp(record.published, "R"))
    if item.reported_after:
        facts.append(f"reported after {neutral(item.reported_after)}")
    lines = [" · ".join(facts)]
    if record.summary:
        lines.append(clip(neutral(" ".join(record.summary.split())), ITEM_SUMMARY))
    embed = discord.Embed(
        title=clip(_title(f"{item.label}. {record.title}"), limits.TITLE),
        url=safe_url(record.url),
        colour=SEVERITY_COLOURS[record.severity],
        description="\n".join(lines),
    )
    embed.set_footer(text=f"id {record.id}")
    return limits.fit_embed(embed)


# -- feed -----------------------------------------------------------------------------------------


def render_incident(post: IncidentPost) -> OutgoingMessage:
    return OutgoingMessage(embeds=[incident_embed(post)])


_FIELD_LABELS = {"cves": "CVEs", "exploited": "Exploited", "severity": "Severity", "kind": "Kind"}


def _value(value: object) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set):
        return join_within([neutral(str(v)) for v in value], 300)
    return clip(neutral(str(value)), 300)


def _change_line(change: FieldChange) -> str:
    label = _FIELD_LABELS.get(change.field, change.field.replace("_", " ").capitalize())
    return f"**{label}**: {_value(change.before)} → {_value(change.after)}"


def render_update(update: IncidentUpdate) -> OutgoingMessage:
    """What changed about an incident already posted: posted as a reply in its thread."""
    record = update.record
    lines = [_change_line(c) for c in update.changes]
    if update.new_source:
        source = neutral(record.source or "a new source")
        lines.append(f"New report from **{source}**: {_link(clip(record.title, LINE_TITLE), record.url)}")
    if not lines:
        lines.append("The record was updated.")
    embed = discord.Embed(
        title=clip(_title(f"Update: {record.title}"), limits.TITLE),
        url=safe_url(record.url),
        colour=SEVERITY_COLOURS[update.facts.severity],
        description="\n".join(lines),
    )
    links = [_link(name, url) for name, url in _sources_of(update.members, record)]
    embed.add_field(name=f"Sources ({len(links)})", value=join_within(links, limits.FIELD_VALUE), inline=False)
    embed.add_field(name="Published", value=_when(record.published), inline=True)
    embed.set_footer(text=f"id {record.id}")
    return OutgoingMessage(embeds=[limits.fit_embed(embed)])


def _digest_line(post: IncidentPost) -> str:
    record = post.record
    incident = post.facts
    facts = []
    if incident.severity is not Severity.UNKNOWN:
        facts.append(incident.severity.value)
    if incident.exploited:
        facts.append("exploited")
    count = len(post.sources)
    facts.append(f"{count} sources" if count > 1 else neutral(record.source or "1 source"))
    facts.append(timestamp(record.published, "R"))
    return f"• {_link(clip(record.title, LINE_TITLE), record.url)} — {' · '.join(facts)}"


def render_digest(digest: Digest, *, threads: bool = True) -> OutgoingMessage:
    """Many new incidents as one message: a line each, spread over up to 10 embeds and 6000 characters.

    ``threads``: whether updates to them will come in this message's thread (a bot) or as new messages (a webhook).
    """
    items = digest.items
    worst = max((i.facts.severity for i in items), key=lambda s: s.rank, default=Severity.UNKNOWN)
    queries = ", ".join(f"“{q}”" for q in digest.subscriptions)
    title = clip(_title(f"{len(items)} new incidents" + (f" matching {queries}" if queries else "")), limits.TITLE)
    footer = (
        "Updates to any of them are posted in this message's thread."
        if threads
        else "Updates to any of them follow as separate messages."
    )
    trailer_room = 80  # "… and N more" must always fit
    budget = limits.EMBED_TOTAL - len(title) - len(footer) - trailer_room
    embeds = [discord.Embed(title=title, colour=SEVERITY_COLOURS[worst], description="")]
    used = 0
    shown = 0
    for post in items:
        line = _digest_line(post)
        if used + len(line) + 1 > budget:
            break
        current = embeds[-1]
        if len(current.description or "") + len(line) + 1 > limits.DESCRIPTION - trailer_room:
            if len(embeds) >= limits.EMBEDS_PER_MESSAGE:
                break
            current = discord.Embed(colour=SEVERITY_COLOURS[worst], description="")
            embeds.append(current)
        current.description = f"{current.description}\n{line}" if current.description else line
        used += len(line) + 1
        shown += 1
    if shown < len(items):
        last = embeds[-1]
        last.description = f"{last.description}\n… and {len(items) - shown} more — `/threat latest` lists them."
    embeds[-1].set_footer(text=footer)
    return OutgoingMessage(embeds=[limits.fit_embed(e) for e in embeds])


# -- chat -----------------------------------------------------------------------------------------


def render_reply(reply: Reply, *, with_suggestions: bool = True, embeds_allowed: bool = True) -> list[OutgoingMessage]:
    """A chat reply as one or more messages (text over 2000 characters or many embeds need several).

    ``embeds_allowed`` False (the bot lacks Embed Links where it answers: Discord would drop every
    embed) gives the core's full text instead, which carries the same stories as plain lines.
    """
    embeds: list[discord.Embed] = []
    text = reply.text
    if not embeds_allowed:
        pass
    elif reply.kind is ReplyKind.RECORD and reply.focus is not None:
        item = reply.items[0] if reply.items else None
        sources = [(reply.focus.source or "source not stated", reply.focus.url or None)]
        sources += [(name, None) for name in (item.member_sources if item else [])]
        embeds.append(record_embed(reply.focus, sources=_distinct(sources), summary_limit=FEED_SUMMARY, detail=True))
        text = ""
    elif reply.items and reply.kind in (ReplyKind.ANSWER, ReplyKind.UPDATES):
        embeds = [_item_embed(item) for item in reply.items]
        text = reply.text_without_items()
    elif reply.kind is ReplyKind.NONE_FOUND and reply.latest_before is not None:
        embeds.append(_item_embed(reply.latest_before))
    lines = [discord_markdown(text)] if text.strip() else []
    if reply.generated:
        lines.append("-# Written by the LLM from the records shown.")
    if with_suggestions and reply.suggestions and not reply.ephemeral:
        lines.append("-# Try: " + " · ".join(neutral(s) for s in reply.suggestions))
    return pack("\n".join(lines), embeds)
