"""Text from feeds made safe to print on a terminal.

Ingested text is untrusted: an ESC sequence in a headline can recolour, retitle or clear an
analyst's terminal (or hide text), and a bidi override (U+202E) can make a URL read backwards.
Every control character except tab and newline, and every bidi embedding/override/isolate
mark, is shown as U+FFFD instead, so the reader sees that something was there.
"""

from __future__ import annotations

import re

__all__ = ["terminal_safe"]

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with terminal control sequences and bidi controls replaced by U+FFFD."""
    return _UNSAFE.sub("\ufffd", text)
