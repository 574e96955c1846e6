"""How fast the vendor dictionary finds vendors and products in record text (enrichment's hot loop).

Run by hand (``nice -n 10 .venv/bin/python bench/vendor_matching.py``) with ``../shared`` beside the
checkout. Prints texts/s for ``VendorDictionary.find`` over the first 15,000 corpus-2025 records, and
beside it a baseline: one case-insensitive word-boundary regex search per dictionary alias, the naive
way, on a 500-record slice.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "fixtures" / "corpus-2025" / "corpus.jsonl"


def load_texts(limit: int) -> list[str]:
    texts: list[str] = []
    with CORPUS.open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            texts.append(record["title"] + "\n" + (record.get("summary") or ""))
            if len(texts) == limit:
                break
    return texts


def main() -> int:
    from retrieval.vendors import VendorDictionary

    if not CORPUS.is_file():
        print(f"needs {CORPUS}", file=sys.stderr)
        return 2
    texts = load_texts(15_000)
    started = time.perf_counter()
    vd = VendorDictionary.default()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    found = sum(len(vd.find(text)) for text in texts)
    took = time.perf_counter() - started
    print(f"dictionary load: {loaded * 1000:.0f} ms")
    print(
        f"threatbot find: {len(texts):,} texts in {took:.2f} s = {len(texts) / took:,.0f} texts/s ({found:,} matches)"
    )

    aliases = sorted(key for key in vd._by_key if key)  # every alias the trie regex is built from
    patterns = [re.compile(rf"\b{re.escape(alias)}\b", re.IGNORECASE) for alias in aliases]
    sample = texts[:500]
    started = time.perf_counter()
    naive = sum(1 for text in sample for pattern in patterns if pattern.search(text))
    took = time.perf_counter() - started
    print(
        f"baseline, one regex per alias ({len(patterns):,} aliases): {len(sample)} texts in {took:.2f} s = "
        f"{len(sample) / took:,.0f} texts/s ({naive:,} alias hits)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
