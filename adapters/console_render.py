"""Replies as a terminal shows them: the core writes Slack-style ``*bold*`` and ``_italic_``; a terminal
gets real bold, italics, underlined links, dim ids and hints, and a pipe or ``NO_COLOR`` gets plain text
without the markers. Never the raw asterisks.

Ingested text is untrusted: control characters (an ESC starting a terminal sequence of a feed's own,
say) are dropped before any styling is added, so only this module's sequences reach the terminal.
"""

from __future__ import annotations

import os
import re
from typing import TextIO

BOLD, NO_BOLD = "\x1b[1m", "\x1b[22m"
ITALIC, NO_ITALIC = "\x1b[3m", "\x1b[23m"
UNDERLINE, NO_UNDERLINE = "\x1b[4m", "\x1b[24m"
DIM, NO_DIM = "\x1b[2m", "\x1b[22m"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SLACK_LINK = re.compile(r"<(https?://[^|>\s]+)\|([^>]+)>")
_URL = re.compile(r"https?://[^\s<>]+[^\s<>.,;:!?)\]'\"]")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")


def wants_style(stream: TextIO) -> bool:
    """Styling for an interactive terminal that has not opted out (``NO_COLOR``, ``TERM=dumb``)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def clean(text: str) -> str:
    """``text`` without control characters (newlines and tabs stay)."""
    return _CONTROL.sub("", text)


def render(text: str, *, styled: bool) -> str:
    """The core's reply text for a terminal (``styled``) or a pipe (plain)."""
    text = _SLACK_LINK.sub(r"\2 (\1)", clean(text))
    out: list[str] = []
    position = 0
    for match in _URL.finditer(text):  # links are left alone by the emphasis rules: URLs hold _ and *
        out.append(_emphasis(text[position : match.start()], styled))
        out.append(f"{UNDERLINE}{match.group(0)}{NO_UNDERLINE}" if styled else match.group(0))
        position = match.end()
    out.append(_emphasis(text[position:], styled))
    return "".join(out)


def dim(text: str, *, styled: bool) -> str:
    """Secondary text (hints, provenance notes)."""
    return f"{DIM}{render(text, styled=styled)}{NO_DIM}" if styled else render(text, styled=False)


def _emphasis(text: str, styled: bool) -> str:
    text = _CODE.sub(lambda m: f"{DIM}{m.group(1)}{NO_DIM}" if styled else m.group(1), text)
    text = _BOLD.sub(lambda m: f"{BOLD}{m.group(1)}{NO_BOLD}" if styled else m.group(1), text)
    return _ITALIC.sub(lambda m: f"{ITALIC}{m.group(1)}{NO_ITALIC}" if styled else m.group(1), text)
