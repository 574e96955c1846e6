"""The benchmark store shared by ``bench/retrieval.py`` and ``bench/slack.py``: where the data is, and building it.

About 27k real records: the 2023 news (14,974), the full KEV catalogue (1,404) and the ransomware
leak-site posts (11,039), ingested once into a data dir that later runs reuse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
MODEL_DIR = SHARED / "models" / "all-MiniLM-L6-v2" / "onnx"
SOURCES = [
    FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl",
    FIXTURES / "kev" / "known_exploited_vulnerabilities.json",
    FIXTURES / "ransomware" / "ransomwatch_posts_2024-04-23.json",
]
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "threatbot-bench-store"


def data_available() -> bool:
    return all(p.is_file() for p in SOURCES) and (MODEL_DIR / "model.onnx").is_file()


def build_store(data_dir: Path) -> None:
    """Ingest the benchmark sources into ``data_dir`` unless it already holds a store."""
    if (data_dir / "threatbot.sqlite3").is_file():
        return
    print(f"building the benchmark store in {data_dir} (one-off, ~10-20 min on 2 cores)…", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", *map(str, SOURCES), "--data-dir", str(data_dir)],
        env=os.environ | {"THREATBOT_EMBEDDING_MODEL_DIR": str(MODEL_DIR), "CI": "true"},
        check=True,
        cwd=REPO,
    )


def search_batch(data_dir: Path, questions: list[dict], env: dict[str, str], *, code: Path = REPO) -> list[dict]:
    """Ask every question through ``threatbot search --batch --json`` of the checkout at ``code``: one answer each."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as batch:
        for q in questions:
            batch.write(json.dumps({"query": q["query"], "now": q["now"], "tz": q["tz"]}) + "\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "search", "--batch", batch.name, "--json", "--data-dir", str(data_dir)],
            env=env | {"PYTHONPATH": str(code)},
            capture_output=True,
            text=True,
            check=True,
            cwd=code,
        )
    finally:
        os.unlink(batch.name)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
