"""A record's texts as the relevance gate reads them, made once per parsed record.

For each question the gate reads every candidate's title, summary, source and tags in three forms, and asks
whether its words say the asked kind; a long question's window holds thousands of candidates, and the same
records come up question after question (a week's news, the KEV catalogue). The store shares parsed records and
never changes one in place (:meth:`RecordStore.get_many`), so what is made from a record holds while it is the
same object: a record parsed anew (its stored text changed) gets its texts made anew.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from retrieval.aboutness import kind_fits
from retrieval.kept import Kept
from retrieval.records import Kind, ThreatRecord
from retrieval.store import PARSED_RECORDS_KEPT

#: As many as the store keeps parsed records: past those, a record is parsed anew, a new object with new texts.
GATE_TEXTS_KEPT = PARSED_RECORDS_KEPT


class GateText:
    """One record's texts: ``folded`` (how questions are typed), ``words`` (case kept), ``plain`` (lowercase)."""

    __slots__ = ("_kinds", "folded", "plain", "record", "words")

    def __init__(self, record: ThreatRecord) -> None:
        self.record = record
        tags = " ".join(record.tags)
        #: Title, summary, source and tags, lowercase, without accents or a word's inner apostrophe.
        self.folded = fold(f"{record.title}\n{record.summary}\n{record.source}\n{tags}".lower())
        #: Title and tags on the first line (tags state facts, as a title does), then the summary.
        self.words = f"{record.title} {tags}\n{record.summary}"
        #: Title and summary, lowercase: what the pool's words are counted in.
        self.plain = f"{record.title}\n{record.summary}".lower()
        self._kinds: dict[frozenset[Kind], bool] = {}

    def kind_fits(self, asked: Iterable[Kind]) -> bool:
        """:func:`~retrieval.aboutness.kind_fits` of this record for ``asked``, judged once per set of kinds."""
        key = frozenset(asked)
        fits = self._kinds.get(key)
        if fits is None:
            fits = self._kinds[key] = kind_fits(self.record.kind, key, self.words)
        return fits


class GateTexts:
    """:class:`GateText` by record id, least recently used dropped; thread-safe (chat adapters search from
    several threads)."""

    def __init__(self, size: int = GATE_TEXTS_KEPT) -> None:
        self._kept: Kept[str, GateText] = Kept(size)

    def of(self, record: ThreatRecord) -> GateText:
        kept = self._kept.get(record.id)
        if kept is not None and kept.record is record:
            return kept
        made = GateText(record)
        self._kept.put(record.id, made)
        return made


#: An apostrophe inside a word that is no contraction or possessive ("Hawai'i", "Côte d'Ivoire").
_INNER_APOSTROPHE = re.compile(r"(?<=[a-z])['\u2019\u02bb](?=[a-z])(?!(?:s|t|d|ll|re|ve|m)\b)")
#: Latin letters with accents (what NFKD can fold); curly quotes and dashes need no folding.
_ACCENTED = re.compile(r"[\u00c0-\u024f\u1e00-\u1eff]")


def fold(text: str) -> str:
    """``text`` as questions are typed: without accents ("Condé Nast" is "conde nast") or a word's inner
    apostrophe ("Hawai'i" is "hawaii")."""
    if _ACCENTED.search(text):
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    if "'" in text or "\u2019" in text or "\u02bb" in text:
        text = _INNER_APOSTROPHE.sub("", text)
    return text
