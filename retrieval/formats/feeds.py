"""RSS 0.9x/1.0/2.0 and Atom feeds, via feedparser, into records.

feedparser does the hard part (encodings, namespaces, HTML sanitising, relative links); this module
adds what it leaves open: dates it cannot read (``Jul 23, 2025 00:00:00-0500`` from CrowdStrike) go
through dateutil and then dateparser, a date without a zone is UTC (as everywhere in threatbot), and
an item with no usable date is reported and skipped rather than stamped "now", because a wrong date
would make old news look new.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from dateutil import parser as dateutil_parser
from dateutil import tz
from lxml import etree
from pydantic import ValidationError

from retrieval.formats import FormatError, ParsedSource, decode_unicode, item_problem
from retrieval.records import ThreatRecord

__all__ = ["html_to_text", "parse_date", "parse_feed", "shorten"]

#: Longer feed summaries (CISA puts whole advisories in <description>) move to ``body`` and are shortened.
SUMMARY_MAX_CHARS = 1000
SUMMARY_SHORT_CHARS = 500

#: Zone abbreviations dateutil does not know by itself; feeds use the North American ones.
_TZINFOS = {
    "UT": tz.UTC,
    "UTC": tz.UTC,
    "GMT": tz.UTC,
    "Z": tz.UTC,
    "EST": tz.tzoffset("EST", -5 * 3600),
    "EDT": tz.tzoffset("EDT", -4 * 3600),
    "CST": tz.tzoffset("CST", -6 * 3600),
    "CDT": tz.tzoffset("CDT", -5 * 3600),
    "MST": tz.tzoffset("MST", -7 * 3600),
    "MDT": tz.tzoffset("MDT", -6 * 3600),
    "PST": tz.tzoffset("PST", -8 * 3600),
    "PDT": tz.tzoffset("PDT", -7 * 3600),
    "CET": tz.tzoffset("CET", 1 * 3600),
    "CEST": tz.tzoffset("CEST", 2 * 3600),
    "BST": tz.tzoffset("BST", 1 * 3600),
    "IST": tz.tzoffset("IST", 5 * 3600 + 1800),
    "JST": tz.tzoffset("JST", 9 * 3600),
}
_NO_DEFAULTS = datetime(1970, 1, 1)  # so a partial date never borrows today's day or month
#: Languages dateparser tries for non-English dates; a fixed list keeps its first call fast (all ~200 take seconds).
_DATE_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "cs", "sv", "da", "fi", "ru", "uk", "tr", "ja", "zh", "ko")  # fmt: skip
#: An internal DTD subset declaring entities: the "billion laughs" shape. Real feeds never need one.
_ENTITY_DTD = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.IGNORECASE | re.DOTALL)

_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "blockquote",
    "pre", "section", "article", "header", "footer", "dd", "dt", "dl", "figure", "figcaption", "hr",
}  # fmt: skip


def parse_feed(content: bytes, *, origin: str, source_name: str | None = None) -> ParsedSource:
    """Every entry of an RSS/Atom document as a record; raises FormatError if it is not a readable feed."""
    headers = {"content-location": origin} if origin.startswith(("http://", "https://")) else {}
    content = _valid_char_refs(_without_entity_declarations(_as_utf8(content)))
    # Bytes go in as a stream: feedparser treats bare str/bytes that look like a path or URL as something
    # to open or download. Links inside summaries are dropped with the tags, so resolving them (most of
    # feedparser's time on CISA's 60 KB advisories) is skipped; entry links are still resolved.
    try:
        parsed = feedparser.parse(io.BytesIO(content), response_headers=headers, resolve_relative_uris=False)
    except RecursionError:
        raise FormatError(f"{origin}: feed nested too deeply to read") from None
    except Exception as exc:  # feedparser's fallback parser has tripped on hostile markup before
        raise FormatError(f"{origin}: not a readable feed ({type(exc).__name__}: {exc})") from exc
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not entries and (parsed.get("bozo") or not version):
        reason = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise FormatError(f"{origin}: not a readable feed ({reason})")
    if version.startswith("atom"):
        fmt = "atom"
    elif version.startswith("rss") or version == "cdf" or entries:  # entries from an unnamed dialect: RSS-like
        fmt = "rss"
    else:
        raise FormatError(f"{origin}: not an RSS or Atom feed (feedparser version {version!r})")

    feed = parsed.get("feed") or {}
    feed_title = _clean_line(feed.get("title", "")) or None
    source = source_name or feed_title or urlsplit(origin).hostname or origin
    base = feed.get("link") or origin
    result = ParsedSource(format=fmt, feed_title=feed_title)
    for index, entry in enumerate(entries, start=1):
        try:
            result.records.append(_entry_record(entry, source=source, base=base))
        except Exception as exc:  # one bad item costs one record, whatever it trips over
            title = _clean_line(str(entry.get("title", "") or ""))
            label = f" ({title[:60]!r})" if title else ""
            result.errors.append(f"{origin} item {index}{label}: {item_problem(exc)}")
    return result


_XML_DECLARED_ENCODING = re.compile(rb"^(<\?xml[^>]*?encoding\s*=\s*)([\"'])[^\"']*\2")
_CHAR_REF = re.compile(rb"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")


def _as_utf8(content: bytes) -> bytes:
    """UTF-16/UTF-32 feeds (with or without a BOM) as UTF-8, their XML declaration saying so.

    feedparser reads a BOM-less UTF-16-BE or any UTF-32 document as garbage; transcoding first means
    every later step (entity check, character references) sees plain bytes.
    """
    decoded = decode_unicode(content)
    if decoded is None:
        return content
    utf8 = decoded[0].encode("utf-8", errors="replace")
    return _XML_DECLARED_ENCODING.sub(rb"\1\2utf-8\2", utf8, count=1)


def _valid_char_refs(content: bytes) -> bytes:
    """Character references to code points XML forbids (``&#xD800;``, ``&#0;``) as U+FFFD.

    feedparser's fallback parser turns them into lone surrogates and then fails on the whole feed;
    one bad reference must cost at most its item's character, not the feed.
    """
    if b"&#" not in content:
        return content

    def fix(match: re.Match[bytes]) -> bytes:
        text = match.group(1)
        value = int(text[1:], 16) if text[:1] in (b"x", b"X") else int(text)
        if (
            value in (0x9, 0xA, 0xD)
            or 0x20 <= value <= 0xD7FF
            or 0xE000 <= value <= 0xFFFD
            or 0x10000 <= value <= 0x10FFFF
        ):
            return match.group(0)
        return b"&#xFFFD;"

    return _CHAR_REF.sub(fix, content)


def _without_entity_declarations(content: bytes) -> bytes:
    """Drop a DOCTYPE that declares entities: expat would expand them (stopping only at its amplification
    limit, after seconds of work), and the only feeds that declare entities are attacks."""
    head = content[:65536]
    if b"<!ENTITY" not in head.upper():
        return content
    return _ENTITY_DTD.sub(b"", head, count=1) + content[65536:]


def _entry_record(entry: Any, *, source: str, base: str) -> ThreatRecord:
    title = _entry_title(entry)
    if not title:
        raise ValueError("no title")
    published = _entry_date(entry, ("published", "updated", "created"))
    if published is None:
        raw = dict.get(entry, "published") or dict.get(entry, "updated")
        raise ValueError(f"no usable date (got {raw!r})" if raw else "no date")
    updated = _entry_date(entry, ("updated",))

    summary = html_to_text(entry.get("summary", ""))
    body_parts = [c.get("value", "") for c in entry.get("content") or [] if c.get("value")]
    body = html_to_text("\n".join(body_parts), keep_paragraphs=True) if body_parts else None
    if body and " ".join(body.split()) == summary:
        body = body if len(summary) > SUMMARY_MAX_CHARS else None  # Atom copies content into summary
    if len(summary) > SUMMARY_MAX_CHARS:
        body = body or html_to_text(entry.get("summary", ""), keep_paragraphs=True)
        summary = shorten(summary, SUMMARY_SHORT_CHARS)

    link = entry.get("link") or ""
    if not link and entry.get("guidislink") is not False and str(entry.get("id", "")).startswith("http"):
        link = entry["id"]
    tags = [t.get("term") or t.get("label") or "" for t in entry.get("tags") or []]
    try:
        return ThreatRecord(
            title=title,
            published=published,
            updated_at=updated if updated and updated != published else None,
            summary=summary,
            body=body or None,
            url=urljoin(base, link) if link else "",
            source=source,
            tags=[html_to_text(t) for t in tags if t.strip()],
        )
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc


def _entry_title(entry: Any) -> str:
    title = entry.get("title", "") or ""
    detail = entry.get("title_detail") or {}
    if "html" in (detail.get("type") or "") or "<" in title:
        return html_to_text(title)
    return _clean_line(title)


def _entry_date(entry: Any, keys: tuple[str, ...]) -> datetime | None:
    for key in keys:
        # dict.get, not entry.get: feedparser's own lookup maps a missing "updated" onto "published".
        raw = dict.get(entry, key)
        if not raw:
            continue
        value = _strict_date(str(raw))
        if value is not None:
            return value
        parsed = dict.get(entry, f"{key}_parsed")  # converted to UTC by feedparser, for forms dateutil lacks
        if parsed:
            year, month, day, hour, minute, second = parsed[:6]
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        value = parse_date(raw)
        if value is not None:
            return value
    return None


def _strict_date(raw: str) -> datetime | None:
    """``raw`` read by dateutil alone; raises ValueError for a date with impossible parts.

    feedparser normalises what it cannot represent ("2026-13-45T99:99:99Z" becomes 2027-01-01, year
    0000 becomes 2000), which would give a record a made-up date; dateutil refuses them instead.
    None when dateutil does not know the form at all (feedparser's reading is then used).
    """
    text = " ".join(raw.split())
    if not text or not any(ch.isdigit() for ch in text):
        return None
    try:
        value = dateutil_parser.parse(text, tzinfos=_TZINFOS, default=_NO_DEFAULTS)
    except OverflowError:
        raise ValueError(f"impossible date {raw[:60]!r}") from None
    except ValueError as exc:
        if str(exc).startswith("Unknown string format") or "does not contain a date" in str(exc):
            return None
        raise ValueError(f"impossible date {raw[:60]!r} ({exc})") from None
    if value.year >= 1000 and _ZERO_LED_YEAR.search(text):  # dateutil reads year "0001" as 2001
        raise ValueError(f"impossible date {raw[:60]!r} (year {_ZERO_LED_YEAR.search(text).group(0)})")  # type: ignore[union-attr]
    return _as_utc(value, raw)


#: A four-digit year below 1000 ("0001"), not a zone offset ("-0100") or part of a longer number.
_ZERO_LED_YEAR = re.compile(r"(?<![+\-:\d])0\d{3}(?!\d)")


def _as_utc(value: datetime, raw: str) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):  # "Fri, 31 Dec 9999 23:59:59 -0100" is in year 10000 in UTC
        raise ValueError(f"impossible date {raw[:60]!r}") from None


def parse_date(raw: str) -> datetime | None:
    """A feed date string as an aware UTC datetime; no zone means UTC. None when it is not a date.

    dateutil reads nearly every English form feeds use; dateparser (slower, imported on demand)
    catches other languages ("24 juillet 2025").
    """
    raw = " ".join(str(raw).split())
    if not raw or not any(ch.isdigit() for ch in raw):
        return None
    value: datetime | None
    try:
        value = dateutil_parser.parse(raw, tzinfos=_TZINFOS, default=_NO_DEFAULTS)
    except OverflowError:
        return None
    except ValueError as exc:
        if not str(exc).startswith("Unknown string format"):
            return None  # a real date with an impossible value ("Feb 30"): no guessing
        import dateparser

        try:
            value = dateparser.parse(raw, languages=list(_DATE_LANGUAGES), settings={"RETURN_AS_TIMEZONE_AWARE": False})
        except (ValueError, OverflowError):
            return None
    if value is None:
        return None
    try:
        return _as_utc(value, raw)
    except ValueError:
        return None


def html_to_text(fragment: str, *, keep_paragraphs: bool = False) -> str:
    """Visible text of an HTML fragment: tags removed, entities decoded, scripts and styles dropped.

    Block elements become line breaks so paragraphs do not run together ("Summary" + "Note" stays two
    words); with ``keep_paragraphs`` those breaks survive, otherwise all whitespace is collapsed.
    """
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment and "&" not in fragment:
        return _clean_line(fragment) if not keep_paragraphs else _clean_paragraphs(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return _clean_line(re.sub(r"<[^>]*>", " ", fragment))
    for element in root.iter("script", "style", "noscript", "template"):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    text = root.text_content()
    return _clean_paragraphs(text) if keep_paragraphs else _clean_line(text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _clean_line(text: str) -> str:
    return " ".join(text.split())


def _clean_paragraphs(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)
