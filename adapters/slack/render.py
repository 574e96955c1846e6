"""Block Kit for threatbot: the core's replies and the feed's posts, inside Slack's limits for any record.

Every block is built with ``slack_sdk.models.blocks`` objects, which refuse a section text over 3000
characters, a header over 150, a button text over 75 or more than 25 elements in an actions block;
:func:`to_blocks` turns them into dicts (validating) and checks what they do not — at most 50
blocks per message. Lengths are budgeted per piece (title, summary, CVEs, …) so a record of any
length fits: long texts are clipped with an ellipsis, long lists say "+N more", and a list with
too many stories for full cards falls back to one compact line per story, then to "…and N more".

Record text is never trusted: it goes through :func:`adapters.slack.mrkdwn.escape`, so it cannot
mention anyone or form links; only :func:`~adapters.slack.mrkdwn.link` makes links, from http(s) URLs.

Times: a message only its asker sees (ephemeral, DM) shows times in the asker's zone (``users.info``
→ ``tz``), relative and absolute ("3 h ago · Tue 2 Jun 17:02 CEST"). A message the channel sees uses
Slack's ``<!date^…>`` token, which every viewer's client renders in *their* zone, with a UTC fallback.

Buttons carry ``"<card id>:<n>"``: the card (``adapters.slack.store``) remembers the reply, and ``n``
is the story's index in :func:`entries` of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
)

from adapters.slack.mrkdwn import clip, escape, escaped_clip, link, utf16_len
from bot.answers import ago, moment_label
from bot.delivery.base import ChannelNotice, Digest, FieldChange, IncidentPost, IncidentUpdate
from bot.errors import ThreatbotError
from bot.incidents import incident_facts
from bot.messages import Reply, ReplyItem, ReplyKind, ThreadKey
from retrieval.records import Severity, ThreatRecord

__all__ = [
    "CONTENT_KINDS",
    "Action",
    "LimitError",
    "SlackMessage",
    "Viewer",
    "action_of",
    "describe_change",
    "digest_reply",
    "entries",
    "headline_changed",
    "incident_reply",
    "parse_value",
    "render_digest",
    "render_health_notice",
    "render_incident",
    "render_reply",
    "render_update",
    "suggestion_action",
    "to_blocks",
    "update_reply",
]

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): the ones slack_sdk checks, and the one it doesn't.
MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75
OPTION_VALUE = 150
ACTIONS_ELEMENTS = 25
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 2000
#: The notification/fallback ``text`` beside the blocks (Slack truncates at 40,000; previews show far less).
FALLBACK_TEXT = 3000
#: Suggestion buttons offered under an answer.
MAX_SUGGESTIONS = 5

SEVERITY_MARK = {
    Severity.CRITICAL: "🔴",
    Severity.HIGH: "🟠",
    Severity.MEDIUM: "🟡",
    Severity.LOW: "🟢",
    Severity.UNKNOWN: "⚪",
}
#: The facts a post's headline shows: when one of these changes, the original post is edited too.
HEADLINE_FIELDS = frozenset({"severity", "exploited", "title", "kind", "cves"})


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Action(StrEnum):
    """``action_id`` of every interactive element threatbot posts."""

    DETAILS = "tb_details"
    SHARE = "tb_share"  # the whole (ephemeral) reply, to the channel
    SHARE_ITEM = "tb_share_item"  # one story, to the channel
    VOTE_UP = "tb_vote_up"
    VOTE_DOWN = "tb_vote_down"
    SUGGEST = "tb_suggest"  # a follow-up offered as a button: ``tb_suggest_<n>`` (action_ids are unique per block)
    ITEM_MENU = "tb_item_menu"  # compact layout: the story buttons in one overflow menu


#: Overflow-menu option values start with one of these letters, then ``|`` and the button value.
MENU_VERBS = {"d": Action.DETAILS, "s": Action.SHARE_ITEM, "u": Action.VOTE_UP, "n": Action.VOTE_DOWN}


class LimitError(ThreatbotError, ValueError):
    """A message would break a Slack limit slack_sdk does not check (more than 50 blocks)."""


@dataclass(frozen=True)
class Viewer:
    """Who will read a message, for its times: one person in ``zone``, or a channel (``zone`` None)."""

    now: datetime
    zone: ZoneInfo | None = None

    def when(self, moment: datetime) -> str:
        """Relative and absolute time of ``moment``, as mrkdwn."""
        if self.zone is not None:
            local = moment.astimezone(self.zone)
            return escape(
                f"{ago(moment, self.zone, self.now)} · {moment_label(moment, self.zone, self.now)} {local:%Z}"
            )
        fallback = f"{moment_label(moment, ZoneInfo('UTC'), self.now)} UTC"
        return f"<!date^{int(moment.timestamp())}^{{ago}} · {{date_short_pretty}} {{time}}|{escape(fallback)}>"


@dataclass
class SlackMessage:
    """What ``chat.postMessage`` / ``response_url`` get: notification text and blocks (dicts, validated)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def to_blocks(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Validated dicts; raises ``SlackObjectFormationError`` (slack_sdk's checks) or :class:`LimitError`.

    Besides the block count, Slack refuses (``invalid_blocks``) two interactive elements with one
    ``action_id`` in one block, which slack_sdk does not check either.
    """
    if len(blocks) > MAX_BLOCKS:
        raise LimitError(f"{len(blocks)} blocks; Slack allows {MAX_BLOCKS} per message")
    out = [block.to_dict() for block in blocks]
    for n, block in enumerate(out):
        ids = [e.get("action_id") for e in block.get("elements", []) if isinstance(e, dict) and e.get("action_id")]
        if len(ids) != len(set(ids)):
            raise LimitError(f"block {n} repeats an action_id ({ids}); Slack requires them unique per block")
    return out


def suggestion_action(number: int) -> str:
    """The ``action_id`` of the ``number``-th suggestion button (unique within its actions block)."""
    return f"{Action.SUGGEST.value}_{number}"


def action_of(action_id: str) -> Action | None:
    """The :class:`Action` a clicked element's ``action_id`` stands for (``tb_suggest_2`` → SUGGEST)."""
    try:
        return Action(action_id)
    except ValueError:
        pass
    prefix, _, number = action_id.rpartition("_")
    return Action.SUGGEST if prefix == Action.SUGGEST.value and number.isdigit() else None


def parse_value(value: str) -> tuple[str, int]:
    """``"<card>:<n>"`` → (card id, n); raises ValueError on anything else."""
    card, _, index = (value or "").partition(":")
    if not card or not index.lstrip("-").isdigit():
        raise ValueError(f"not a threatbot button value: {value!r}")
    return card, int(index)


def entries(reply: Reply) -> list[ReplyItem]:
    """The stories a reply's buttons can point at, by index: its items, then the last earlier match."""
    out = list(reply.items)
    if reply.latest_before is not None:
        out.append(reply.latest_before)
    return out


# -- pieces ----------------------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(*texts: str) -> ContextBlock:
    parts = [t for t in texts if t][:CONTEXT_ELEMENTS]
    return ContextBlock(elements=[MarkdownTextObject(text=t) for t in parts])


def _button(
    text: str,
    action: Action,
    value: str,
    *,
    style: str | None = None,
    label: str | None = None,
    action_id: str | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=clip(text, BUTTON_TEXT), emoji=True),
        action_id=action_id or action.value,
        value=value,
        style=style,
        accessibility_label=clip(label, BUTTON_TEXT) if label else None,
    )


def _mark(record: ThreatRecord) -> str:
    return SEVERITY_MARK.get(record.severity, "⚪")


def _facts(
    record: ThreatRecord, viewer: Viewer, *, severity: Severity | None = None, exploited: bool | None = None
) -> str:
    severity = severity or record.severity
    exploited = record.exploited if exploited is None else exploited
    parts = []
    if severity is not Severity.UNKNOWN:
        parts.append(f"*{severity.value.capitalize()}*")
    if exploited:
        parts.append("🔥 *exploited*")
    parts.append(escape(record.kind.value))
    parts.append(viewer.when(record.published))
    return " · ".join(parts)


def _names(values: Sequence[str], limit: int) -> str:
    """``a, b, c (+N more)`` escaped, within ``limit``."""
    shown: list[str] = []
    used = 0
    for n, value in enumerate(values):
        rest = len(values) - n
        piece = escape(value)
        tail = f" (+{rest - 1} more)" if rest > 1 else ""
        if used + utf16_len(piece) + 2 + len(tail) > limit and shown:
            return ", ".join(shown) + f" (+{rest} more)"
        if utf16_len(piece) > limit - 12:
            piece = escaped_clip(value, limit - 12)
        shown.append(piece)
        used += utf16_len(piece) + 2
    return ", ".join(shown)


def _sources(item: ReplyItem, limit: int = 300) -> str:
    names = [n for n in dict.fromkeys([item.record.source, *item.member_sources]) if n]
    if not names:
        return ""
    label = "Source" if len(names) == 1 else f"{len(names)} sources"
    return f"{label}: {_names(names, limit)}"


def _title_line(item: ReplyItem | None, record: ThreatRecord, *, label: bool = True) -> str:
    number = f"*{escape(item.label)}.* " if item is not None and label else ""
    return f"{_mark(record)} {number}*{link(record.url, record.title, limit=900)}*"


def _entity_lines(record: ThreatRecord, per_line: int = 500) -> list[str]:
    lines = []
    for name, values in (
        ("CVEs", record.cves),
        ("Vendors", record.vendors),
        ("Products", record.products),
        ("Countries", record.countries),
    ):
        if values:
            lines.append(f"*{name}:* {_names(values, per_line)}")
    return lines


def _story_text(item: ReplyItem, viewer: Viewer, *, summary: int = 500) -> str:
    """A story's card text: title link, facts, sources, summary, CVEs. At most ~2,800 units by construction."""
    record = item.record
    facts = _facts(record, viewer)
    if item.reported_after:
        facts += f" · reported after {escaped_clip(item.reported_after, 80)}"
    lines = [_title_line(item, record), facts]
    sources = _sources(item)
    if sources:
        lines.append(sources)
    if record.summary and summary:
        lines.append(escaped_clip(" ".join(record.summary.split()), summary))
    if record.cves:
        lines.append(f"*CVEs:* {_names(record.cves, 400)}")
    return "\n".join(lines)


def _story_more(record: ThreatRecord) -> str | None:
    """What "Details" adds in place: the fields a list card leaves out. At most ~2,900 units."""
    lines = []
    if record.summary and len(record.summary) > 500:
        lines.append(escaped_clip(" ".join(record.summary.split()), 900))
    if record.impact:
        lines.append(f"*Impact:* {escaped_clip(record.impact, 600)}")
    if record.mitigation:
        lines.append(f"*Mitigation:* {escaped_clip(record.mitigation, 600)}")
    lines += _entity_lines(record, per_line=150)[1:]  # CVEs are on the card already
    return "\n".join(lines) if lines else None


def _story_buttons(card: str, index: int, *, details: bool, shareable: bool) -> list[ButtonElement]:
    value = f"{card}:{index}"
    buttons = []
    if details:
        buttons.append(_button("Details", Action.DETAILS, value))
    if shareable:
        buttons.append(_button("Share to channel", Action.SHARE_ITEM, value))
    buttons.append(_button("👍", Action.VOTE_UP, value, label="Useful"))
    buttons.append(_button("👎", Action.VOTE_DOWN, value, label="Not useful"))
    return buttons


def _story_full(
    item: ReplyItem, index: int, card: str, viewer: Viewer, *, shareable: bool, expanded: bool
) -> list[Block]:
    record = item.record
    blocks: list[Block] = [_section(_story_text(item, viewer))]
    if expanded:
        more = _story_more(record)
        if more:
            blocks.append(_section(more))
    blocks.append(_context(f"id `{escaped_clip(record.id, 200)}`"))
    blocks.append(ActionsBlock(elements=_story_buttons(card, index, details=not expanded, shareable=shareable)))
    return blocks


def _story_compact(item: ReplyItem, index: int, card: str, viewer: Viewer, *, shareable: bool) -> Block:
    record = item.record
    sources = [n for n in dict.fromkeys([record.source, *item.member_sources]) if n]
    who = escaped_clip(sources[0], 80) + (f" +{len(sources) - 1}" if len(sources) > 1 else "") if sources else ""
    text = f"{_title_line(item, record)}\n{_facts(record, viewer)}" + (f" · {who}" if who else "")
    value = f"{card}:{index}"
    options = [Option(text=PlainTextObject(text="Details", emoji=True), value=f"d|{value}")]
    if shareable:
        options.append(Option(text=PlainTextObject(text="Share to channel", emoji=True), value=f"s|{value}"))
    options.append(Option(text=PlainTextObject(text="👍 Useful", emoji=True), value=f"u|{value}"))
    options.append(Option(text=PlainTextObject(text="👎 Not useful", emoji=True), value=f"n|{value}"))
    return SectionBlock(
        text=MarkdownTextObject(text=text),
        accessory=OverflowMenuElement(action_id=Action.ITEM_MENU.value, options=options),
    )


def _text_sections(text: str, *, max_sections: int = 8) -> list[Block]:
    """Plain reply text (escaped) in as few sections as fit, split at line ends."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        piece = escaped_clip(line, SECTION_TEXT)
        candidate = f"{current}\n{piece}" if current else piece
        if utf16_len(candidate) <= SECTION_TEXT:
            current = candidate
            continue
        chunks.append(current)
        current = piece
    if current.strip():
        chunks.append(current)
    if len(chunks) > max_sections:
        chunks = [*chunks[: max_sections - 1], escaped_clip("(The rest of this answer was too long for Slack.)", 200)]
    return [_section(c) for c in chunks if c.strip()]


def _fit(head: list[Block], stories: list[list[Block]], compact: list[Block], tail: list[Block]) -> list[Block]:
    """Head, stories and tail within 50 blocks: full cards if they fit, else compact lines, else fewer stories."""
    if len(head) + sum(map(len, stories)) + len(tail) <= MAX_BLOCKS:
        return [*head, *(b for story in stories for b in story), *tail]
    if len(head) + len(compact) + len(tail) <= MAX_BLOCKS:
        return [*head, *compact, *tail]
    room = max(0, MAX_BLOCKS - len(head) - len(tail) - 1)
    dropped = len(compact) - room
    note = _context(f"…and {dropped} more {'story' if dropped == 1 else 'stories'} not shown here.")
    return [*head, *compact[:room], note, *tail]


# -- replies ---------------------------------------------------------------------------------------

#: Kinds whose reply is content someone asked for (shareable, and private by default for slash commands).
CONTENT_KINDS = frozenset(
    {ReplyKind.ANSWER, ReplyKind.NONE_FOUND, ReplyKind.RECORD, ReplyKind.FIELD, ReplyKind.UPDATES}
)


def render_reply(
    reply: Reply,
    *,
    card: str,
    viewer: Viewer,
    shareable: bool = False,
    expanded: int | None = None,
    shared_by: str | None = None,
    asked_by: str | None = None,
    asked: str = "",
) -> SlackMessage:
    """A core reply as a Slack message.

    ``card`` is the id its buttons carry; ``shareable`` adds "Share to channel" (ephemeral replies);
    ``expanded`` shows that story's details in place; ``shared_by`` (a user id) and ``asked_by`` with
    ``asked`` (who ran which command, for replies posted to the channel on someone's behalf) add a
    context line.
    """
    head: list[Block] = []
    stories: list[list[Block]] = []
    compact: list[Block] = []
    tail: list[Block] = []
    listed = entries(reply)

    if reply.kind is ReplyKind.RECORD and reply.focus is not None and listed:
        head = _record_blocks(listed[0], viewer)
        tail.append(_context(f"id `{escaped_clip(listed[0].record.id, 200)}`"))
        story_actions = _story_buttons(card, 0, details=False, shareable=False)
    else:
        story_actions = []
        head = _text_sections(
            reply.text_without_items() if reply.kind in (ReplyKind.ANSWER, ReplyKind.UPDATES) else reply.text
        )
        for index, item in enumerate(listed):
            is_latest = reply.latest_before is not None and index == len(listed) - 1
            if is_latest:
                # NONE_FOUND: the text already describes the last earlier match; offer its buttons.
                tail.append(ActionsBlock(elements=_story_buttons(card, index, details=True, shareable=shareable)))
                continue
            stories.append(_story_full(item, index, card, viewer, shareable=shareable, expanded=expanded == index))
            compact.append(_story_compact(item, index, card, viewer, shareable=shareable))

    buttons = list(story_actions)
    for number, suggestion in enumerate(reply.suggestions[:MAX_SUGGESTIONS]):
        buttons.append(_button(suggestion, Action.SUGGEST, f"{card}:{number}", action_id=suggestion_action(number)))
    if shareable and reply.kind in CONTENT_KINDS:
        buttons.append(_button("Share to channel", Action.SHARE, f"{card}:0", style="primary"))
    if buttons:
        tail.append(ActionsBlock(elements=buttons[:ACTIONS_ELEMENTS]))
    notes = []
    if reply.generated:
        notes.append("Written by the LLM from the records cited; check the sources.")
    if asked_by and _USER_ID.match(asked_by):
        notes.append(f"<@{asked_by}> asked: {escaped_clip(asked, 300)}" if asked else f"Asked by <@{asked_by}>")
    if shared_by and _USER_ID.match(shared_by):
        notes.append(f"Shared by <@{shared_by}>")
    if notes:
        tail.append(_context(*notes))
    if not head and not stories:
        head = [_section(escaped_clip(reply.text or "(no answer)", SECTION_TEXT))]
    blocks = _fit(head, stories, compact, tail)
    return SlackMessage(escaped_clip(reply.text, FALLBACK_TEXT), to_blocks(blocks))


def _record_blocks(item: ReplyItem, viewer: Viewer) -> list[Block]:
    """One record in full (``show``, "tell me more"): header, facts, summary, impact, mitigation, entities."""
    record = item.record
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=clip(record.title, HEADER_TEXT), emoji=False))]
    top = [f"{_mark(record)} {_facts(record, viewer)}"]
    sources = _sources(item, limit=600)
    if sources:
        top.append(sources)
    if record.url:
        top.append(link(record.url, "Read the source", limit=1200))
    blocks.append(_section("\n".join(top)))
    if record.summary:
        blocks.append(_section(escaped_clip(record.summary, SECTION_TEXT)))
    for label, value in (("Impact", record.impact), ("Mitigation", record.mitigation)):
        if value:
            blocks.append(_section(f"*{label}:* {escaped_clip(value, SECTION_TEXT - 20)}"))
    entities = _entity_lines(record, per_line=650)
    if entities:
        blocks.append(_section("\n".join(entities)))
    return blocks


# -- feed posts ------------------------------------------------------------------------------------


def incident_reply(post: IncidentPost, channel: str) -> Reply:
    """A feed post as a one-story reply, for its card: the buttons then work like an answer's."""
    others = [m for m in post.members if m.id != post.record.id]
    item = ReplyItem("1", post.record, [m.id for m in others], [m.source for m in others])
    return Reply(
        text=post.record.title,
        thread_key=ThreadKey("slack", channel, ""),
        kind=ReplyKind.RECORD,
        items=[item],
        focus=post.record,
    )


def _incident_facts(members: Sequence[ThreatRecord], headline: ThreatRecord) -> tuple[Severity, bool]:
    """The incident's severity and exploitation, by the core's one rule (``bot.incidents``)."""
    facts = incident_facts([headline, *members])
    return facts.severity, facts.exploited


def render_incident(post: IncidentPost, *, card: str, now: datetime) -> SlackMessage:
    """A new incident for a channel: headline, facts, sources, summary, CVEs, buttons."""
    viewer = Viewer(now)
    record = post.record
    severity, exploited = _incident_facts(post.members, record)
    others = [m for m in post.members if m.id != record.id]
    item = ReplyItem("1", record, [m.id for m in others], [m.source for m in others])
    top = [
        f"{SEVERITY_MARK.get(severity, '⚪')} *{link(record.url, record.title, limit=900)}*",
        _facts(record, viewer, severity=severity, exploited=exploited),
    ]
    sources = _sources(item, limit=500)
    if sources:
        top.append(sources)
    blocks: list[Block] = [_section("\n".join(top))]
    if record.summary:
        blocks.append(_section(escaped_clip(" ".join(record.summary.split()), 1500)))
    entities = _entity_lines(record, per_line=600)
    if entities:
        blocks.append(_section("\n".join(entities)))
    queries = ", ".join(f"“{q}”" for q in post.subscriptions)
    blocks.append(
        _context(
            escaped_clip(f"Matches {queries}", 600) if queries else "",
            f"id `{escaped_clip(record.id, 200)}`",
        )
    )
    blocks.append(ActionsBlock(elements=_story_buttons(card, 0, details=True, shareable=False)))
    label = severity.value.capitalize() if severity is not Severity.UNKNOWN else "New"
    text = escaped_clip(f"{label}{' · exploited' if exploited else ''}: {record.title} — {record.source}", 400)
    return SlackMessage(text, to_blocks(blocks))


def render_health_notice(notice: ChannelNotice) -> SlackMessage:
    """The DM telling a subscriber their channel's posts were disabled (``bot.health``)."""
    channel = f"<#{notice.channel}>" if _CHANNEL_ID.match(notice.channel) else f"`{escape(notice.channel)}`"
    queries = ", ".join(f"“{escaped_clip(q, 200)}”" for _, q, _ in notice.subscriptions[:10]) or "its subscriptions"
    body = (
        f"I've stopped posting {queries} to {channel}: {escape(notice.reason)} "
        f"({notice.failures} failed attempts in a row).\n"
        f"Fix that, then say `/threat resume` in {channel} — what was waiting is posted then."
    )
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="Feed posts paused", emoji=True)),
        _section(clip(body, SECTION_TEXT)),
        _context(escaped_clip(f"ids: {', '.join(sid for sid, _, _ in notice.subscriptions[:50])}", 1000)),
    ]
    return SlackMessage(escaped_clip(notice.text(), FALLBACK_TEXT), to_blocks(blocks))


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def describe_change(change: FieldChange) -> str:
    """One change in words (mrkdwn): "severity high → *critical*", "now *exploited*"."""
    if change.field == "exploited":
        return "now *exploited*" if change.after else "no longer marked exploited"
    before = escape(str(change.before)) if change.before not in (None, "") else "unknown"
    after = escape(str(change.after)) if change.after not in (None, "") else "unknown"
    return f"{escape(change.field)} {before} → *{after}*"


