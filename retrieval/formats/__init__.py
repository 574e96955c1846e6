"""Turning fetched bytes into :class:`~retrieval.records.ThreatRecord` objects.

The format is sniffed from the content, never from a file extension or a server's Content-Type
(feeds are routinely served as ``text/html`` or ``application/octet-stream``): JSON whose top level
has ``vulnerabilities`` and ``catalogVersion`` is the CISA KEV catalog, JSON with a CSAF ``document``
is a CSAF 2.0 advisory, a ``feed`` of ``entry`` objects is a ROLIE feed (its ``links`` are the
advisories to fetch), other JSON is canonical
records, line-delimited JSON is canonical JSONL, XML rooted at ``rss``/``rdf:RDF``/``feed`` is a
feed, and a web page is reported as ``"html"`` with no records so the caller can decide (extract it
as an article, or tell the user the URL is not a feed).

Problems with single items go to :attr:`ParsedSource.errors` and the rest still loads; input that
cannot be read at all raises :class:`FormatError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from retrieval.errors import ThreatbotError
from retrieval.records import ThreatRecord

__all__ = [
    "FORMATS",
    "FormatError",
    "ParsedSource",
    "decode_unicode",
    "detect_format",
    "is_probably_html",
    "item_problem",
    "parse_source",
    "sniff_encoding",
]

FORMATS = ("canonical-json", "canonical-jsonl", "rss", "atom", "kev", "csaf", "rolie", "ransomware-posts", "html")


class FormatError(ThreatbotError, ValueError):
    """The input as a whole is not something threatbot can read; the message names its origin."""


@dataclass
class ParsedSource:
    """Records read from one source, the per-item problems met on the way, and the feed's own title."""

    format: str
    records: list[ThreatRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    feed_title: str | None = None
    #: Documents an index (a ROLIE feed) points to; the ingestor fetches them through the guarded fetcher.
    links: list[str] = field(default_factory=list)
    #: Per linked document, the URL of its published checksum (``….sha512``): the ingestor verifies it.
    digests: dict[str, str] = field(default_factory=dict)


_SNIFF_BYTES = 8192
_PROLOGUE = re.compile(r"^(?:\s+|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.IGNORECASE | re.DOTALL)
_ROOT_TAG = re.compile(r"<\s*([A-Za-z][\w.:-]*)")
_HTML_DOCTYPE = re.compile(r"<!DOCTYPE\s+html", re.IGNORECASE)
_HTML_ROOTS = {"html", "head", "body", "meta", "title", "div", "script", "style", "link", "p", "table", "span", "a"}
_HTML_MARKERS = re.compile(r"<\s*(?:html|head|body)\b", re.IGNORECASE)


_FEED_ROOTS = {"rss", "rdf", "feed", "channel"}
#: Byte-order marks, longest first (the UTF-32-LE mark starts like the UTF-16-LE one).
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def sniff_encoding(content: bytes) -> tuple[str, int] | None:
    """The Unicode encoding of ``content`` and its BOM's length, from a BOM or, failing that, from the NUL
    bytes around a first ASCII character (XML 1.0 appendix F; RFC 8259 §3 for JSON). None: an
    ASCII-compatible encoding, left to the format's own rules (XML declaration, UTF-8 for JSON)."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return codec, len(bom)
    head = content[:4]
    if len(head) < 4:
        return None
    if head[:3] == b"\x00\x00\x00" and head[3]:
        return "utf-32-be", 0
    if head[0] and head[1:] == b"\x00\x00\x00":
        return "utf-32-le", 0
    if head[0] == 0 and head[1] and head[2] == 0 and head[3]:
        return "utf-16-be", 0
    if head[0] and head[1] == 0 and head[2] and head[3] == 0:
        return "utf-16-le", 0
    return None


def decode_unicode(content: bytes) -> tuple[str, str] | None:
    """``content`` decoded when it is UTF-16 or UTF-32 (with or without BOM): (text, codec); else None."""
    found = sniff_encoding(content)
    if found is None or found[0] == "utf-8":
        return None
    codec, skip = found
    return content[skip:].decode(codec, errors="replace"), codec


def _sniff_text(content: bytes) -> str:
    head = content[: _SNIFF_BYTES * 4]  # room for four bytes a character
    found = sniff_encoding(head)
    if found is not None:
        codec, skip = found
        return head[skip:].decode(codec, errors="replace")[:_SNIFF_BYTES].lstrip()
    return head[:_SNIFF_BYTES].decode("utf-8", errors="replace").lstrip()


def _root_tag(text: str) -> str | None:
    """Local name of the first element, after any XML declaration, comments and doctype ("rdf:RDF" -> "rdf")."""
    rest = text[_PROLOGUE.match(text).end() :]  # type: ignore[union-attr]  # the pattern always matches
    m = _ROOT_TAG.match(rest)
    if not m:
        return None
    name = m.group(1).lower()
    prefix, _, local = name.partition(":")
    return prefix if local == "rdf" else (local or prefix)


def is_probably_html(content: bytes) -> bool:
    """Whether ``content`` looks like a web page rather than a feed or data (an HTML doctype or root)."""
    text = _sniff_text(content)
    if not text.startswith("<"):
        return bool(_HTML_MARKERS.search(text))  # pages with junk before the markup
    root = _root_tag(text)
    if root in _FEED_ROOTS:  # an RSS document may carry an XHTML doctype (for its entities); still a feed
        return False
    if _HTML_DOCTYPE.search(text[:1024]):
        return True
    return root in _HTML_ROOTS


def detect_format(content: bytes) -> str | None:
    """The likely format family from the first bytes: "json" (JSON or JSONL), "feed", "html" or None.

    KEV versus canonical, and JSON versus JSONL, need the parsed data and are settled by :func:`parse_source`.
    """
    text = _sniff_text(content)
    if not text:
        return None
    if text[0] in "{[":
        return "json"
    if is_probably_html(content):
        return "html"
    if text[0] == "<":
        return "feed"
    return None


def parse_source(
    content: bytes,
    *,
    origin: str,
    content_type: str | None = None,
    source_name: str | None = None,
) -> ParsedSource:
    """Read ``content`` (from ``origin``, a URL or path used in messages and to resolve relative links).

    ``content_type`` is only quoted in error messages: servers mislabel feeds too often to trust it.
    ``source_name`` overrides the feed's title as the records' ``source`` (and fills canonical records
    that have none); KEV records are always ``CISA KEV``.
    """
    if not content or not content.strip():
        raise FormatError(f"{origin}: empty input")
    family = detect_format(content)
    if family == "json":
        try:
            return _parse_json(content, origin=origin, source_name=source_name)
        except RecursionError:
            raise FormatError(f"{origin}: JSON nested too deeply to be records") from None
    if family == "html":
        return ParsedSource(format="html")
    if family == "feed":
        from retrieval.formats.feeds import parse_feed

        return parse_feed(content, origin=origin, source_name=source_name)
    served = f" (served as {content_type})" if content_type else ""
    raise FormatError(f"{origin}: not JSON, JSONL, a feed or HTML{served}")


def _parse_json(content: bytes, *, origin: str, source_name: str | None) -> ParsedSource:
    from retrieval.formats import canonical, csaf, kev, ransomware

    wide = decode_unicode(content)
    if wide is not None:
        text = wide[0]
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if content.strip().count(b"\n") == 0:
                raise FormatError(f"{origin}: JSON is not valid UTF-8 ({exc})") from exc
            # JSONL: a line that is not UTF-8 costs that line, not the file
            return _checked(canonical.parse_jsonl_bytes(content, origin=origin, source_name=source_name), origin)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as whole_error:
        if "\n" not in text.strip():
            raise FormatError(f"{origin}: invalid JSON ({whole_error})") from whole_error
        parsed = canonical.parse_jsonl(text, origin=origin, source_name=source_name)
    else:
        if kev.is_kev_catalog(data):
            parsed = kev.parse_kev(data, origin=origin)
        elif csaf.is_csaf(data):
            parsed = csaf.parse_csaf(data, origin=origin)
        elif csaf.is_rolie(data):
            links, errors, digests = csaf.rolie_links(data, origin=origin)
            title = data["feed"].get("title")
            return ParsedSource(format="rolie", errors=errors, links=links, digests=digests, feed_title=title or None)
        elif ransomware.looks_like_ransomware_posts(data):
            parsed = ransomware.parse_posts(data, origin=origin)
        elif isinstance(data, dict | list):
            parsed = canonical.parse_canonical(data, origin=origin, source_name=source_name)
        else:
            raise FormatError(f"{origin}: JSON top level is a {type(data).__name__}, not records")
    return _checked(parsed, origin)


def _checked(parsed: ParsedSource, origin: str) -> ParsedSource:
    if not parsed.records and parsed.errors:
        shown = "; ".join(parsed.errors[:3])
        more = f" (and {len(parsed.errors) - 3} more)" if len(parsed.errors) > 3 else ""
        raise FormatError(f"{origin}: no valid records in {parsed.format}: {shown}{more}")
    return parsed


def item_problem(exc: BaseException) -> str:
    """One line saying why one item failed: the message of a ValueError, the type and message of anything else."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
