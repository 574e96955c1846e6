"""Schema migrations when several processes open the same new data folder at once (serve + ingest, two ingests)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from retrieval.database import SCHEMA_VERSION, apply_component_migrations, connect

STEPS = ["CREATE TABLE widgets (id INTEGER PRIMARY KEY)", "ALTER TABLE widgets ADD COLUMN name TEXT"]


def _open(path: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        conn = connect(path)
        apply_component_migrations(conn, "widgets", STEPS)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
        results.put(("ok", version))
    except Exception as error:  # reported to the test, which names it
        results.put(("error", f"{type(error).__name__}: {error}"))


def test_processes_opening_a_new_database_together_each_get_the_full_schema(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_number in range(3):
        path = tmp_path / f"round{round_number}" / "threatbot.sqlite3"
        start, results = context.Event(), context.Queue()
        workers = [context.Process(target=_open, args=(str(path), start, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        start.set()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert outcomes == [("ok", SCHEMA_VERSION)] * len(workers), outcomes
        conn = connect(path)
        columns = [row[1] for row in conn.execute("PRAGMA table_info(widgets)")]
        conn.close()
        assert columns == ["id", "name"]
