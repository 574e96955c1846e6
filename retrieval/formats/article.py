"""The readable article inside a web page, via trafilatura, and that article as a record.

Pages are untrusted input, so extraction is bounded before trafilatura sees them: at most
:data:`MAX_HTML_BYTES` of the page is read (the story is at the top; a 50 MB page is an attack or an
accident) and a page with more than :data:`MAX_ELEMENTS` elements is refused, because extraction
time grows with the element count (200,000 empty ``div`` elements take trafilatura ~40 s; real
articles have around a thousand).

Three generic corrections around trafilatura, each found on the evaluation pages and none tied to a site:

- "related stories" and "about the author" blocks (found by their heading: "Related", "Read more",
  "Notas relacionadas", "Autor", …) are removed first; trafilatura sometimes keeps them, and for
  threatbot a neighbouring headline or a bio is worse than noise, since enrichment reads CVEs and
  vendors out of the text;
- captions long enough to be sentences are kept as paragraphs (trafilatura drops every caption, and
  with them quotes and the "Figure 3: attack chain …" lines of threat reports); short ones are credits;
- the standfirst, a visible paragraph the page also declares as its description, is put back when
  trafilatura skipped it for sitting in ``<header>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import trafilatura
from lxml.html import HtmlElement

from retrieval.formats import FormatError
from retrieval.formats.feeds import shorten
from retrieval.records import ThreatRecord, utcnow

__all__ = [
    "MAX_ELEMENTS",
    "MAX_HTML_BYTES",
    "Article",
    "ArticleError",
    "article_to_record",
    "extract_article",
    "strip_site_name",
]

MAX_HTML_BYTES = 5 * 1024 * 1024
MAX_ELEMENTS = 20_000
#: Below this much text the "article" is a stub, a paywall or an error page.
MIN_TEXT_CHARS = 200
MAX_TITLE_CHARS = 200
#: Tag added to a record whose page states no date and was dated by its fetch time instead.
UNDATED_TAG = "date-unknown"

_RELATED_HEADING = re.compile(
    r"^\W*(?:related(?: (?:articles?|stories|posts|news|content|coverage|reading))?|read (?:more|next|also)|"
    r"more (?:stories|news)|you (?:may|might) also like|recommended(?: for you| stories)?|"
    r"notas relacionadas|noticias relacionadas|art[ií]culos relacionados|lee tambi[eé]n|"
    r"lesen sie auch|weitere artikel|mehr zum thema|das k[oö]nnte sie auch interessieren|"
    r"[àa] lire aussi|sur le m[eê]me sujet|articles similaires)\W*$",
    re.IGNORECASE,
)
_AUTHOR_HEADING = re.compile(
    r"^\W*(?:about the authors?|the authors?|authors?|autor(?:in|en)?|über (?:den|die) autor(?:in)?|"
    r"sobre el autor|el autor|l'auteur|(?:à|a) propos de l'auteur)\W*$",
    re.IGNORECASE,
)
_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
#: A caption at least this long is a sentence (often a quote) that belongs to the story, not a photo credit.
MIN_CAPTION_CHARS = 120
_BLOCK_CONTAINERS = {"section", "aside", "div", "nav", "ul"}


class ArticleError(FormatError):
    """No article could be read from the page (not HTML, no text, too complex)."""


@dataclass(frozen=True)
class Article:
    """What a page says, as extracted: the story's text and the metadata the page declares."""

    url: str
    title: str | None
    text: str
    published: datetime | None
    description: str | None
    author: str | None = None
    sitename: str | None = None
    language: str | None = None
    categories: list[str] = field(default_factory=list)


def extract_article(html: bytes | str, url: str) -> Article:
    """The main text and metadata of the page at ``url``; raises ArticleError when there is no article."""
    if isinstance(html, str):
        html = html.encode("utf-8")
    html = html[:MAX_HTML_BYTES]
    if not html.strip():
        raise ArticleError(f"{url}: empty page")
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ArticleError(f"{url}: not an HTML page")
    elements = sum(1 for _ in tree.iter())
    if elements > MAX_ELEMENTS:
        raise ArticleError(f"{url}: page has {elements} elements, more than the {MAX_ELEMENTS} read for an article")
    _drop_related_blocks(tree)
    _keep_long_captions(tree)
    visible_paragraphs = {" ".join(p.text_content().split()) for p in tree.iter("p")}
    # A Document with metadata (with_metadata=True); None only when nothing was found, caught below.
    document: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        deduplicate=False,
    )
    text = (getattr(document, "text", None) or "").strip()
    if len(text) < MIN_TEXT_CHARS:
        found = f"only {len(text)} characters of text" if text else "no article text"
        raise ArticleError(f"{url}: {found} found")
    description = _clean(document.description)
    if description and description in visible_paragraphs and description not in " ".join(text.split()):
        # The standfirst: shown on the page (often inside <header>, which trafilatura skips) and declared
        # by the page as its own description, so it is part of the story.
        text = f"{description}\n{text}"
    sitename = _clean(document.sitename)
    return Article(
        url=url,
        title=strip_site_name(_clean(document.title), sitename),
        text=text,
        published=_published(document.date),
        description=description,
        author=_clean(document.author),
        sitename=sitename,
        language=_clean(document.language),
        categories=[c for c in (document.categories or []) if c],
    )