def headline_changed(update: IncidentUpdate) -> bool:
    return any(c.field in HEADLINE_FIELDS for c in update.changes)


def render_update(update: IncidentUpdate, *, card: str, now: datetime) -> SlackMessage:
    """A change to a posted incident, as a reply in its thread."""
    viewer = Viewer(now)
    record = update.record
    lines = []
    if update.changes:
        lines.append("*Update:* " + "; ".join(describe_change(c) for c in update.changes))
    if update.new_source:
        lines.append(f"*New report* from {escaped_clip(record.source or 'a new source', 200)}:")
    lines.append(f"{_mark(record)} {link(record.url, record.title, limit=900)}")
    lines.append(_facts(record, viewer))
    blocks: list[Block] = [_section("\n".join(lines))]
    if update.new_source and record.summary:
        blocks.append(_section(escaped_clip(" ".join(record.summary.split()), 1200)))
    blocks.append(_context(f"id `{escaped_clip(record.id, 200)}`"))
    blocks.append(ActionsBlock(elements=_story_buttons(card, 0, details=True, shareable=False)))
    summary = "; ".join(_plain_change(c) for c in update.changes) or f"new report from {record.source}"
    return SlackMessage(escaped_clip(f"Update: {summary} — {record.title}", 400), to_blocks(blocks))


