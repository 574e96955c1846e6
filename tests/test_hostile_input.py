"""Hostile and unlucky input (issue 14): each case ends in a clear message and loses nothing.

Edge dates, encodings, lone surrogates, bad lines, deep nesting, crashing parsers, racing writers,
a kill between SQLite and Chroma, and a way to delete a record that should never have been stored.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from retrieval.formats import FormatError, parse_source
from retrieval.records import ThreatRecord, implausible_date

NOW = datetime.now(UTC)
GOOD_DATE = (NOW - timedelta(days=1)).isoformat()


class HashEmbedder:
    """Deterministic unit vectors from a text's hash: for store bookkeeping tests, where what a vector
    means is irrelevant and loading the real model would only cost time."""

    def __init__(self) -> None:
        self.calls = 0
        self.hook = None  # called once, mid-embedding, to let "another process" write first

    def embed(self, texts, progress: bool = False) -> np.ndarray:
        self.calls += 1
        if self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            out[row] = vector / np.linalg.norm(vector)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


@pytest.fixture
def fake_store(settings):
    from retrieval.store import RecordStore

    store = RecordStore(settings, embedder=HashEmbedder())
    yield store
    store.close()


def _record(number: int, **fields) -> dict:
    return {
        "title": f"Story {number} about a vulnerability",
        "published": GOOD_DATE,
        "url": f"https://news.example/{number}",
    } | fields


# -- dates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"])
def test_an_edge_date_in_json_costs_its_record_with_a_clear_message(date: str) -> None:
    data = json.dumps([_record(1, published=date), _record(2)]).encode()
    parsed = parse_source(data, origin="records.json")
    assert [r.title for r in parsed.records] == ["Story 2 about a vulnerability"]
    assert len(parsed.errors) == 1 and "outside the plausible range 1990-01-01 to" in parsed.errors[0]
    assert "records.json item 1" in parsed.errors[0]


def test_an_edge_date_in_kev_costs_its_entry() -> None:
    entry = {"cveID": "CVE-2024-0001", "vulnerabilityName": "Bad", "dateAdded": "0001-01-01"}
    good = {"cveID": "CVE-2024-0002", "vulnerabilityName": "Good", "dateAdded": NOW.date().isoformat()}
    doc = {"catalogVersion": "1", "vulnerabilities": [entry, good, {**entry, "dateAdded": "9999-12-31"}]}
    parsed = parse_source(json.dumps(doc).encode(), origin="kev.json")
    assert [r.id for r in parsed.records] == ["kev:CVE-2024-0002"]
    assert len(parsed.errors) == 2 and all("outside the plausible range" in e for e in parsed.errors)


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("Fri, 31 Dec 9999 23:59:59 -0100", "impossible date"),  # OverflowError before
        ("2026-13-45T99:99:99Z", "impossible date"),  # became 2027-01-01 before
        ("0000-01-01T00:00:00Z", "impossible date"),  # became 2000 before
        ("Mon, 01 Jan 0001 00:00:00 GMT", "impossible date"),
        ("Thu, 01 Jan 1970 00:00:00 GMT", "outside the plausible range"),
        ("Fri, 31 Dec 2100 00:00:00 GMT", "outside the plausible range"),
    ],
)
def test_an_edge_date_in_rss_costs_its_item(date: str, message: str) -> None:
    feed = (
        '<rss version="2.0"><channel><title>T</title>'
        f"<item><title>Edge</title><link>https://e.example/a</link><pubDate>{date}</pubDate></item>"
        "<item><title>Fine</title><link>https://e.example/b</link><pubDate>Mon, 01 Dec 2025 10:00:00 GMT</pubDate></item>"
        "</channel></rss>"
    )
    parsed = parse_source(feed.encode(), origin="feed.xml")
    assert [r.title for r in parsed.records] == ["Fine"]
    assert len(parsed.errors) == 1 and "feed.xml item 1 ('Edge')" in parsed.errors[0] and message in parsed.errors[0]


def test_plausible_range_edges() -> None:
    assert implausible_date(datetime(1990, 1, 1, tzinfo=UTC)) is None
    assert implausible_date(NOW + timedelta(days=1)) is None
    assert implausible_date(NOW + timedelta(days=3)) is not None
    assert implausible_date(datetime(1989, 12, 31, tzinfo=UTC)) is not None


def test_a_stored_record_stays_readable_whatever_its_date() -> None:
    from retrieval.records import STORED

    legacy = {"title": "From an older threatbot", "published": "9999-12-31T23:59:59Z"}
    assert ThreatRecord.model_validate(legacy, context=STORED).published.year == 9999
    with pytest.raises(ValueError, match="plausible range"):
        ThreatRecord.model_validate(legacy)


# -- fields and characters -------------------------------------------------------------------------------


def test_cves_given_as_a_string_are_split_not_spelled_out() -> None:
    record = ThreatRecord.model_validate(_record(1, cves="CVE-2024-3400, cve-2024-21762;CVE-2024-3400"))
    assert record.cves == ["CVE-2024-3400", "CVE-2024-21762"]


def test_lone_surrogates_become_replacement_characters_before_storage() -> None:
    data = b'[{"title": "Bad \\ud800 title", "published": "' + GOOD_DATE.encode() + b'", "tags": ["x\\udfff"]}]'
    record = parse_source(data, origin="r.json").records[0]
    assert record.title == "Bad \ufffd title" and record.tags == ["x\ufffd"]
    record.text_for_embedding().encode("utf-8")  # what the tokenizer and SQLite get: encodable


def test_an_invalid_character_reference_costs_nothing_but_the_character() -> None:
    feed = (
        '<rss version="2.0"><channel><title>T</title>'
        "<item><title>Bad &#xD800; ref</title><link>https://e.example/a</link>"
        "<pubDate>Mon, 01 Dec 2025 10:00:00 GMT</pubDate></item>"
        "<item><title>Null &#0; ref</title><link>https://e.example/b</link>"
        "<pubDate>Mon, 01 Dec 2025 10:00:00 GMT</pubDate></item></channel></rss>"
    )
    parsed = parse_source(feed.encode(), origin="feed.xml")
    assert [r.title for r in parsed.records] == ["Bad \ufffd ref", "Null \ufffd ref"] and not parsed.errors


def test_an_invalid_utf8_line_in_jsonl_costs_that_line() -> None:
    lines = [json.dumps(_record(1)).encode(), b'{"title": "bad \xff\xfe bytes"}', json.dumps(_record(3)).encode()]
    parsed = parse_source(b"\n".join(lines), origin="r.jsonl")
    assert [r.url for r in parsed.records] == ["https://news.example/1", "https://news.example/3"]
    assert parsed.errors == ["r.jsonl line 2: not valid UTF-8 (byte 16)"]


def test_invalid_utf8_in_a_single_json_document_is_a_clear_error() -> None:
    with pytest.raises(FormatError, match="not valid UTF-8"):
        parse_source(b'{"title": "\xff"}', origin="one.json")


def test_deeply_nested_json_is_a_clear_error_not_a_recursion_crash() -> None:
    with pytest.raises(FormatError, match="nested too deeply"):
        parse_source(b"[" * 100_000 + b"]" * 100_000, origin="deep.json")
    deep_line = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    parsed = parse_source(json.dumps(_record(1)).encode() + b"\n" + deep_line, origin="deep.jsonl")
    assert len(parsed.records) == 1 and parsed.errors == ["deep.jsonl line 2: JSON nested too deeply"]


_RSS = (
    '<?xml version="1.0" encoding="{encoding}"?>\n{doctype}<rss version="2.0"><channel><title>Wide</title>'
    "<item><title>Überschrift</title><link>https://e.example/a</link>"
    "<pubDate>Mon, 01 Dec 2025 10:00:00 GMT</pubDate></item></channel></rss>"
)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"])
def test_utf16_and_utf32_feeds_with_or_without_bom_are_read(codec: str) -> None:
    content = _RSS.format(encoding=codec.split("-")[0] + "-" + codec.split("-")[1], doctype="").encode(codec)
    parsed = parse_source(content, origin="wide.xml")
    assert parsed.format == "rss" and [r.title for r in parsed.records] == ["Überschrift"]


def test_utf16_json_without_bom_is_read() -> None:
    parsed = parse_source(json.dumps([_record(1)]).encode("utf-16-le"), origin="wide.json")
    assert len(parsed.records) == 1


def test_rss_with_an_xhtml_doctype_is_a_feed_not_a_web_page() -> None:
    doctype = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
    )
    parsed = parse_source(_RSS.format(encoding="utf-8", doctype=doctype).encode(), origin="x.xml")
    assert parsed.format == "rss" and len(parsed.records) == 1


# -- ingest: every source gets a verdict -------------------------------------------------------------


def test_a_crash_in_one_source_costs_that_source_only(fake_store, tmp_path, monkeypatch) -> None:
    from retrieval import ingest as ingest_module
    from retrieval.ingest import Ingestor

    good = tmp_path / "good.json"
    good.write_text(json.dumps([_record(1), _record(2)]))
    boom = tmp_path / "boom.json"
    boom.write_text(json.dumps([_record(3)]))
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    real_parse = ingest_module.parse_source

    def parse(content, *, origin, **kwargs):
        if origin.endswith("boom.json"):
            raise RuntimeError("a bug in a parser")
        return real_parse(content, origin=origin, **kwargs)

    monkeypatch.setattr(ingest_module, "parse_source", parse)
    reports = Ingestor(fake_store).ingest_many([str(boom), str(deep), str(good)])
    assert [r.ok for r in reports] == [False, False, True]
    assert "unexpected RuntimeError: a bug in a parser" in reports[0].line()
    assert "nested too deeply" in reports[1].line()
    assert reports[2].new == 2 and fake_store.count() == 2


def test_an_enrichment_crash_stores_the_record_unenriched(fake_store, tmp_path, monkeypatch) -> None:
    from retrieval import ingest as ingest_module
    from retrieval.ingest import Ingestor

    path = tmp_path / "r.json"
    path.write_text(json.dumps([_record(1)]))
    monkeypatch.setattr(ingest_module, "enrich", lambda record, dictionary: 1 / 0)
    report = Ingestor(fake_store).ingest(str(path))
    assert report.ok and report.new == 1 and "stored without enrichment (ZeroDivisionError" in report.item_errors[0]


# -- races ---------------------------------------------------------------------------------------------


def test_two_writers_storing_the_same_records_at_once_end_with_one_copy(settings) -> None:
    """Store A embeds; meanwhile store B (another process: its own connection) stores the same records.
    Before, A then failed with ``UNIQUE constraint failed: records.id``."""
    from retrieval.store import Change, RecordStore

    records = [ThreatRecord.model_validate(_record(n)) for n in range(5)]
    first = RecordStore(settings, embedder=HashEmbedder())
    second = RecordStore(settings, embedder=HashEmbedder())
    try:
        updated = [records[0].model_copy(update={"summary": "A longer summary from the second writer"})]
        first.embedder.hook = lambda: second.upsert(updated + records[1:])  # type: ignore[attr-defined]
        report = first.upsert(records)
        assert first.count() == 5
        changes = {c.record.id: c.change for c in report.changes}
        assert changes[records[1].id] is Change.UNCHANGED  # B stored it first: A merged, nothing lost
        assert first.get(records[0].id).summary == "A longer summary from the second writer"  # B's update kept
        assert first.index.count() == 5
    finally:
        first.close()
        second.close()


# -- self-healing: SQLite and Chroma back in step ------------------------------------------------------


def test_a_kill_between_sqlite_and_chroma_heals_at_the_next_start(settings, monkeypatch) -> None:
    from retrieval.store import RecordStore

    store = RecordStore(settings, embedder=HashEmbedder())
    records = [ThreatRecord.model_validate(_record(n)) for n in range(6)]
    monkeypatch.setattr(RecordStore, "_index_pending", lambda self: 0)  # "killed" before Chroma was written
    store.upsert(records)
    assert store.db.query("SELECT count(*) FROM index_pending")[0][0] == 6
    monkeypatch.undo()
    store.close()

    again = RecordStore(settings, embedder=HashEmbedder())
    try:
        assert again.index.count() == 6  # healed on first use
        assert again.db.query("SELECT count(*) FROM index_pending")[0][0] == 0
    finally:
        again.close()


def test_records_without_vectors_are_embedded_on_the_next_ingest(fake_store, tmp_path) -> None:
    from retrieval.ingest import Ingestor

    fake_store.upsert([ThreatRecord.model_validate(_record(n)) for n in range(4)])
    with fake_store.db.transaction() as conn:  # a store that lost vectors (older threatbot, manual edits)
        conn.execute("DELETE FROM vectors")
    fake_store.index.delete([r.id for r in fake_store.iter_records()][:2])
    path = tmp_path / "more.json"
    path.write_text(json.dumps([_record(9)]))
    assert Ingestor(fake_store).ingest(str(path)).ok
    assert fake_store.db.query("SELECT count(*) FROM vectors")[0][0] == 5
    assert fake_store.index.count() == 5


def test_chroma_ids_with_no_record_are_removed(fake_store) -> None:
    fake_store.upsert([ThreatRecord.model_validate(_record(n)) for n in range(3)])
    fake_store.index.upsert(["ghost"], np.ones((1, 384), dtype=np.float32) / np.sqrt(384), [0.0], ["other"])
    repaired = fake_store.heal()
    assert repaired["removed"] == 1 and fake_store.index.count() == 3


# -- a way out: deleting a record --------------------------------------------------------------------


def test_a_poisoned_legacy_record_can_be_listed_and_deleted(tmp_path, capsys, monkeypatch) -> None:
    from bot import cli
    from bot.config import Settings
    from retrieval.store import RecordStore

    settings = Settings.from_env(tmp_path / "data")
    store = RecordStore(settings, embedder=HashEmbedder())
    store.upsert([ThreatRecord.model_validate(_record(1)), ThreatRecord.model_validate(_record(2))])
    poisoned = ThreatRecord.model_validate(_record(2)).id
    with store.db.transaction() as conn:  # as an older threatbot stored it
        data = json.loads(store.db.query("SELECT data FROM records WHERE id = ?", (poisoned,))[0]["data"])
        data["published"] = "9999-12-31T23:59:59Z"
        conn.execute(
            "UPDATE records SET published = ?, data = ? WHERE id = ?",
            (datetime(9999, 12, 31, 23, 59, tzinfo=UTC).timestamp(), json.dumps(data), poisoned),
        )
    store.close()
    monkeypatch.setattr(cli, "_store", lambda args: RecordStore(Settings.from_env(args.data_dir), HashEmbedder()))
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert cli.main(["stats", "--json", *data_dir]) == 0
    assert json.loads(capsys.readouterr().out)["newest"].startswith("9999-12-31")
    assert cli.main(["delete", poisoned, "tb:nope", *data_dir]) == 1
    captured = capsys.readouterr()
    assert f"deleted {poisoned}" in captured.out and "no record with id 'tb:nope'" in captured.err
    assert cli.main(["stats", "--json", *data_dir]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 1 and stats["vector_index"] == 1


# -- backlog decided at store time ---------------------------------------------------------------------


def test_old_records_are_marked_backlog_in_the_transaction_that_stores_them(tmp_path, monkeypatch) -> None:
    """A later source crashing (or the process dying) cannot leave stored old records unmarked."""
    from bot.cli import BacklogMarker
    from bot.config import Settings
    from bot.outbox import Outbox
    from retrieval.ingest import Ingestor
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"), embedder=HashEmbedder())
    try:
        old = tmp_path / "old.json"
        old.write_text(json.dumps([_record(n, published=(NOW - timedelta(days=400)).isoformat()) for n in range(3)]))
        fresh = tmp_path / "fresh.json"
        fresh.write_text(json.dumps([_record(10)]))
        marker = BacklogMarker(store)
        ingestor = Ingestor(store, on_stored=marker)
        assert ingestor.ingest(str(old)).new == 3
        assert ingestor.ingest(str(fresh)).new == 1
        seen = Outbox(store.db).seen_ids([r.id for r in store.iter_records()])
        assert len(seen) == 3 and marker.kept == 3  # the fresh story stays news

        def fail(changes):
            marker(changes)
            raise RuntimeError("killed mid-transaction")

        newer = tmp_path / "newer.json"
        newer.write_text(json.dumps([_record(20, published=(NOW - timedelta(days=30)).isoformat())]))
        report = Ingestor(store, on_stored=fail).ingest(str(newer))
        assert not report.ok and store.count() == 4  # rolled back together: no unmarked old record
    finally:
        store.close()
