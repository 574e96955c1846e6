"""Scale: a 100k-record store from the real corpora, its ingest memory and its search latency.

The records are the evaluation store's (``bench/evaluate.py``: corpus-2025 + news-2023, ~34k), replicated
with dates shifted back by whole years per copy, new ids (``<id>~r<k>``) and distinct URLs, so every
copy is a new record to the store (deduplication by id/URL does not fold it) and clusters stay per copy.

What is reused, and why: a copy's text is identical to its original's, so its embedding is too; the
copies take their originals' vectors (``ReusedEmbeddings``) instead of running MiniLM 66k more times
(hours on two shared cores). Everything else is the real path:

1. **fill**: copies are written with ``RecordStore.load_prepared`` (SQLite, FTS, CVE index, Chroma; no
   dedupe or clustering: copies are new by construction and join their originals' cluster copies) in
   chunks of 1,000 until the store holds ``--target - --slice`` records.
2. **ingest**: one more slice of ``--slice`` records goes through ``Ingestor.ingest`` from a canonical
   JSONL file (parse, enrich, upsert) in a fresh process, twice: into an empty store and into the full
   one. Records/s and peak RSS of both are printed: ingest memory must not grow with the store's size.
3. **search**: a fresh process answers the evaluation questions (old + held-out sets) twice over the
   full store — as asked (most have a time window) and with every window removed — and prints p50/p95
   and its own peak RSS.

    nice -n 10 python bench/scale.py --source /tmp/threatbot-eval-store --data-dir /tmp/threatbot-scale

Again over the filled store: ``--skip-fill`` (the slice an earlier run ingested is taken out and ingested
again, so the store stays at ``--target``), plus ``--skip-ingest`` to measure search alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODEL_DIR = REPO.parent / "shared" / "models" / "all-MiniLM-L6-v2" / "onnx"
QUESTION_SETS = [REPO / "bench" / "questions.jsonl", REPO / "bench" / "heldout.jsonl"]
#: Figures measured before this issue's changes on a corpus-2025 x5 store (95k records), for comparison.
BASELINE = {
    "ingest_rps": 61.0,
    "ingest_peak_rss_mb": 2200.0,
    "search_p50_ms": 20.0,
    "search_p95_windowed_ms": 100.0,
    "search_p95_unwindowed_ms": 180.0,
    "search_rss_mb": 450.0,
}


class ReusedEmbeddings:
    """An embedder that returns a stored vector for a text it has seen, and counts what it had to compute."""

    def __init__(self, known: dict[str, object], fallback) -> None:
        self.known = known
        self.fallback = fallback
        self.computed = 0

    def embed(self, texts, progress: bool = False):
        import numpy as np

        missing = [t for t in texts if t not in self.known]
        if missing:
            self.computed += len(missing)
            for text, vector in zip(missing, self.fallback.embed(missing), strict=True):
                self.known[text] = vector
        return np.stack([self.known[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)

    def embed_one(self, text: str):
        return self.fallback.embed_one(text)


def _open(data_dir: Path, embedder=None):
    from retrieval.store import RecordStore, StoreConfig

    return RecordStore(StoreConfig(data_dir, embedding_model_dir=str(MODEL_DIR)), embedder=embedder)


def _base(source: Path):
    """The source store's records (with their cluster ids) and a text → vector map."""
    import numpy as np

    from retrieval.records import ThreatRecord

    store = _open(source)
    records: list[ThreatRecord] = []
    vectors: dict[str, np.ndarray] = {}
    for record in store.iter_records(batch=2000):
        records.append(record)
    for start in range(0, len(records), 2000):
        chunk = records[start : start + 2000]
        found = store.vectors_for([r.id for r in chunk])
        for r in chunk:
            if r.id in found:
                vectors[r.text_for_embedding()] = found[r.id]
    store.close()
    return records, vectors


