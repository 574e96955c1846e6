"""Retrieval benchmark: labeled analyst questions through ``threatbot search --batch``.

Prints recall@5, precision@5, nDCG@10, correct-abstention rate and latency p50/p95 for
threatbot's search, beside two baselines computed on the same store in the same run:
plain dense top-10 (what a LangChain + Chroma RAG returns) and plain BM25 top-10.

The store: the 2023 news (14,974), the full KEV catalogue (1,404) and the ransomware leak posts
(11,039) — about 27k records. Built once into ``--data-dir`` (reused when present).

Labels (``bench/questions.jsonl``) say which records answer each question: a title pattern
within a date range and/or explicit ids, or ``null`` when the right answer is nothing.
Relevance is judged per incident: a result counts when its record or a cluster member is
relevant; recall counts distinct relevant incidents (clusters) among the top 5.

Definitions: precision@5 = relevant / returned among the top 5 (a question answered with
2 right results scores 1.0); for abstention questions an empty answer is correct.

    python bench/retrieval.py [--data-dir DIR] [--questions FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchstore import DEFAULT_DATA_DIR, MODEL_DIR, REPO, build_store, data_available, search_batch


class Judge:
    """Which stored records (and clusters) answer each labeled question."""

    def __init__(self, store) -> None:
        self.store = store

    def relevant_ids(self, label: dict | None) -> set[str]:
        if not label:
            return set()
        start = datetime.fromisoformat(label["from"]).replace(tzinfo=UTC)
        end = datetime.fromisoformat(label["to"]).replace(tzinfo=UTC) + timedelta(days=1)
        pattern = re.compile(label.get("title", "^$"))
        exclude = re.compile(label["exclude"]) if label.get("exclude") else None
        rows = self.store.db.query(
            "SELECT id, json_extract(data, '$.title') AS title FROM records WHERE published >= ? AND published < ?",
            (start.timestamp(), end.timestamp()),
        )
        ids = {r["id"] for r in rows if pattern.search(r["title"]) and not (exclude and exclude.search(r["title"]))}
        return ids | set(label.get("ids", []))

    def clusters(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.store.db.query(f"SELECT id, cluster_id FROM records WHERE id IN ({marks})", list(ids))
        return {r["id"]: r["cluster_id"] or r["id"] for r in rows}


def score_question(returned: list[list[str]], relevant: set[str], cluster_of: dict[str, str]) -> dict[str, float]:
    """Metrics for one answered question. ``returned``: per result, its id followed by its members' ids."""
    hits = [any(i in relevant for i in ids) for ids in returned]
    if not relevant:
        return {"abstained": float(not returned)}
    relevant_clusters = set(cluster_of.values())
    found = {cluster_of[i] for ids in returned[:5] for i in ids if i in cluster_of}
    recall = len(found) / min(5, len(relevant_clusters)) if relevant_clusters else 0.0
    top5 = hits[:5]
    precision = sum(top5) / len(top5) if top5 else 0.0
    dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits[:10]) if hit)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant_clusters))))
    return {"recall": min(1.0, recall), "precision": precision, "ndcg": dcg / ideal if ideal else 0.0}


def summarise(name: str, rows: list[dict[str, float]], latencies: list[float]) -> str:
    def mean(key: str) -> float:
        values = [r[key] for r in rows if key in r]
        return sum(values) / len(values) if values else float("nan")

    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 2 else p50
    return (
        f"{name:<34} {mean('recall'):>9.3f} {mean('precision'):>12.3f} {mean('ndcg'):>8.3f} "
        f"{mean('abstained'):>11.3f} {p50:>8.1f} {p95:>8.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--questions", type=Path, default=REPO / "bench" / "questions.jsonl")
    parser.add_argument("--verbose", action="store_true", help="print each question's results")
    args = parser.parse_args()
    if not data_available():
        print("needs ../shared/fixtures and ../shared/models beside the repository", file=sys.stderr)
        return 2
    env = os.environ | {"THREATBOT_EMBEDDING_MODEL_DIR": str(MODEL_DIR), "CI": "true"}
    os.environ.update(env)
    build_store(args.data_dir)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]

    sys.path.insert(0, str(REPO))
    from bot.config import Settings
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(args.data_dir))
    judge = Judge(store)
    answers = search_batch(args.data_dir, questions, env)

    ours, dense, bm25 = [], [], []
    ours_ms, dense_ms, bm25_ms = [], [], []
    embedder = store.embedder
    store.index.query(embedder.embed_one("warm up"), 10)  # the baselines get a warm process too
    for question, answer in zip(questions, answers, strict=True):
        relevant = judge.relevant_ids(question["relevant"])
        cluster_of = judge.clusters(relevant)
        returned = [[r["id"], *r.get("members", [])] for r in answer["results"]]
        ours.append(score_question(returned, relevant, cluster_of))
        ours_ms.append(answer["took_ms"])

        started = time.perf_counter()
        vector = embedder.embed_one(question["query"])
        dense_ids = [i for i, _ in store.index.query(vector, 10)]
        dense_ms.append((time.perf_counter() - started) * 1000)
        dense.append(score_question([[i] for i in dense_ids], relevant, cluster_of))

        started = time.perf_counter()
        words = [w for w in re.findall(r"\w+", question["query"].lower()) if len(w) > 1]
        expression = " OR ".join(f'"{w}"' for w in words)
        rows = store.db.query(
            "SELECT r.id FROM records_fts f JOIN records r ON r.rowid = f.rowid "
            "WHERE records_fts MATCH ? ORDER BY bm25(records_fts) LIMIT 10",
            (expression,),
        )
        bm25_ms.append((time.perf_counter() - started) * 1000)
        bm25.append(score_question([[r["id"]] for r in rows], relevant, cluster_of))

        if args.verbose:
            print(f"\n[{question['id']}] {question['query']!r} now={question['now']} tz={question['tz']}")
            print(f"   relevant records: {len(relevant)}; filters: {answer['filters']}")
            print(f"   ours: {ours[-1]}")
            for r in answer["results"][:5]:
                mark = "+" if any(i in relevant for i in [r["id"], *r.get("members", [])]) else "-"
                print(f"     {mark} {r['published'][:10]} {r['title'][:90]} (+{len(r.get('members', []))})")

    count = store.count()
    print(
        f"\n{len(questions)} labeled questions ({sum(1 for q in questions if not q['relevant'])} whose answer is nothing) over {count} records\n"
    )
    print(
        f"{'system':<34} {'recall@5':>9} {'precision@5':>12} {'nDCG@10':>8} {'abstention':>11} {'p50 ms':>8} {'p95 ms':>8}"
    )
    print(summarise("threatbot search", ours, ours_ms))
    print(summarise("baseline: dense top-10 (Chroma)", dense, dense_ms))
    print(summarise("baseline: BM25 top-10 (FTS5)", bm25, bm25_ms))
    print("\ngoals: recall@5 >= 0.90, precision@5 >= 0.80, abstention >= 0.90, p95 < 150 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
