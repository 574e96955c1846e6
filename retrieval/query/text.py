"""The question being parsed, with every recognised phrase blanked so later passes and leftover terms skip it."""

from __future__ import annotations

import re
from collections.abc import Iterable


class _Text:
    """The question with consumed spans blanked (replaced by spaces, so offsets never shift)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.chars = list(text)

    @property
    def current(self) -> str:
        return "".join(self.chars)

    def consume(self, start: int, end: int) -> None:
        for i in range(start, end):
            self.chars[i] = " "

    def free(self, start: int, end: int) -> bool:
        return all(self.chars[i] != " " or self.original[i] == " " for i in range(start, end)) and any(
            self.chars[i] != " " for i in range(start, end)
        )

    def drop(self, pattern: re.Pattern[str]) -> None:
        """Consume every match of ``pattern``: words that mean nothing for the filters."""
        for _ in self.take(pattern):
            pass

    def take(self, pattern: re.Pattern[str]) -> Iterable[re.Match[str]]:
        """Matches of ``pattern`` in the not-yet-consumed text, each consumed as it is yielded.

        A match that overlaps consumed text is skipped and the search resumes one character later, so
        a shorter alternative inside it still gets its chance.
        """
        pos = 0
        while pos <= len(self.chars):
            m = pattern.search(self.current, pos)
            if m is None:
                return
            if m.end() > m.start() and self.free(m.start(), m.end()):
                self.consume(m.start(), m.end())
                yield m
                pos = m.end()
            else:
                pos = m.start() + 1