def _plain_change(change: FieldChange) -> str:
    if change.field == "exploited":
        return "now exploited" if change.after else "no longer marked exploited"
    return f"{change.field} {change.before} → {change.after}"


def render_digest(digest: Digest, *, card: str, now: datetime) -> SlackMessage:
    """Many new incidents for one channel as one message: a line per incident, within 50 blocks."""
    viewer = Viewer(now)
    count = len(digest.items)
    head: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"{count} new {'incident' if count == 1 else 'incidents'}", emoji=True))
    ]
    queries = ", ".join(f"“{q}”" for q in digest.subscriptions)
    if queries:
        head.append(_context(escaped_clip(f"Matching {queries}", 600)))
    head.append(DividerBlock())
    compact = []
    for index, post in enumerate(digest.items):
        others = [m for m in post.members if m.id != post.record.id]
        item = ReplyItem(str(index + 1), post.record, [m.id for m in others], [m.source for m in others])
        compact.append(_story_compact(item, index, card, viewer, shareable=False))
    blocks = _fit(head, [[b] for b in compact], compact, [])
    titles = "; ".join(p.record.title for p in digest.items[:5])
    return SlackMessage(escaped_clip(f"{count} new incidents: {titles}", 400), to_blocks(blocks))


def digest_reply(digest: Digest, channel: str) -> Reply:
    """A digest as a reply listing its incidents, for its card."""
    items = []
    for index, post in enumerate(digest.items):
        others = [m for m in post.members if m.id != post.record.id]
        items.append(ReplyItem(str(index + 1), post.record, [m.id for m in others], [m.source for m in others]))
    return Reply(
        text=f"{len(items)} new incidents",
        thread_key=ThreadKey("slack", channel, ""),
        kind=ReplyKind.ANSWER,
        items=items,
    )


def update_reply(update: IncidentUpdate, channel: str, thread: str) -> Reply:
    """An update as a one-story reply, for its card."""
    others = [m for m in update.members if m.id != update.record.id]
    item = ReplyItem("1", update.record, [m.id for m in others], [m.source for m in others])
    return Reply(
        text=update.record.title,
        thread_key=ThreadKey("slack", channel, thread),
        kind=ReplyKind.RECORD,
        items=[item],
        focus=update.record,
    )
