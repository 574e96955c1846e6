"""Discord's message limits, and the helpers that keep any record's text inside them.

Discord refuses a whole message (HTTP 400) when one embed field is a character too long, so every
piece of record text goes through :func:`clip` or :func:`join_within` on its way into an embed, and
:func:`fit_embed` / :func:`pack` check the totals. Nothing here knows about threat records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

__all__ = [
    "AUTHOR_NAME",
    "CONTENT",
    "DESCRIPTION",
    "EMBEDS_PER_MESSAGE",
    "EMBED_TOTAL",
    "FIELDS",
    "FIELD_NAME",
    "FIELD_VALUE",
    "FOOTER",
    "THREAD_NAME",
    "TITLE",
    "OutgoingMessage",
    "clip",
    "embed_problems",
    "fit_embed",
    "join_within",
    "pack",
    "split_text",
]

TITLE = 256
DESCRIPTION = 4096
FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
FOOTER = 2048
AUTHOR_NAME = 256
#: Characters across all embeds of one message (titles, descriptions, field names and values, footers, authors).
EMBED_TOTAL = 6000
EMBEDS_PER_MESSAGE = 10
CONTENT = 2000
THREAD_NAME = 100
URL = 2048

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary when one is near, ending in "…"."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= limit * 0.7:
        cut = cut[:space]
    return cut.rstrip(" \n,;:-—") + ELLIPSIS


def join_within(items: Sequence[str], limit: int, *, sep: str = ", ", more: str = " +{n} more") -> str:
    """As many whole items as fit in ``limit`` joined by ``sep``, then "+N more" for the rest."""
    total = len(items)
    lengths = [0]
    for item in items:
        lengths.append(lengths[-1] + len(item))
    for shown in range(total, 0, -1):
        tail = more.format(n=total - shown) if shown < total else ""
        if lengths[shown] + len(sep) * (shown - 1) + len(tail) <= limit:
            return sep.join(items[:shown]) + tail
    if not items:
        return ""
    tail = more.format(n=total - 1) if total > 1 else ""
    return clip(items[0], limit - len(tail)) + tail if limit - len(tail) > 8 else clip(items[0], limit)


def embed_problems(embed: discord.Embed) -> list[str]:
    """Every limit ``embed`` breaks on its own (the per-message total is :func:`pack`'s job)."""
    problems: list[str] = []
    data: dict[str, Any] = dict(embed.to_dict())
    checks = [
        ("title", len(data.get("title", "")), TITLE),
        ("description", len(data.get("description", "")), DESCRIPTION),
        ("footer", len(data.get("footer", {}).get("text", "")), FOOTER),
        ("author", len(data.get("author", {}).get("name", "")), AUTHOR_NAME),
        ("fields", len(data.get("fields", [])), FIELDS),
        ("total", len(embed), EMBED_TOTAL),
    ]
    for number, item in enumerate(data.get("fields", [])):
        checks.append((f"field {number} name", len(item.get("name", "")), FIELD_NAME))
        checks.append((f"field {number} value", len(item.get("value", "")), FIELD_VALUE))
        if not item.get("name") or not item.get("value"):
            problems.append(f"field {number} is empty (Discord refuses empty field names and values)")
    problems += [f"{what} is {size} > {limit}" for what, size, limit in checks if size > limit]
    return problems


def fit_embed(embed: discord.Embed, budget: int = EMBED_TOTAL) -> discord.Embed:
    """Clip ``embed`` in place to every per-embed limit and to ``budget`` characters in all; returns it.

    Shortens the description first, then drops fields from the end, then clips the title: the title
    and the first facts are what a reader needs most.
    """
    if embed.title:
        embed.title = clip(embed.title, TITLE)
    if embed.description:
        embed.description = clip(embed.description, DESCRIPTION)
    fields = embed.fields[:FIELDS]
    embed.clear_fields()
    for item in fields:
        name, value = clip(item.name or "", FIELD_NAME), clip(item.value or "", FIELD_VALUE)
        if name and value:
            embed.add_field(name=name, value=value, inline=item.inline)
    if embed.footer.text:
        embed.set_footer(text=clip(embed.footer.text, FOOTER), icon_url=embed.footer.icon_url)
    if embed.author.name:
        embed.set_author(name=clip(embed.author.name, AUTHOR_NAME), url=embed.author.url)
    over = len(embed) - budget
    if over > 0 and embed.description:
        keep = max(0, len(embed.description) - over)
        embed.description = clip(embed.description, keep) if keep > 40 else None
    while len(embed) > budget and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > budget and embed.footer.text:
        embed.remove_footer()
    if len(embed) > budget and embed.title:
        embed.title = clip(embed.title, max(1, len(embed.title) - (len(embed) - budget)))
    return embed


_NEWLINE = re.compile(r"\n")


def split_text(text: str, limit: int = CONTENT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, split at line ends (then spaces) where possible."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text:
        pieces.append(text)
    return pieces


@dataclass
class OutgoingMessage:
    """One Discord message to send: content and embeds, already within every limit."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)

    def size(self) -> int:
        return sum(len(e) for e in self.embeds)

    def problems(self) -> list[str]:
        out = [f"content is {len(self.content)} > {CONTENT}"] if len(self.content) > CONTENT else []
        if len(self.embeds) > EMBEDS_PER_MESSAGE:
            out.append(f"{len(self.embeds)} embeds > {EMBEDS_PER_MESSAGE}")
        if self.size() > EMBED_TOTAL:
            out.append(f"embeds total {self.size()} > {EMBED_TOTAL}")
        for number, embed in enumerate(self.embeds):
            out += [f"embed {number}: {p}" for p in embed_problems(embed)]
        if not self.content and not self.embeds:
            out.append("empty message")
        return out


def pack(content: str, embeds: Iterable[discord.Embed] = ()) -> list[OutgoingMessage]:
    """Content and embeds as as few messages as Discord allows: text split at 2000, ≤10 embeds and ≤6000 per message.

    The embeds ride on the last text piece; those that do not fit follow in further messages.
    """
    messages = [OutgoingMessage(piece) for piece in split_text(content)]
    current = messages[-1] if messages else None
    for embed in embeds:
        fit_embed(embed)
        if current is None or len(current.embeds) >= EMBEDS_PER_MESSAGE or current.size() + len(embed) > EMBED_TOTAL:
            current = OutgoingMessage()
            messages.append(current)
        current.embeds.append(embed)
    return messages
