"""Killing `threatbot ingest` (issue 14): SQLite and Chroma agree after the next start, and nothing old is posted.

Real subprocesses, killed for real: at the named point between the SQLite commit and the Chroma write
(``THREATBOT_CRASH_AT=store.after_commit``, an ``os._exit`` with no cleanup), and with SIGKILL at the
moment records first appear in the database. After each kill the next start must heal the store, and
when the ingest finally completes, planning deliveries for a subscription matching every record must
post only the fresh ones: the archive was marked as backlog in the very transactions that stored it.
Also: two ingests of the same file at once end as one copy of each record.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.conftest import MODEL_DIR, REPO, needs_model

pytestmark = needs_model

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)


def _write_sources(folder) -> tuple[list[str], set[str], set[str]]:
    """Three sources: two archives of old records, then one with fresh ones. Returns paths, old ids, fresh ids."""
    paths, old, fresh = [], set(), set()
    for number, (count, when) in enumerate([(30, OLD), (30, OLD + timedelta(days=1)), (4, NOW)]):
        lines = []
        for item in range(count):
            record_id = f"kill:{number}:{item}"
            (fresh if when is NOW else old).add(record_id)
            lines.append(
                json.dumps(
                    {
                        "id": record_id,
                        "title": f"Zeroday campaign {number}-{item} hits Contoso gateways",
                        "summary": f"Attackers exploit a zeroday in Contoso gateway build {item}.",
                        "published": (when - timedelta(minutes=item)).isoformat(),
                        "url": f"https://news.example/{number}/{item}",
                    }
                )
            )
        path = folder / f"source-{number}.jsonl"
        path.write_text("\n".join(lines))
        paths.append(str(path))
    return paths, old, fresh


def _cli(*args: str, crash_at: str | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "THREATBOT_EMBEDDING_MODEL_DIR": os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR", str(MODEL_DIR)),
    }
    env.pop("THREATBOT_CRASH_AT", None)
    if crash_at:
        env["THREATBOT_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _records_in(database) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.Error:
        return 0


def _assert_consistent_after_start(data_dir) -> int:
    """Open the store as the next command would; SQLite records, SQLite vectors and Chroma must agree."""
    from bot.config import Settings
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(data_dir))
    try:
        records = store.count()
        vectors = store.db.query("SELECT count(*) FROM vectors")[0][0]
        assert store.index.count() == vectors == records  # index access heals
        assert store.db.query("SELECT count(*) FROM index_pending")[0][0] == 0
        assert set(store.index.ids()) == {r.id for r in store.iter_records()}
        return records
    finally:
        store.close()


def test_kills_at_any_point_leave_a_consistent_store_and_post_nothing_old(tmp_path) -> None:
    from bot.config import Settings
    from bot.outbox import Outbox
    from bot.poller import DeliveryPlanner
    from bot.subscriptions import Subscriptions
    from retrieval.store import RecordStore

    data_dir = tmp_path / "data"
    flags = ["--data-dir", str(data_dir)]
    paths, old, fresh = _write_sources(tmp_path)
    subscribed = _cli("subscribe", "--platform", "console", "--channel", "soc", "zeroday", *flags)
    assert subscribed.wait(120) == 0, subscribed.stderr.read()

    kills = 0
    for _ in range(2):  # each run dies right after its first SQLite commit, before Chroma hears of it
        crashed = _cli("ingest", *paths, *flags, crash_at="store.after_commit")
        assert crashed.wait(120) == 86, crashed.stderr.read()
        kills += 1
        _assert_consistent_after_start(data_dir)

    database = data_dir / "threatbot.sqlite3"
    before = _records_in(database)
    victim = _cli("ingest", *paths, *flags)  # SIGKILL the moment its first new records are committed
    deadline = time.monotonic() + 120
    while victim.poll() is None and _records_in(database) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
        kills += 1
    victim.wait(30)
    _assert_consistent_after_start(data_dir)

    final = _cli("ingest", *paths, *flags)
    assert final.wait(180) == 0, final.stderr.read()
    assert _assert_consistent_after_start(data_dir) == len(old) + len(fresh)
    assert kills >= 2

    store = RecordStore(Settings.from_env(data_dir))
    try:
        outbox = Outbox(store.db)
        planned = DeliveryPlanner(store, Subscriptions(store.db), outbox, digest_threshold=1000).plan()
        posted = {
            record_id
            for row in outbox.rows(limit=1000)
            for item in row.payload.get("items", [row.payload])
            for record_id in item.get("record_ids", [])
        }
        assert planned.posts >= 1 and posted  # fresh news still reaches the channel
        assert posted <= fresh, f"old records posted as news: {sorted(posted & old)[:5]}"
    finally:
        store.close()


def test_two_ingests_of_the_same_file_at_once_store_one_copy(tmp_path) -> None:
    data_dir = tmp_path / "data"
    paths, _, _ = _write_sources(tmp_path)
    runs = [_cli("ingest", paths[0], "--data-dir", str(data_dir)) for _ in range(2)]
    results = [(run.wait(180), run.stdout.read(), run.stderr.read()) for run in runs]
    for code, out, err in results:
        assert code == 0 and "IntegrityError" not in err and "FAILED" not in out, (out, err)
    assert _assert_consistent_after_start(data_dir) == 30
