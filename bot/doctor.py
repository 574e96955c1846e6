"""``threatbot doctor``: each part of an installation checked, with a verdict and the fix.

Parts: settings, the data folder, the database and its schema version, the vector index (its count
against SQLite; a remote server's heartbeat), the embedding model (present, and its SHA-256 when it is
a known export), each configured platform's token (asked of the platform, through checks the CLI hands
in, since ``bot`` imports no chat SDK), feed sources that fail or are disabled, dead outbox rows, and
subscriptions that cannot be delivered. ``fail`` is a fault that loses or blocks work (exit 1); ``warn``
wants attention but nothing is lost yet.

Read-only: doctor opens the database read-only and never downloads the model.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from bot.config import Settings

__all__ = ["Check", "DoctorReport", "PlatformCheck", "Verdict", "run_doctor"]

#: Oldest pending delivery that is still normal (the deliverer retries with backoff up to hours).
PENDING_AGE_WARN = 3600.0


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not configured, so not checked


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


#: A platform's token check: ``(name, check)``, run only when that platform is configured.
PlatformCheck = Callable[[Settings], Check | None]


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.verdict is not Verdict.FAIL for c in self.checks)

    @property
    def faults(self) -> list[Check]:
        return [c for c in self.checks if c.verdict is Verdict.FAIL]

    def to_json(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "checks": [{**asdict(c), "verdict": c.verdict.value} for c in self.checks],
        }

    def lines(self) -> list[str]:
        marks = {Verdict.OK: "ok  ", Verdict.WARN: "WARN", Verdict.FAIL: "FAIL", Verdict.SKIP: "--  "}
        out = []
        for check in self.checks:
            out.append(f"{marks[check.verdict]} {check.name}: {check.detail}")
            if check.fix and check.verdict in (Verdict.WARN, Verdict.FAIL):
                out.append(f"     fix: {check.fix}")
        faults, warnings = len(self.faults), sum(c.verdict is Verdict.WARN for c in self.checks)
        out.append(
            "healthy" + (f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else "")
            if self.healthy
            else f"{faults} fault{'s' * (faults != 1)}" + (f", {warnings} warning(s)" if warnings else "")
        )
        return out


def run_doctor(
    settings: Settings,
    *,
    platform_checks: Sequence[PlatformCheck] = (),
    delivery_platforms: Iterable[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> DoctorReport:
    """Every check, in the order an operator would fix things. Never raises for what it finds."""
    report = DoctorReport()
    add = report.checks.append
    add(_data_folder(settings))
    database = _open_read_only(settings.database_path)
    try:
        add(_database(settings, database))
        add(_vector_index(settings, database))
        add(_model(settings))
        for check in platform_checks:
            result = _guarded(check, settings)
            if result is not None:
                add(result)
        if database is not None and _has_table(database, "delivery_sources"):
            add(_sources(database))
            add(_outbox(database, clock()))
            add(_subscriptions(database, delivery_platforms))
    finally:
        if database is not None:
            database.close()
    return report


# -- the parts ---------------------------------------------------------------------------------------


def _data_folder(settings: Settings) -> Check:
    folder = settings.data_dir
    fix = "choose a writable folder with --data-dir or THREATBOT_DATA_DIR"
    if folder.exists() and not folder.is_dir():
        return Check("data folder", Verdict.FAIL, f"{folder} is not a folder", fix)
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    if not os.access(probe, os.W_OK | os.X_OK):
        return Check("data folder", Verdict.FAIL, f"{folder} is not writable", fix)
    state = "" if folder.exists() else " (created on first use)"
    return Check("data folder", Verdict.OK, f"{folder}{state}")


def _open_read_only(path: Path) -> sqlite3.Connection | None:
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error:
        return None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def _database(settings: Settings, conn: sqlite3.Connection | None) -> Check:
    from retrieval.database import SCHEMA_VERSION
    from retrieval.record_queries import count_records

    path = settings.database_path
    if conn is None:
        if path.exists():
            return Check(
                "database",
                Verdict.FAIL,
                f"{path} cannot be opened as SQLite",
                "restore it from a backup, or move it aside and re-ingest",
            )
        return Check(
            "database", Verdict.WARN, f"no database yet at {path}", "run `threatbot ingest …` or `threatbot serve`"
        )
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        return Check(
            "database",
            Verdict.FAIL,
            f"schema v{version} is newer than this threatbot (v{SCHEMA_VERSION})",
            "upgrade threatbot to the version that wrote it",
        )
    integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    if integrity != "ok":
        return Check("database", Verdict.FAIL, f"integrity check failed: {integrity}", "restore it from a backup")
    records = count_records(conn) if _has_table(conn, "records") else 0
    if version < SCHEMA_VERSION:
        return Check(
            "database",
            Verdict.WARN,
            f"schema v{version}, {records} records; this threatbot migrates it to v{SCHEMA_VERSION} on its next write",
            "run any command that writes (e.g. `threatbot stats` after `threatbot ingest`), or just start serve",
        )
    return Check("database", Verdict.OK, f"{path}: schema v{version}, {records} records")


def _vector_index(settings: Settings, conn: sqlite3.Connection | None) -> Check:
    from retrieval.errors import ServiceUnavailable
    from retrieval.record_queries import count_vectors
    from retrieval.vector_index import COLLECTION, open_chroma_client

    where = (
        f"Chroma server {settings.chroma_url}" if settings.chroma_url else f"embedded Chroma in {settings.chroma_path}"
    )
    vectors = count_vectors(conn) if conn and _has_table(conn, "vectors") else 0
    if not settings.chroma_url and not settings.chroma_path.exists():
        if vectors:
            return Check("vector index", Verdict.FAIL, f"{where} is missing", "run `threatbot reindex`")
        return Check("vector index", Verdict.OK, f"{where}: empty (created on first ingest)")
    try:
        client = open_chroma_client(settings.chroma_url, settings.chroma_path)
        if settings.chroma_url:
            client.heartbeat()
        names = {getattr(c, "name", c) for c in client.list_collections()}
        count = client.get_collection(COLLECTION).count() if COLLECTION in names else 0
    except ServiceUnavailable as error:
        return Check(
            "vector index",
            Verdict.FAIL,
            f"the Chroma server at {settings.chroma_url} did not answer ({type(error.__cause__ or error).__name__})",
            f"start the Chroma server at {settings.chroma_url}, or unset THREATBOT_CHROMA_URL",
        )
    except Exception as error:  # a server that answers but errors, a corrupt local index
        return Check(
            "vector index",
            Verdict.FAIL,
            f"{where} failed: {type(error).__name__}: {error}",
            "check the Chroma server's logs"
            if settings.chroma_url
            else "move the chroma folder aside and run `threatbot reindex`",
        )
    if count != vectors:
        return Check(
            "vector index",
            Verdict.WARN,
            f"{where} holds {count} vectors, the database {vectors}",
            "run `threatbot reindex` (rebuilds the index from the database)",
        )
    return Check("vector index", Verdict.OK, f"{where}: {count} vectors, matching the database")


def _model(settings: Settings) -> Check:
    from retrieval.embeddings import MODEL_FILES, chroma_cache_dir, verify_model_dir

    configured = settings.embedding_model_dir
    folder = Path(configured).expanduser() if configured else chroma_cache_dir()
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing and configured:
        return Check(
            "embedding model",
            Verdict.FAIL,
            f"THREATBOT_EMBEDDING_MODEL_DIR={folder} lacks {', '.join(missing)}",
            "point THREATBOT_EMBEDDING_MODEL_DIR at the folder holding the all-MiniLM-L6-v2 ONNX export, or unset it",
        )
    if missing:
        return Check(
            "embedding model",
            Verdict.WARN,
            f"not downloaded yet ({folder})",
            "the first ingest or search downloads it (about 90 MB, once); without internet see README, "
            "'The embedding model'",
        )
    try:
        detail = verify_model_dir(folder, settings.embedding_model_sha256 or None)
    except Exception as error:  # EmbeddingModelMissing (a changed file) or an unreadable one
        return Check("embedding model", Verdict.FAIL, str(error), "replace the folder with a verified copy")
    return Check("embedding model", Verdict.OK, f"{folder}: {detail}")


def _guarded(check: PlatformCheck, settings: Settings) -> Check | None:
    try:
        return check(settings)
    except Exception as error:  # a check must never take doctor down
        return Check(getattr(check, "__name__", "platform"), Verdict.FAIL, f"{type(error).__name__}: {error}")


def _sources(conn: sqlite3.Connection) -> Check:
    from bot.sources import FAILING_AFTER

    rows = conn.execute("SELECT name, enabled, failures, last_error, disabled_reason FROM delivery_sources").fetchall()
    disabled = [r for r in rows if not r["enabled"]]
    failing = [r for r in rows if r["enabled"] and r["failures"] >= FAILING_AFTER]
    if not rows:
        return Check("sources", Verdict.WARN, "no feed sources", "add one: `threatbot sources add URL`")
    if not disabled and not failing:
        return Check("sources", Verdict.OK, f"{len(rows)} sources, none failing")
    parts = [f"{r['name']} failing ({r['failures']}x: {r['last_error'] or 'error'})" for r in failing[:5]]
    parts += [f"{r['name']} disabled ({r['disabled_reason'] or 'by an admin'})" for r in disabled[:5]]
    more = len(failing) + len(disabled) - len(parts)
    return Check(
        "sources",
        Verdict.WARN,
        f"{len(rows)} sources; " + "; ".join(parts) + (f"; and {more} more" if more > 0 else ""),
        "`threatbot sources` shows each; fix the URL, then `threatbot sources enable NAME`",
    )


def _outbox(conn: sqlite3.Connection, now: float) -> Check:
    counts = {
        r["status"]: r["n"] for r in conn.execute("SELECT status, count(*) AS n FROM delivery_outbox GROUP BY status")
    }
    dead, pending = counts.get("dead", 0), counts.get("pending", 0) + counts.get("sending", 0)
    if dead:
        last = conn.execute(
            "SELECT platform, channel, last_error FROM delivery_outbox WHERE status = 'dead' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return Check(
            "outbox",
            Verdict.FAIL,
            f"{dead} dead deliver{'y' if dead == 1 else 'ies'} (last: {last['platform']} {last['channel']}: "
            f"{last['last_error'] or 'no error recorded'}); {pending} pending",
            "fix the cause, then `threatbot deliveries --retry-dead`",
        )
    oldest = conn.execute(
        "SELECT min(created_at) FROM delivery_outbox WHERE status IN ('pending', 'sending')"
    ).fetchone()[0]
    if oldest is not None and now - float(oldest) > PENDING_AGE_WARN:
        hours = (now - float(oldest)) / 3600
        return Check(
            "outbox",
            Verdict.WARN,
            f"{pending} pending, the oldest for {hours:.1f} h",
            "is `threatbot serve` running and its platforms reachable? `threatbot deliveries` shows the errors",
        )
    return Check("outbox", Verdict.OK, f"{pending} pending, none dead")


def _subscriptions(conn: sqlite3.Connection, delivery_platforms: Iterable[str] | None) -> Check:
    rows = conn.execute("SELECT platform, channel FROM delivery_subscriptions").fetchall()
    if not rows:
        return Check("subscriptions", Verdict.OK, "none (nothing is posted to channels)")
    if _has_table(conn, "delivery_channel_health"):
        disabled = conn.execute(
            "SELECT h.platform, h.channel, h.reason, count(*) AS n FROM delivery_channel_health h"
            " JOIN delivery_subscriptions s ON s.platform = h.platform AND s.channel = h.channel"
            " WHERE h.state = 'disabled' GROUP BY h.platform, h.channel"
        ).fetchall()
        if disabled:
            count = sum(r["n"] for r in disabled)
            first = disabled[0]
            return Check(
                "subscriptions",
                Verdict.WARN,
                f"{count} of {len(rows)} subscriptions are disabled with their channel "
                f"({first['platform']} {first['channel']}: {first['reason'] or 'refused'}"
                + (f"; and {len(disabled) - 1} more channel(s)" if len(disabled) > 1 else "")
                + ")",
                "fix the channel (invite the bot, unarchive), then `threatbot resume --platform P --channel C`",
            )
    if delivery_platforms is None:
        return Check("subscriptions", Verdict.OK, f"{len(rows)} subscriptions")
    known = set(delivery_platforms)
    stranded = sorted({r["platform"] for r in rows if r["platform"] not in known})
    if stranded:
        count = sum(r["platform"] in stranded for r in rows)
        return Check(
            "subscriptions",
            Verdict.WARN,
            f"{count} of {len(rows)} subscriptions are on {', '.join(stranded)}, which is not configured: they post nothing",
            "set that platform's token (README, Configuration), or `threatbot unsubscribe ID`",
        )
    return Check("subscriptions", Verdict.OK, f"{len(rows)} subscriptions, every platform configured")
