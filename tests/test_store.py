"""The record store: deduplication, merging, clustering on real news, schema versions, Chroma server."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval.records import Kind, Severity, ThreatRecord, canonical_url
from tests.conftest import FIXTURES, needs_fixtures


def _record(**fields) -> ThreatRecord:
    base = {"title": "Exchange Online outage delays mail", "published": datetime(2026, 6, 2, 17, 2, tzinfo=UTC)}
    return ThreatRecord(**(base | fields))


# -- identity -------------------------------------------------------------------------------------


def test_canonical_url_strips_tracking_and_noise():
    a = "https://www.zdnet.com/article/foo/?utm_source=rss&utm_medium=x#ftag=RSSbaffb68"
    b = "http://zdnet.com/article/foo"
    assert canonical_url(a) == canonical_url(b) == "https://zdnet.com/article/foo"
    assert canonical_url("https://example.com/a?id=7&utm_campaign=z") == "https://example.com/a?id=7"


def test_missing_id_is_derived_from_url_else_source_and_title():
    by_url = _record(url="https://example.com/a?utm_source=feed")
    assert by_url.id == _record(url="https://example.com/a", title="other title").id
    by_title = _record(source="BleepingComputer")
    assert by_title.id == _record(source="bleepingcomputer").id != _record(source="SecurityWeek").id


def test_record_validation_rejects_missing_title_and_normalises_fields():
    with pytest.raises(ValueError, match="title"):
        ThreatRecord(title="   ", published=datetime(2026, 1, 1, tzinfo=UTC))
    record = ThreatRecord(
        title="x",
        published="2025-07-23T00:00:00",
        severity="Moderate",
        kind="OUTAGE",
        cves=["cve-2024-1", "CVE-2024-1"],
    )
    assert record.published.tzinfo is not None
    assert (record.severity, record.kind, record.cves) == (Severity.MEDIUM, Kind.OUTAGE, ["CVE-2024-1"])


# -- upsert ---------------------------------------------------------------------------------------


def test_same_url_is_one_record_and_reingest_changes_nothing(store):
    first = _record(url="https://www.bleepingcomputer.com/news/x/?utm_source=rss", source="BleepingComputer")
    same_page = _record(url="http://bleepingcomputer.com/news/x", id="other-id", summary="Mail flow delayed.")
    report = store.upsert([first])
    assert (report.new, report.updated) == (1, 0)
    report = store.upsert([same_page])
    assert (report.new, report.updated, report.unchanged) == (0, 1, 0)
    assert store.count() == 1
    stored = store.get(first.id)
    assert stored.summary == "Mail flow delayed." and stored.source == "BleepingComputer"
    report = store.upsert([first, same_page])
    assert (report.new, report.updated, report.unchanged) == (0, 0, 1)
    assert store.index.count() == 1


def test_an_update_never_erases_or_weakens_what_was_known(store):
    store.upsert([_record(id="r1", summary="Full summary.", severity="high", exploited=True, vendors=["Microsoft"])])
    store.upsert([_record(id="r1", summary="", severity="unknown", exploited=False, vendors=["Exchange"])])
    stored = store.get("r1")
    assert stored.summary == "Full summary."
    assert stored.severity is Severity.HIGH and stored.exploited
    assert stored.vendors == ["Microsoft", "Exchange"]


def test_text_index_and_cve_index_follow_updates(store):
    store.upsert([_record(id="r1", summary="first words", cves=["CVE-2024-0001"])])
    store.upsert([_record(id="r1", summary="second words", cves=["CVE-2024-0002"])])
    rows = store.db.query("SELECT rowid FROM records_fts WHERE records_fts MATCH 'second'")
    assert len(rows) == 1
    assert not store.db.query("SELECT rowid FROM records_fts WHERE records_fts MATCH 'first'")
    cves = {r[0] for r in store.db.query("SELECT cve FROM record_cves")}
    assert cves == {"CVE-2024-0001", "CVE-2024-0002"}  # the update unions the lists


# -- clusters on real news ------------------------------------------------------------------------


def _news_between(first_day: str, last_day: str) -> list[ThreatRecord]:
    from retrieval.formats.link_items import link_item_to_record

    path = FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl"
    records = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            if first_day <= item["date_published"][:10] <= last_day:
                records.append(link_item_to_record(item))
    return records


def _cluster_of(store, title_start: str) -> str:
    rows = store.db.query(
        "SELECT cluster_id FROM records WHERE json_extract(data, '$.title') LIKE ?", (title_start + "%",)
    )
    assert len(rows) >= 1, title_start
    return rows[0][0]


@needs_fixtures
def test_outlets_reporting_one_incident_share_a_cluster(store):
    records = _news_between("2023-10-30", "2023-11-01")
    store.upsert(records)
    confluence = _cluster_of(store, "Atlassian Warns of New Critical Confluence")
    assert _cluster_of(store, "Atlassian warns of critical Confluence flaw") == confluence
    assert _cluster_of(store, "Critical Atlassian Confluence flaw can lead") == confluence
    canada = _cluster_of(store, "Canada Bans WeChat and Kaspersky on Government")
    assert _cluster_of(store, "Canada bans WeChat and Kaspersky products on govt") == canada
    citrix = _cluster_of(store, "Mass Exploitation of ‘Citrix Bleed’")
    assert _cluster_of(store, "Hackers use Citrix Bleed flaw") == citrix
    # Different incidents, same day, same kind of story: kept apart.
    assert len({confluence, canada, citrix, _cluster_of(store, "Attackers Exploiting Critical F5 BIG-IP")}) == 4
    members = store.cluster_members(confluence)
    assert {m.source for m in members} >= {"The Hacker News", "BleepingComputer", "Security Affairs"}
    # Most stories stand alone: clustering must not glue a day's news together.
    clusters = store.db.query("SELECT count(DISTINCT cluster_id) FROM records")[0][0]
    assert clusters > 0.75 * store.count()


@needs_fixtures
def test_a_kev_entry_joins_the_news_about_its_cve(store):
    news = _record(
        id="news-f5",
        title="Threat actors actively exploit F5 BIG-IP flaws CVE-2023-46747 and CVE-2023-46748",
        published=datetime(2023, 11, 1, 17, tzinfo=UTC),
        cves=["CVE-2023-46747", "CVE-2023-46748"],
        source="Security Affairs",
    )
    roundup = _record(
        id="roundup",
        title="Patch roundup",
        published=datetime(2023, 11, 1, 18, tzinfo=UTC),
        cves=["CVE-2023-46747", "CVE-2023-1", "CVE-2023-2", "CVE-2023-3"],
    )
    kev = _record(
        id="kev:CVE-2023-46747",
        title="F5 BIG-IP Configuration Utility Authentication Bypass Vulnerability",
        published=datetime(2023, 11, 2, tzinfo=UTC),
        cves=["CVE-2023-46747"],
        source="CISA KEV",
    )
    store.upsert([news, roundup])
    store.upsert([kev])
    assert store.get("kev:CVE-2023-46747").cluster_id == "news-f5"
    assert store.get("roundup").cluster_id == "roundup"  # four CVEs: a round-up links nothing


# -- schema ---------------------------------------------------------------------------------------


def test_schema_is_versioned_and_a_newer_file_is_refused(tmp_path):
    from retrieval.database import SCHEMA_VERSION, SchemaTooNew, apply_component_migrations, connect

    path = tmp_path / "db.sqlite3"
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert apply_component_migrations(conn, "example", ["CREATE TABLE example (x INTEGER)"]) == 1
    assert apply_component_migrations(conn, "example", ["CREATE TABLE example (x INTEGER)"]) == 1  # idempotent
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew):
        connect(path)
    plain = sqlite3.connect(path)
    assert plain.execute("SELECT count(*) FROM records").fetchone()[0] == 0  # untouched
    plain.close()


# -- Chroma server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    # The venv's own CLI first: `.venv/bin/pytest` runs without the venv on PATH.
    beside_python = Path(sys.executable).with_name("chroma")
    chroma = str(beside_python) if beside_python.is_file() else shutil.which("chroma")
    if chroma is None:
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("chroma run did not start listening within 30 s")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_the_same_store_works_against_a_chroma_server(tmp_path, chroma_server, store):
    from dataclasses import replace

    from retrieval.store import RecordStore

    server_store = RecordStore(replace(store.config, data_dir=tmp_path / "server-data", chroma_url=chroma_server))
    outage = _record(id="exo", summary="Mail flow delayed for customers in North America and Germany.")
    other = _record(id="crypto", title="Crypto exchange hacked, $40M in tokens stolen")
    server_store.upsert([outage, other])
    assert server_store.index.count() == 2
    vector = server_store.embedder.embed_one("email delivery problems in Exchange Online")
    hits = server_store.index.query(vector, 2)
    assert hits[0][0] == "exo" and hits[0][1] > hits[1][1]
    assert server_store.reindex() == 2
    assert server_store.index.count() == 2
    server_store.close()


def test_load_prepared_writes_known_records_with_their_vectors_and_clusters(store):
    """Bulk loads (benchmark copies, restores) skip dedupe and clustering but stay searchable everywhere."""
    from retrieval.store import RecordFilter

    records = [
        _record(id=f"bulk-{n}", title=f"Bulk story {n}", url=f"https://example.com/{n}", cluster_id="bulk-0")
        for n in range(3)
    ]
    vectors = list(store.embedder.embed([r.text_for_embedding() for r in records]))
    store.load_prepared(records, vectors)
    assert store.count() == 3
    assert {r.id for r in store.cluster_members("bulk-0")} == {"bulk-0", "bulk-1", "bulk-2"}
    assert set(store.vectors_for(["bulk-1"])) == {"bulk-1"}
    assert store.index.count() == 3
    rows = store.candidate_rows(RecordFilter(end=time.time() + 1e9, text='"bulk"'))
    assert {r["id"] for r in rows} == {"bulk-0", "bulk-1", "bulk-2"}
    with pytest.raises(ValueError):
        store.load_prepared(records[:1], [])


def test_kept_vectors_follow_the_file_through_this_and_other_connections(store, settings):
    """Search keeps the vectors it read; a record re-embedded here or by another process is read anew."""
    from retrieval.store import RecordStore

    store.upsert([_record(id="r1", url="https://example.com/r1")])
    rowid = store.db.query("SELECT rowid FROM records WHERE id = 'r1'")[0][0]

    def stored() -> bytes:
        return store.db.query("SELECT vector FROM vectors WHERE record_rowid = ?", (rowid,))[0][0]

    first = store.vectors_by_rowid([rowid])[rowid]
    assert first.tobytes() == stored() and store.vectors_by_rowid([rowid])[rowid] is first  # kept, not read again
    store.upsert([_record(id="r1", url="https://example.com/r1", title="Ransomware gang leaks hospital records")])
    second = store.vectors_by_rowid([rowid])[rowid]
    assert second.tobytes() == stored() != first.tobytes()
    other = RecordStore(settings)  # another connection: what another process writes
    try:
        other.upsert([_record(id="r1", url="https://example.com/r1", title="Critical Fortinet VPN flaw exploited")])
    finally:
        other.close()
    third = store.vectors_by_rowid([rowid])[rowid]
    assert third.tobytes() == stored() != second.tobytes()
