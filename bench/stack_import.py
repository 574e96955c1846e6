"""How long ``threatbot stack import`` takes: the largest fixture SBOM and a synthetic 10,000-component one.

Run by hand (``nice -n 10 .venv/bin/python bench/stack_import.py``). The baseline is the issue's
promise: an SBOM of 10,000 components imports "in a few seconds" (taken as 5 s). Each figure is the
best of ``--repeat`` runs into a fresh database (read + parse + resolve + one transaction).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SBOM = REPO.parent / "shared" / "fixtures" / "sbom"
BASELINE_SECONDS = 5.0


def synthetic_sbom(path: Path, count: int) -> None:
    """``count`` components shaped like the fixtures' (Maven and npm purls, some CPEs), all distinct."""
    real = []
    for fixture in sorted(SBOM.glob("*.cdx.json")):
        real += json.loads(fixture.read_text()).get("components", [])
    components = []
    for n in range(count):
        base = real[n % len(real)]
        version = f"{n // len(real)}.{n % 97}.{n % 13}"
        component = {"type": "library", "name": f"{base['name']}-{n // len(real)}", "version": version}
        if base.get("group"):
            component["group"] = base["group"]
        if base.get("purl"):
            purl = base["purl"].split("@")[0]
            component["purl"] = f"{purl}-{n // len(real)}@{version}"
        if n % 10 == 0:
            component["cpe"] = f"cpe:2.3:a:acme:{re.sub(r'[^A-Za-z0-9_.-]', '_', base['name'])}:{version}:*:*:*:*:*:*:*"
        components.append(component)
    path.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.4", "components": components}))


def time_import(path: Path, repeat: int) -> tuple[float, int]:
    from retrieval.database import Database
    from retrieval.stack.service import StackService
    from retrieval.vendors import VendorDictionary

    dictionary = VendorDictionary.default()
    best = float("inf")
    added = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(Path(tmp) / "threatbot.sqlite3")
            service = StackService(db, dictionary)
            start = time.perf_counter()
            report = service.import_file("bench", path)
            best = min(best, time.perf_counter() - start)
            added = report.added.count
            db.close()
    return best, added


def _loop_seconds() -> float:
    """How busy the machine is: shared CI and dev boxes can be several times slower than an idle core."""
    start = time.perf_counter()
    total = 0
    for step in range(5_000_000):
        total += step
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    if not SBOM.is_dir():
        print("../shared/fixtures/sbom is not present", file=sys.stderr)
        return 2
    largest = max(SBOM.glob("*.cdx.json"), key=lambda p: p.stat().st_size)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / f"synthetic-{args.count}.cdx.json"
        synthetic_sbom(synthetic, args.count)
        print(f"machine speed: a 5M-step Python loop took {_loop_seconds():.2f} s (an idle core: ~0.25 s)")
        print(f"{'SBOM':<34} {'components':>10} {'import s':>9} {'baseline s':>10}")
        for path in (largest, synthetic):
            seconds, added = time_import(path, args.repeat)
            verdict = "ok" if seconds <= BASELINE_SECONDS else "SLOWER than baseline"
            print(f"{path.name:<34} {added:>10} {seconds:>9.2f} {BASELINE_SECONDS:>10.1f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
