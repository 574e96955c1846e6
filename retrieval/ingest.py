"""From a source (a path or a URL) to stored records: fetch, detect, parse, enrich, store.

Each source is handled on its own: a malformed feed, a 404, a server that never answers, or an
input that trips a bug (a RecursionError, a MemoryError) is reported by name and the other sources
still ingest; nothing already stored is touched by a failure, because records are only written
after a source has been read and parsed, in transactions of :data:`UPSERT_CHUNK` records.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from retrieval.enrich import enrich
from retrieval.fetch import Fetcher, FetchError
from retrieval.formats import FormatError, ParsedSource, parse_source
from retrieval.formats.article import article_to_record, extract_article
from retrieval.records import ThreatRecord
from retrieval.store import RecordChange, RecordStore, UpsertReport
from retrieval.vendors import VendorDictionary

log = logging.getLogger(__name__)

#: A local file larger than this is refused: no feed or catalogue is anywhere near it.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: New items per feed poll whose full article is fetched; the rest keep the feed's summary.
MAX_ARTICLES_PER_POLL = 25
#: Records embedded and committed together: a large file is stored in steps, so an interrupted
#: ingest keeps what it finished and memory stays flat.
UPSERT_CHUNK = 1000


@dataclass
class SourceReport:
    """What ingesting one source did: the line ``threatbot ingest`` prints for it."""

    source: str
    format: str = ""
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    not_modified: bool = False
    error: str | None = None
    item_errors: list[str] = field(default_factory=list)
    upsert: UpsertReport | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.error:
            reason = self.error.removeprefix(f"{self.source}: ")  # most errors already name the source
            return f"{self.source}: FAILED: {reason}"
        note = " (not modified)" if self.not_modified else ""
        fmt = f" [{self.format}]" if self.format else ""
        return (
            f"{self.source}{fmt}: new {self.new}, updated {self.updated}, unchanged {self.unchanged}, "
            f"failed {self.failed}{note}"
        )


def is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in {"http", "https"}


class Ingestor:
    """Turns sources into stored, enriched, clustered records."""

    def __init__(
        self,
        store: RecordStore,
        fetcher: Fetcher | None = None,
        dictionary: VendorDictionary | None = None,
        *,
        allow_private_urls: bool = False,
        on_stored: Callable[[Sequence[RecordChange]], object] | None = None,
    ) -> None:
        """``on_stored`` runs inside each write transaction with what it changed (see :meth:`RecordStore.upsert`)."""
        self.store = store
        # Private/loopback addresses are refused unless the caller's configuration allows them (only tests do).
        self.fetcher = fetcher or Fetcher(allow_private=allow_private_urls)
        self.dictionary = dictionary or VendorDictionary.default()
        self.on_stored = on_stored

    def ingest_many(self, sources: Iterable[str], *, progress: bool = False) -> list[SourceReport]:
        return [self.ingest(source, progress=progress) for source in sources]

    def ingest(
        self,
        source: str,
        *,
        source_name: str | None = None,
        full_articles: bool = False,
        progress: bool = False,
    ) -> SourceReport:
        """Ingest one source; never raises for bad input, the report says what went wrong."""
        report = SourceReport(source)
        try:
            parsed = self._read(source, report, source_name=source_name)
            if parsed is None:  # 304: the feed has not changed since the last fetch
                return report
            if parsed.links:  # an index (ROLIE): the records are in the documents it lists
                parsed = self._linked_documents(parsed)
            report.format = parsed.format
            report.item_errors = list(parsed.errors)
            report.failed = len(parsed.errors)
            records = [self._enriched(r, report) for r in parsed.records]
            if full_articles and is_url(source):
                records = self._with_full_articles(records, report)
            self._heal()
            upsert = UpsertReport()
            report.upsert = upsert  # chunks already committed stay reported if a later one fails
            for start in range(0, len(records), UPSERT_CHUNK):
                chunk = records[start : start + UPSERT_CHUNK]
                upsert.changes += self.store.upsert(chunk, progress=progress, on_stored=self.on_stored).changes
        except (FetchError, FormatError, OSError, ValueError) as error:
            report.error = str(error) or error.__class__.__name__
            log.info("ingest failed for %s: %s", source, report.error)
            return self._with_counts(report)
        except (RecursionError, MemoryError) as error:
            report.error = f"{source}: input too large or too deeply nested to process ({type(error).__name__})"
            log.warning("ingest failed for %s: %s", source, report.error)
            return self._with_counts(report)
        except Exception as error:  # a bug met on one source must not cost the others their ingest
            report.error = f"{source}: unexpected {type(error).__name__}: {error}"
            log.exception("ingest failed for %s", source)
            return self._with_counts(report)
        return self._with_counts(report)

    @staticmethod
    def _with_counts(report: SourceReport) -> SourceReport:
        upsert = report.upsert
        if upsert is None:
            return report
        report.new, report.updated, report.unchanged = upsert.new, upsert.updated, upsert.unchanged
        return report

    # -- steps ------------------------------------------------------------------------------------

    def _heal(self) -> None:
        """Embed and index what a killed earlier run left without vectors, before adding more."""
        try:
            self.store.heal()
        except Exception:  # a repair; the ingest itself can still succeed
            log.exception("could not heal the vector index before ingesting")

    def _enriched(self, record: ThreatRecord, report: SourceReport) -> ThreatRecord:
        """``record`` enriched; kept as it came if enrichment trips on it (a lost fact, not a lost record)."""
        try:
            return enrich(record, self.dictionary)
        except Exception as error:
            log.warning("enrichment failed for %s: %r", record.id, error)
            report.item_errors.append(f"{record.id}: stored without enrichment ({type(error).__name__}: {error})")
            return record

    def _read(self, source: str, report: SourceReport, *, source_name: str | None) -> ParsedSource | None:
        if is_url(source):
            state = self.store.fetch_state(source) or {}
            try:
                etag, last_modified = state.get("etag"), state.get("last_modified")
                result = self.fetcher.fetch(
                    source,
                    etag=etag if isinstance(etag, str) else None,
                    last_modified=last_modified if isinstance(last_modified, str) else None,
                )
            except FetchError as error:
                self.store.save_fetch_state(source, status=getattr(error, "status", None), error=str(error))
                raise
            if result.not_modified:
                report.not_modified = True
                self.store.save_fetch_state(source, status=304)
                return None
            parsed = self._parse(result.content, origin=source, content_type=result.content_type, name=source_name)
            if parsed.format == "html":
                parsed = self._article(result.content, result.url, source_name)
            # Remember validators only once the body was understood, so a bad body is fetched again.
            self.store.save_fetch_state(
                source, etag=result.etag, last_modified=result.last_modified, status=result.status
            )
            return parsed
        path = Path(source).expanduser()
        if not path.is_file():
            raise FormatError(f"{source}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FormatError(f"{source}: file is larger than {MAX_FILE_BYTES // 2**20} MB")
        content = path.read_bytes()
        parsed = self._parse(content, origin=source, content_type=None, name=source_name)
        if parsed.format == "html":
            raise FormatError(f"{source}: an HTML page, not a feed or record file (give its URL to ingest an article)")
        return parsed

    def _linked_documents(self, index: ParsedSource) -> ParsedSource:
        """Fetch every document an index lists, through the guarded fetcher; one bad document costs one record.

        Each document's validators are remembered, so polling the index again re-reads only what changed.
        """
        merged = ParsedSource(format=index.format, errors=list(index.errors), feed_title=index.feed_title)
        for url in index.links:
            state = self.store.fetch_state(url) or {}
            etag, modified = state.get("etag"), state.get("last_modified")
            try:
                result = self.fetcher.fetch(
                    url, etag=str(etag) if etag else None, last_modified=str(modified) if modified else None
                )
                if result.not_modified:
                    continue
                if url in index.digests:
                    self._verify_digest(url, result.content, index.digests[url])
                parsed = self._parse(result.content, origin=url, content_type=result.content_type, name=None)
            except (FetchError, FormatError) as error:
                merged.errors.append(str(error))
                continue
            if parsed.format == "html" or parsed.links:
                merged.errors.append(f"{url}: not a document ({parsed.format})")
                continue
            merged.records += parsed.records
            merged.errors += parsed.errors
            self.store.save_fetch_state(url, etag=result.etag, last_modified=result.last_modified, status=result.status)
        return merged

    def _verify_digest(self, url: str, content: bytes, digest_url: str) -> None:
        """Refuse a document whose published SHA-512 (or SHA-256) checksum does not match what was fetched."""
        published = self.fetcher.fetch(digest_url).content.decode("ascii", errors="replace").split()
        expected = published[0].lower() if published else ""
        algorithm = {128: "sha512", 64: "sha256"}.get(len(expected))
        if algorithm is None:
            raise FormatError(f"{url}: the checksum file {digest_url} holds no SHA-512 or SHA-256 digest")
        actual = hashlib.new(algorithm, content).hexdigest()
        if not hmac.compare_digest(actual, expected):
            raise FormatError(f"{url}: {algorithm} checksum mismatch with {digest_url}; document not ingested")

    @staticmethod
    def _parse(content: bytes, *, origin: str, content_type: str | None, name: str | None) -> ParsedSource:
        kwargs = {"source_name": name} if name else {}
        return parse_source(content, origin=origin, content_type=content_type, **kwargs)

    @staticmethod
    def _article(content: bytes, url: str, source_name: str | None) -> ParsedSource:
        article = extract_article(content, url)
        return ParsedSource(format="article", records=[article_to_record(article, url, source_name)], errors=[])

    def _with_full_articles(self, records: list[ThreatRecord], report: SourceReport) -> list[ThreatRecord]:
        """Fetch the article behind each new feed item so search sees the whole story, not a teaser."""
        known = self.store.get_many([r.id for r in records])
        fetched = 0
        out: list[ThreatRecord] = []
        for record in records:
            if record.id in known or not record.url or record.body or fetched >= MAX_ARTICLES_PER_POLL:
                out.append(record)
                continue
            fetched += 1
            try:
                result = self.fetcher.fetch(record.url)
                article = extract_article(result.content, result.url)
            except Exception as error:  # the feed's own text is kept, whatever the article page did
                report.item_errors.append(f"{record.url}: article not fetched: {error}")
                out.append(record)
                continue
            update: dict[str, object] = {"body": article.text}
            if not record.summary and article.description:
                update["summary"] = article.description
            out.append(self._enriched(record.model_copy(update=update), report))
        return out