def _copy(record, k: int, *, keep_cluster: bool = False, shift_years: int | None = None):
    """Replica ``k`` of a record: dates shifted back ``k`` years (364 days, so weekdays stay), new id and URL.

    ``keep_cluster``: the copy joins the copy of its original's cluster (for bulk fills that skip clustering).
    """
    shift = timedelta(days=364 * (k if shift_years is None else shift_years))
    separator = "&" if "?" in record.url else "?"
    cluster = f"{record.cluster_id or record.id}~r{k}" if keep_cluster else None
    return record.model_copy(
        update={
            "id": f"{record.id}~r{k}",
            "url": f"{record.url}{separator}replica={k}" if record.url else "",
            "published": record.published - shift,
            "cluster_id": cluster,
            "fetched_at": None,
            "updated_at": None,
        }
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- phases, each in its own process so its peak RSS is its own -------------------------------------------------------


def phase_fill(args: argparse.Namespace) -> dict[str, object]:
    records, vectors = _base(args.source)
    embedder = ReusedEmbeddings(vectors, _open(args.source).embedder)
    store = _open(args.data_dir, embedder)
    have = store.count()
    goal = args.target - args.slice
    started, written, k = time.perf_counter(), 0, have // max(len(records), 1)
    rss_track: list[tuple[int, float]] = []
    while have + written < goal:
        batch = [_copy(r, k, keep_cluster=True) for r in records[: goal - have - written]]
        for start in range(0, len(batch), 1000):
            chunk = batch[start : start + 1000]
            # Copies are new by construction and their clusters are their originals': written in bulk.
            # The full ingest path (dedupe, clustering, enrichment) is measured in the ingest phase.
            store.load_prepared(chunk, embedder.embed([r.text_for_embedding() for r in chunk]))
            written += len(chunk)
            if written % 10_000 < 1000:
                rss_track.append((have + written, _current_rss_mb()))
                print(f"  fill: {have + written} records, RSS {rss_track[-1][1]:.0f} MB", flush=True)
        k += 1
    seconds = time.perf_counter() - started
    return {
        "records": store.count(),
        "written": written,
        "seconds": round(seconds, 1),
        "rps": round(written / seconds, 1) if seconds else None,
        "peak_rss_mb": round(_rss_mb()),
        "embeddings_computed": embedder.computed,
    }


def phase_ingest(args: argparse.Namespace) -> dict[str, object]:
    from retrieval.ingest import Ingestor

    records, vectors = _base(args.source)
    # New ids and URLs, original dates: ingest refuses dates far outside the plausible range.
    slice_records = [_copy(r, 99, shift_years=0) for r in records[: args.slice]]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
        for r in slice_records:
            out.write(json.dumps(r.to_json_dict()) + "\n")
    slice_ids = [r.id for r in slice_records]
    del slice_records, records
    embedder = ReusedEmbeddings(vectors, _open(args.source).embedder)
    store = _open(args.data_dir, embedder)
    # A store an earlier run filled holds this slice already, and ingesting it again would measure nothing
    # (every record unchanged): it is taken out first, so every run measures the same ingest.
    removed = len(store.delete(slice_ids))
    before = store.count()
    rss_before = _current_rss_mb()
    started = time.perf_counter()
    try:
        report = Ingestor(store).ingest(out.name)
    finally:
        os.unlink(out.name)
    seconds = time.perf_counter() - started
    if report.error:
        raise SystemExit(f"slice ingest failed: {report.error}")
    return {
        "store_before": before,
        "removed_first": removed,
        "new": report.new,
        "failed": report.failed,
        "seconds": round(seconds, 1),
        "rps": round(report.new / seconds, 1) if seconds else None,
        "rss_before_mb": round(rss_before),
        "peak_rss_mb": round(_rss_mb()),
        "embeddings_computed": embedder.computed,
    }


def phase_search(args: argparse.Namespace) -> dict[str, object]:
    from datetime import datetime

    from retrieval.query import parse_query
    from retrieval.search import Searcher

    store = _open(args.data_dir)
    searcher = Searcher(store)
    searcher.warm_up()
    questions = [
        json.loads(line)
        for path in QUESTION_SETS
        if path.is_file()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    timings: dict[str, list[float]] = {"windowed": [], "unwindowed": []}
    for q in questions:
        now = datetime.fromisoformat(q["now"].replace("Z", "+00:00"))
        query = parse_query(q["query"], now=now, tz=q["tz"], dictionary=searcher.dictionary)
        variants = [("windowed", query)] if query.window is not None else []
        variants.append(("unwindowed", dataclasses.replace(query, window=None)))
        for name, variant in variants:
            started = time.perf_counter()
            searcher.run(variant, limit=10)
            timings[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, object] = {"records": store.count(), "peak_rss_mb": round(_rss_mb())}
    for name, values in timings.items():
        values.sort()
        out[name] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p95_ms": round(statistics.quantiles(values, n=20, method="inclusive")[18], 1),
        }
    return out


PHASES = {"fill": phase_fill, "ingest": phase_ingest, "search": phase_search}


def _run_phase(name: str, args: argparse.Namespace, data_dir: Path) -> dict:
    command = [sys.executable, __file__, "--phase", name, "--source", str(args.source), "--data-dir", str(data_dir)]
    command += ["--target", str(args.target), "--slice", str(args.slice)]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"CI": "true"}, cwd=REPO)
    sys.stderr.write(result.stderr[-3000:] if result.returncode else "")
    for line in result.stdout.splitlines():
        if line.startswith("  "):
            print(line, flush=True)
    if result.returncode:
        raise SystemExit(f"phase {name} failed")
    return json.loads(result.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path(tempfile.gettempdir()) / "threatbot-eval-store")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "threatbot-scale")
    parser.add_argument("--target", type=int, default=100_000)
    parser.add_argument("--slice", type=int, default=5_000, help="records ingested through the full path")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--skip-fill", action="store_true", help="reuse a store an earlier run filled")
    parser.add_argument(
        "--skip-ingest", action="store_true", help="measure search only (over a store an earlier run filled)"
    )
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)), flush=True)
        return 0
    if not (args.source / "threatbot.sqlite3").is_file():
        print(f"needs the evaluation store in {args.source} (python bench/evaluate.py builds it)", file=sys.stderr)
        return 2
    print(f"scale bench: {args.target} records from {args.source} (copies reuse their originals' vectors)\n")
    if not args.skip_fill:
        print(f"fill    {_run_phase('fill', args, args.data_dir)}")
    rows: list[tuple[str, object, float | None]] = []
    if not args.skip_ingest:
        with tempfile.TemporaryDirectory() as empty:
            small = _run_phase("ingest", args, Path(empty))
        print(f"ingest into an empty store: {small}")
        large = _run_phase("ingest", args, args.data_dir)
        print(f"ingest into the full store: {large}")
        rows += [
            ("ingest records/s (full path, slice)", large["rps"], BASELINE["ingest_rps"]),
            ("ingest peak RSS MB, empty store", small["peak_rss_mb"], None),
            (
                f"ingest peak RSS MB, {large['store_before']}-record store",
                large["peak_rss_mb"],
                BASELINE["ingest_peak_rss_mb"],
            ),
        ]
    search = _run_phase("search", args, args.data_dir)
    print(f"search  {search}\n")
    rows += [
        ("search p50 ms, windowed", search["windowed"]["p50_ms"], BASELINE["search_p50_ms"]),
        ("search p95 ms, windowed", search["windowed"]["p95_ms"], BASELINE["search_p95_windowed_ms"]),
        ("search p50 ms, no window", search["unwindowed"]["p50_ms"], None),
        ("search p95 ms, no window", search["unwindowed"]["p95_ms"], BASELINE["search_p95_unwindowed_ms"]),
        ("search process peak RSS MB", search["peak_rss_mb"], BASELINE["search_rss_mb"]),
    ]
    print(f"{'figure':<44} {'now':>10} {'baseline':>10}")
    for name, value, baseline in rows:
        print(f"{name:<44} {value!s:>10} {baseline if baseline is not None else '-'!s:>10}")
    print("\ntargets at 100k: search p95 <= 100 ms windowed, <= 150 ms without; ingest peak RSS <= 1 GB, flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