def article_to_record(article: Article, url: str, source: str | None = None) -> ThreatRecord:
    """The article as a record; ``source`` defaults to the site's name, then its host.

    A page that states no date is dated by its fetch time and tagged ``date-unknown``: a record needs
    a date, and the tag lets answers say "seen on", not "published on".
    """
    fetched = utcnow()
    title = article.title or shorten(article.text.split("\n", 1)[0], MAX_TITLE_CHARS)
    tags = [] if article.published else [UNDATED_TAG]
    return ThreatRecord(
        title=shorten(title, MAX_TITLE_CHARS),
        published=article.published or fetched,
        summary=article.description or shorten(" ".join(article.text.split()), 500),
        body=article.text,
        url=url,
        source=source or article.sitename or (urlsplit(url).hostname or "").removeprefix("www."),
        tags=tags,
        fetched_at=fetched,
    )


def strip_site_name(title: str | None, sitename: str | None) -> str | None:
    """ "Story - Site" -> "Story": a headline is the same story whichever site carries it."""
    if not title or not sitename:
        return title
    separator = r"(?:\s+[-|–—·»]\s+)"
    name = r"\s+".join(re.escape(part) for part in sitename.split())
    pattern = rf"(?:{separator}{name}\s*$|^\s*{name}(?:{separator}|:\s+))"
    stripped = re.sub(pattern, "", title, flags=re.IGNORECASE)
    return stripped or title


def _drop_related_blocks(tree: HtmlElement) -> None:
    """Remove "related stories" blocks, found by their heading ("Related", "Read more", …).

    A container that opens with such a heading goes whole (unless it holds a third of the page's text:
    then it is the story itself); a heading in the middle of the story takes only itself and the list
    of links right after it.
    """
    page_chars = len(tree.text_content()) or 1
    doomed: list[HtmlElement] = []
    for heading in _headings(tree):
        label = " ".join(heading.text_content().split())
        if len(label) > 60 or not (_RELATED_HEADING.match(label) or _AUTHOR_HEADING.match(label)):
            continue
        parent = heading.getparent()
        if parent is None:
            continue
        first = next((c for c in parent.iterchildren() if isinstance(c.tag, str) and c.tag not in ("br", "hr")), None)
        if first is heading and parent.tag in _BLOCK_CONTAINERS and len(parent.text_content()) < page_chars / 3:
            doomed.append(parent)
            continue
        following = heading.getnext()
        if following is not None and following.tag in _BLOCK_CONTAINERS | {"ol"} and _link_share(following) >= 0.5:
            doomed.extend([heading, following])
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()


def _headings(tree: HtmlElement) -> list[HtmlElement]:
    """h1-h6, plus the ``<div class="header">`` and ``<span class="title">`` that templates use instead."""
    found = list(tree.iter(*_HEADING_TAGS))
    found += tree.xpath(
        "//*[self::div or self::span or self::p or self::strong]"
        "[contains(concat(' ', normalize-space(@class), ' '), ' header ') or "
        "contains(concat(' ', normalize-space(@class), ' '), ' title ')]"
    )
    return found


def _keep_long_captions(tree: HtmlElement) -> None:
    """Turn substantial figure captions into paragraphs: trafilatura drops captions with the images,
    which loses quotes and the "Figure 3: attack chain …" lines of threat reports; short ones are credits."""
    for caption in tree.iter("figcaption"):
        if len(" ".join(caption.text_content().split())) >= MIN_CAPTION_CHARS:
            figure = caption.getparent()
            caption.tag = "p"
            if figure is not None and figure.tag == "figure":
                figure.tag = "div"


def _link_share(element: HtmlElement) -> float:
    text = len(" ".join(element.text_content().split()))
    linked = sum(len(" ".join(a.text_content().split())) for a in element.iter("a"))
    return linked / text if text else 0.0


def _published(value: str | None) -> datetime | None:
    """trafilatura's date ("2020-05-19"; htmldate gives days, not times) as UTC midnight."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    value = " ".join(str(value).split())
    return value or None
