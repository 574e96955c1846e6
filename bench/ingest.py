"""Ingest benchmark: the 14,974 news items of 2023 into an empty data dir, end to end.

Runs ``threatbot ingest`` in a child process (parse, enrich, dedupe, embed, cluster, store) and
reports records/s and the child's peak RSS. Beside it, the baseline: Chroma's stock
``ONNXMiniLM_L6_V2`` function adding a sample of the same items to a bare collection — what a
plain "chromadb + default embeddings" pipeline does on this machine.

    python bench/ingest.py [--items N] [--baseline-items N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NEWS = SHARED / "fixtures" / "news-2023" / "security_feeds_2023_entries.jsonl"
MODEL_DIR = SHARED / "models" / "all-MiniLM-L6-v2" / "onnx"

BASELINE_CODE = r"""
import json, sys, time, resource
from pathlib import Path
import chromadb
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

class StockFunction(ONNXMiniLM_L6_V2):
    DOWNLOAD_PATH = Path(sys.argv[1]).parent  # the same files Chroma would download

items = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")][: int(sys.argv[3])]
client = chromadb.PersistentClient(path=sys.argv[4])
collection = client.create_collection("bench", embedding_function=StockFunction())
started = time.perf_counter()
for start in range(0, len(items), 256):
    batch = items[start : start + 256]
    collection.add(
        ids=[str(start + i) for i in range(len(batch))],
        documents=[f"{i['title']}\n{i.get('description') or ''}" for i in batch],
    )
elapsed = time.perf_counter() - started
print(json.dumps({"records": len(items), "seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_threatbot(items: int, workdir: Path) -> dict[str, float]:
    source = NEWS
    if items < 14974:
        source = workdir / "slice.jsonl"
        with NEWS.open(encoding="utf-8") as lines, source.open("w", encoding="utf-8") as out:
            for line, _ in zip(lines, range(items), strict=False):
                out.write(line)
    env = os.environ | {"THREATBOT_EMBEDDING_MODEL_DIR": str(MODEL_DIR), "CI": "true"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(source), "--data-dir", str(workdir / "data")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stdout.strip())
    new = int(result.stdout.split("new ")[1].split(",")[0])
    return {"records": new, "seconds": elapsed, "peak_rss_mb": peak}


def run_baseline(items: int, workdir: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", BASELINE_CODE, str(MODEL_DIR), str(NEWS), str(items), str(workdir / "baseline")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=14974, help="news items to ingest (default: all)")
    parser.add_argument("--baseline-items", type=int, default=1000, help="items for Chroma's stock function")
    args = parser.parse_args()
    if not NEWS.is_file() or not (MODEL_DIR / "model.onnx").is_file():
        print("needs ../shared/fixtures/news-2023 and ../shared/models beside the repository", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_threatbot(args.items, Path(tmp))
        baseline = run_baseline(args.baseline_items, Path(tmp))
    print()
    print(f"{'pipeline':<52} {'records':>8} {'seconds':>8} {'rec/s':>7} {'peak RSS':>9}")
    for name, figures in (
        ("threatbot ingest (parse+enrich+embed+cluster+store)", ours),
        ("baseline: Chroma stock embedding fn + collection.add", baseline),
    ):
        rate = figures["records"] / figures["seconds"]
        print(
            f"{name:<52} {figures['records']:>8} {figures['seconds']:>8.1f} {rate:>7.1f} {figures['peak_rss_mb']:>6.0f} MB"
        )
    print("\ngoal: >= 40 records/s end to end, peak RSS < 1.5 GB (2-core machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
