"""Slack's text format both ways: make record text inert in mrkdwn, read what people typed, clip to limits.

Outgoing: every piece of text that is not ours (titles, summaries, source names, answers quoting
them) goes through :func:`escape` — ``&``, ``<`` and ``>`` become entities, so nothing in a record
can form a link, a user mention (``<@U…>``) or a broadcast (``<!channel>``); a bare ``@channel``,
``@here`` or ``@everyone`` gets an invisible word joiner after the ``@`` as well. Links are built
only by :func:`link`, from http(s) URLs.

Incoming: :func:`to_plain` turns Slack's encoded message text back into what the person typed
(``<https://x|x>`` → ``https://x``, ``<#C1|ops>`` → ``#ops``, entities decoded), minus the bot's
own mention.

Slack counts lengths in UTF-16 code units (an emoji outside the BMP is two), so the clipping
helpers do too: a clipped text is within the limit however Slack counts it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = ["clip", "escape", "escaped_clip", "link", "mentions", "safe_url", "to_plain", "utf16_len"]

ELLIPSIS = "…"
_WORD_JOINER = "\u2060"
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
_ENCODED = re.compile(r"<([^<>]*)>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def utf16_len(text: str) -> int:
    """The length Slack sees: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Text made inert for mrkdwn: entities for ``& < >``, broadcasts broken. Idempotent it is not: escape once."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _WORD_JOINER + r"\1", text)


def _cut(text: str, units: int) -> str:
    """The longest prefix of ``text`` within ``units`` UTF-16 units (never half a surrogate pair)."""
    if utf16_len(text) <= units:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > units:
            break
        out.append(char)
        used += size
    return "".join(out)


def clip(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """``text`` within ``limit`` UTF-16 units, cut at a word boundary when one is near, with an ellipsis."""
    if utf16_len(text) <= limit:
        return text
    room = max(0, limit - utf16_len(ellipsis))
    head = _cut(text, room)
    space = head.rfind(" ")
    if space >= room * 0.8:
        head = head[:space]
    return head.rstrip() + ellipsis


def escaped_clip(text: str, limit: int) -> str:
    """:func:`escape` of ``text``, within ``limit`` units once escaped, never ending inside an entity."""
    escaped = escape(text)
    if utf16_len(escaped) <= limit:
        return escaped
    room = max(0, limit - utf16_len(ELLIPSIS))
    head = _PARTIAL_ENTITY.sub("", _cut(escaped, room))
    space = head.rfind(" ")
    if space >= room * 0.8:
        head = head[:space]
    if head.endswith(_WORD_JOINER):
        head = head[:-1]
    return head.rstrip() + ELLIPSIS


def safe_url(url: str) -> str | None:
    """An http(s) URL fit to sit inside ``<…|…>``, or None (other schemes are never linked)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Characters that would end or split Slack's link syntax, and whitespace, are percent-encoded;
    # ``&`` is written as the entity, as Slack writes it in the links it sends.
    return quote(url, safe="/:?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")


def link(url: str, label: str, *, limit: int = 3000) -> str:
    """``<url|label>`` with the label escaped and clipped (``limit`` counts the whole link), else the label alone."""
    target = safe_url(url)
    if target is None:
        return escaped_clip(label, limit)
    room = limit - utf16_len(target) - 3
    if room < 20:  # an absurdly long URL: keep the words, drop the link
        return escaped_clip(label, limit)
    return f"<{target}|{escaped_clip(label, room)}>"


def mentions(text: str) -> list[str]:
    """User ids mentioned in raw Slack text (``<@U123>`` and ``<@U123|name>``)."""
    return _USER_MENTION.findall(text or "")


def to_plain(text: str, *, bot_user_id: str | None = None) -> str:
    """Slack's encoded message text as the person typed it, without the bot's own mention."""

    def decode(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return " "
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            special = target[1:].split("^", 1)[0]
            if special.startswith("subteam"):
                return "@" + (label.lstrip("@") or "group")
            if special == "date":
                return label
            return "@" + special
        if target.startswith("mailto:"):
            return label or target[len("mailto:") :]
        return target  # a link: the URL is what a command (sources add) needs

    plain = _ENCODED.sub(decode, text or "")
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(plain.split())
