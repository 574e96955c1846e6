"""Retrieval quality on question sets side by side, per category: the 34 written beside the code, and 110
held-out sets, each written and labelled by someone who never read the ranking code.

Each new set was written after the ranking changes the previous ones prompted: ``heldout`` (166),
``heldout2`` (87), ``heldout3`` (87), ``heldout4`` (80) and ``heldout5`` (85) were measured and then used
to find what fails (classes of failure, never single questions); ``heldout6`` (80, events of 2023 H1 and
2024–mid 2025) and ``heldout7`` (80, 2023 H2 and mid 2025–2026) were measured once, then used the same
way for the last changes; ``heldout8`` (60) and ``heldout9`` (60) were measured once and then used the
same way; ``heldout10`` (60) was written meanwhile and measured once, on the final code of that session;
``heldout11`` to ``heldout14`` (60 each, 12 empty answers each) were written blind in the next session:
``heldout11`` was measured once midway and then used as dev, ``heldout12`` and ``heldout13`` once each on
cbb4f94, ``heldout14`` once on the final code. ``heldout15`` to ``heldout19`` (60 each, 12 empty) were each
measured once on the code of their moment (3a58291, 778d2ec, 1d1a577, 4b3158f); ``heldout20`` to
``heldout22`` once on 761b636, ``heldout23`` and ``heldout24`` once on f95a071, and ``heldout25`` and
``heldout26`` once on the same search code (76c0ed9); ``heldout27`` (answers in 2023 news and KEV entries) and
``heldout28`` (2024–26 news, status pages and ICS advisories) once on 5ee844e, and ``heldout29`` (60, 2023 news
and KEV) and ``heldout30`` (30, 2024–26 news, status pages and ICS) once on 0eb6707, and ``heldout31`` and
``heldout32`` (60 each, the same split) once on 6076789, ``heldout33`` and ``heldout34`` (60 each, the same split)
once on 85475f9, ``heldout35`` and ``heldout36`` (60 each, the same split) once on 3c1dccd (the first code with the
learned relevance judgment, trained on the sets before them), and ``heldout37`` and ``heldout38`` (60 each, the same
split) once on c0bdd33 (its model retrained with heldout35 and heldout36), and ``heldout39`` and ``heldout40`` (60
each, the same split) once on 47a3616 (the same search code as c0bdd33); ``heldout41`` (2023 news, KEV and 2023 status
pages), ``heldout42`` (2025–26 news, status pages, ICS advisories of 2024) and ``heldout43`` (news of 2023 H2, KEV
entries of 2024–25, ICS advisories of 2020–22) and ``heldout44`` (2025–26 news, status pages of 2020–22, ICS advisories
of 2019–22, KEV of 2026), 60 each, once on 7700fa3; ``heldout45`` (2023 H1 news, KEV of 2021–22, 2023 status pages,
ICS advisories of 2018), ``heldout46`` (news of Nov 2025 and Feb 2026, 2023–25 status pages, ICS advisories of 2023,
KEV of 2025) and ``heldout47`` (2023 H2 news, KEV of 2023–24, 2024–25 status pages, ICS advisories of 2021 and 2024),
60 each, written from ``bench/LABELLER-BRIEF.md``, once on f35ef90 (the near misses); ``heldout48`` (2023 H2 news, KEV
of 2023–24, ICS advisories of 2021–22, Google Cloud status of 2020–22), ``heldout49`` (news of Nov 2025 and Jan 2026,
GitHub status, ICS advisories of 2017–20, KEV of 2025) and ``heldout50`` (news of Dec 2025 and Feb 2026, 2023 H1 news,
Cloudflare status of 2019–23, KEV of 2025–26, ICS advisories of 2023–24), 60 each, the same way, once on 17771e5
(the monotonic model over 48 sets); ``heldout51`` (2023 H1 news, KEV of 2021–22, ICS advisories of 2019–20, GitHub
status of 2023), ``heldout52`` (news of late Nov 2025 and early Jan 2026, Cloudflare status of 2024–25, KEV of 2025 H2,
ICS advisories of 2023) and ``heldout53`` (2023 H2 and Feb 2026 news, Google Cloud status of 2023–25, KEV of 2026, ICS
advisories of 2022 and 2024), 60 each, the same way, once on 86a4676; ``heldout54`` (2023 news of Jun–Sep, KEV of
2022–23, ICS advisories of 2018 and 2021, GitHub status of 2024–25), ``heldout55`` (news of Nov 2025, Cloudflare status
of 2022, Google Cloud status of 2024, KEV of 2024–25, ICS advisories of 2020 and 2022) and ``heldout56`` (news of
Dec 2025–Feb 2026 and 2023 Q4, GitHub 2023 and Cloudflare 2026 status, KEV of 2026, ICS advisories of 2017 and 2023),
60 each, once on 0a39f03; ``heldout57`` (2023 news of Jan–Apr and Oct–Dec, KEV of 2022 and 2024, ICS advisories of 2019
and 2023, Cloudflare status of 2023), ``heldout58`` (news of Nov–Dec 2025, GitHub status of 2022 and 2026, Google Cloud
status of 2020–21, KEV of 2025, ICS advisories of 2021 and 2024) and ``heldout59`` (news of Jan–Feb 2026 and 2023
May–Aug, Cloudflare status of 2025–26, KEV of 2023 and 2026, ICS advisories of 2018 and 2022), 60 each, once on
2e82b74; ``heldout60`` (2023 news of Feb–May and Sep–Nov, KEV of 2021 and 2025 H1, ICS advisories of 2020 and 2024,
GitHub status of 2025), ``heldout61`` (news of Nov 1–20 2025 and Jan 1–13 2026, Cloudflare status of 2020–21, Google
Cloud status of 2022–23, KEV of 2023–24, ICS advisories of 2017 and 2019) and ``heldout62`` (news of Dec 1–10 2025,
Feb 2026 and 2023 H2, Google Cloud status of 2025–26, Cloudflare status of 2024, KEV of 2022 and 2026, ICS advisories
of 2021 and 2023), 60 each, once on 8b1336d (the first code whose thresholds were chosen against all four targets);
``heldout63`` (2023 news of Jan–Mar and Jul–Aug, KEV of 2022 H2 and 2024, ICS advisories of 2018 and 2022, Cloudflare
status of 2022–23), ``heldout64`` (news of Nov 20–30 2025 and Feb 2026, GitHub status of 2023 and 2026, Google Cloud
status of 2021 and 2024, KEV of 2025 H2, ICS advisories of 2020 and 2023) and ``heldout65`` (news of Dec 2025–Jan 2026
and 2023 Apr–Jun and Oct–Dec, Cloudflare status of 2025–26, KEV of 2021 and 2023, ICS advisories of 2019 and 2024), 60
each, once on the session's final code (the model retrained on 63 sets); ``heldout66`` (news of Oct 31–Nov 19 2025
and Sep 2023, GitHub status of 2024–25, KEV of 2023, ICS advisories of 2021), ``heldout67`` (news of Dec 1–10 2025,
Jan 1–13 2026 and Jul–Aug 2023, Google Cloud status of 2022, 2023 and 2025, KEV of 2024 H1, ICS advisories of 2017
and 2022) and ``heldout68`` (news of Nov 20–30 2025, Feb 2026, 2023 Jan–Mar and Oct–Dec, Cloudflare status of
2020–21 and 2024, KEV of 2025 H1 and 2026, ICS advisories of 2018 and 2020), 60 each, once on dd0d8a0 (3ff1ed1's
answers, faster); ``heldout69`` (news of Nov 5–25 2025 and Apr–Jun 2023, Cloudflare status of 2022 and 2025, KEV
of 2022 H1, ICS advisories of 2019 and 2023), ``heldout70`` (news of Dec 3–10 2025, Feb 2026 and Oct–Nov 2023,
GitHub status of 2022 and 2026, KEV of 2025 H2, ICS advisories of 2024) and ``heldout71`` (news of Oct 31–Nov 4
2025, Jan 1–13 2026, Feb–Mar and Aug–Sep 2023, Google Cloud status of 2024 and 2026, KEV of 2021 and 2024 H2, ICS
advisories of 2020–21), 60 each, once on bdb5302 (the model retrained on 69 sets); ``heldout72`` (news of Nov 10–30
2025, Mar and Jun 2023, GitHub status of 2023 and 2025, Cloudflare status of 2023, KEV of 2022 H2, ICS advisories of
2018 and 2024), ``heldout73`` (news of Dec 1–10 2025, Jan 1–13 2026, Jan and Sep 2023, Google Cloud status of 2023
and 2026, GitHub status of 2024, KEV of 2024 H2, ICS advisories of 2017 and 2021) and ``heldout74`` (news of Oct 31–Nov
9 2025, Feb 2026, May, Jul and Dec 2023, Cloudflare status of 2021 and 2026, Google Cloud status of 2022, KEV of 2025,
ICS advisories of 2019 and 2022), 60 each, once on 8924e5a; ``heldout75`` (news of Nov 1–15 2025, Jan 5–13 2026,
Feb and Aug 2023, GitHub status of 2021 and 2025, Google Cloud status of 2024, KEV of 2023 H2, ICS advisories of 2020
and 2024), ``heldout76`` (news of Nov 16–Dec 10 2025, Apr and Oct 2023, Cloudflare status of 2022 and 2024, GitHub
status of 2026, KEV of 2022, ICS advisories of 2018 and 2023) and ``heldout77`` (news of Oct 31–Nov 8 2025, Feb 2026,
Jun, Nov and Dec 2023, Google Cloud status of 2021 and 2025, Cloudflare status of 2026, KEV of 2024, ICS advisories of
2017 and 2022), 60 each, once on the same code (e4833fb); ``heldout78`` (news of Nov 3–18 2025, Feb 3–12 2026, Mar,
Jul and Nov 2023, GitHub status of 2020 and 2024, Cloudflare status of 2025, KEV of 2023 H1, ICS advisories of 2019
and 2021), ``heldout79`` (news of Nov 19–Dec 10 2025, Jan, May and Sep 2023, Google Cloud status of 2020 and 2023,
GitHub status of 2022, KEV of 2025 H2, ICS advisories of 2017 and 2020) and ``heldout80`` (news of Oct 31–Nov 2 2025,
Jan 1–13 2026, Feb, Jun and Oct 2023, Cloudflare status of 2020 and 2023, Google Cloud status of 2026, KEV of 2024 H1
and 2026, ICS advisories of 2022 and 2024), 60 each, once on 25d7c01 (the model retrained on 77 sets); ``heldout81``
(news of Oct 31–Nov 9 2025, Mar, Jul and Nov 2023, GitHub status of 2024, KEV of 2022, ICS advisories of 2018 and
2021), ``heldout82`` (news of Nov 10–25 2025, Apr, Aug and Dec 2023, Cloudflare status of 2021 and 2024, KEV of 2023 H2
and 2025 H1, ICS advisories of 2019 and 2023), ``heldout83`` (news of Nov 26–Dec 10 2025, Feb 1–12 2026, Jan, Jun and
Oct 2023, Google Cloud status of 2021, 2022 and 2024, GitHub status of 2025–26, KEV of 2021 and 2024 H2, ICS advisories
of 2017 and 2022), ``heldout84`` (news of Nov 3–9 2025, Jan 1–13 2026, Feb, May and Sep 2023, Cloudflare status of 2022
and 2025, Google Cloud status of 2019 and 2025, KEV of 2023 H1, ICS advisories of 2020 and 2024), ``heldout85`` (news
of Nov 19–Dec 5 2025, Mar, Aug and Nov 2023, GitHub status of 2023, KEV of 2025 H2, ICS advisories of 2021 and 2022)
and ``heldout86`` (news of Oct 31–Nov 5 2025, Feb 1–12 2026, Jan, Jul and Dec 2023, Cloudflare status of 2023 and 2026,
Google Cloud status of 2020 and 2026, KEV of 2024 H1 and 2026, ICS advisories of 2018 and 2023), 60 each, once on
a0941f0 (the model retrained on 81 sets); ``heldout87`` (news of Nov 3–12 2025, Jan, May and Sep 2023, GitHub status
of 2022 and 2025, KEV of 2021, ICS advisories of 2019 and 2024), ``heldout88`` (news of Nov 13–24 2025, Feb, Jun and
Oct 2023, Google Cloud status of 2019 and 2023, KEV of 2022 H2 and 2025 H2, ICS advisories of 2017 and 2020),
``heldout89`` (news of Nov 25–Dec 10 2025, Mar, Jul and Nov 2023, Cloudflare status of 2020 and 2022, KEV of 2024, ICS
advisories of 2018 and 2022), ``heldout90`` (news of Jan 1–13 and Feb 1–12 2026, Apr, Aug and Dec 2023, GitHub status
of 2023 and 2026, Cloudflare status of 2025, KEV of 2023, ICS advisories of 2021 and 2023), ``heldout91`` (news of
Oct 31–Nov 15 2025, Jan, Jun and Sep 2023, Google Cloud status of 2021, 2025 and 2026, KEV of 2025 H1 and 2026, ICS
advisories of 2019 and 2022) and ``heldout92`` (news of Nov 16–Dec 3 2025, Feb, May and Oct 2023, Cloudflare status of
2021, 2023 and 2024, GitHub status of 2024, KEV of 2022 H1 and 2024 H2, ICS advisories of 2020 and 2024), 60 each, once
on bbadea3 (the model retrained on 87 sets); ``heldout93`` (news of Nov 1–10 2025, Feb, Jun and Nov 2023, Cloudflare
status of 2021 and 2025, KEV of 2023 H1, ICS advisories of 2018 and 2020), ``heldout94`` (news of Nov 11–22 2025, Mar,
Jul and Oct 2023, GitHub status of 2023 and 2025, KEV of 2024 H1, ICS advisories of 2019 and 2021), ``heldout95`` (news
of Nov 23–Dec 10 2025, Jan, May and Aug 2023, Google Cloud status of 2020, 2022 and 2024, KEV of 2025 H2, ICS
advisories of 2017 and 2023), ``heldout96`` (news of Jan 1–13 and Feb 1–12 2026, Apr, Sep and Dec 2023, Cloudflare
status of 2020 and 2024, GitHub status of 2026, KEV of 2022 and 2026, ICS advisories of 2022 and 2024), ``heldout97``
(news of Oct 31–Nov 8 and Nov 24–Dec 2 2025, Jan, Jun and Oct 2023, Google Cloud status of 2019, 2021 and 2025, KEV of
2023 H2, ICS advisories of 2019 and 2022) and ``heldout98`` (news of Nov 9–20 2025 and Jan 5–13 2026, Mar, Aug and Dec
2023, Cloudflare status of 2022 and 2023, GitHub status of 2022 and 2024, KEV of 2021 and 2025 H1, ICS advisories of
2020 and 2023), 60 each, once on aba6bb1 (the final search code, the model trained on 77 sets); ``heldout99`` (news of
Oct 31–Nov 12 2025, Jan, May and Oct 2023, Google Cloud status of 2020 and 2022, KEV of 2024 H1, ICS advisories of 2019
and 2021), ``heldout100`` (news of Nov 13–26 2025, Feb, Jul and Nov 2023, Cloudflare status of 2026, KEV of 2024 H2, ICS
advisories of 2017 and 2023), ``heldout101`` (news of Nov 27–Dec 10 2025, Jun and Sep 2023, Google Cloud status of 2023
and 2024, KEV of 2023 H2, ICS advisories of 2018 and 2022), ``heldout102`` (news of Jan 1–13 2026, Apr, Aug and Dec 2023,
GitHub status of 2023 and 2025, KEV of 2025 H2, ICS advisories of 2020 and 2024), ``heldout103`` (news of Feb 1–12 2026,
Jan, Jun and Oct 2023, Cloudflare status of 2021 and 2022, KEV of 2026, ICS advisories of 2019 and 2023) and
``heldout104`` (news of Oct 31–Nov 5 and Dec 1–10 2025, May, Sep and Nov 2023, Google Cloud status of 2025 and 2026, KEV
of 2022, ICS advisories of 2021 and 2024), 60 each, once on 019ae1c (the search code of the next session, the same
model); ``heldout105`` (news of Nov 6–18 2025, Feb, Jun and Sep 2023, Cloudflare status of 2023 and 2024, KEV of 2021,
ICS advisories of 2018 and 2024), ``heldout106`` (news of Nov 19–Dec 2 2025, Mar, Jul and Dec 2023, GitHub status of
2022 and 2026, KEV of 2023 H1, ICS advisories of 2017 and 2020), ``heldout107`` (news of Dec 3–10 2025 and Jan 1–6
2026, Jan, Apr and Aug 2023, Google Cloud status of 2019 and 2021, KEV of 2024 H2, ICS advisories of 2019 and 2022),
``heldout108`` (news of Jan 7–13 2026, May, Oct and Nov 2023, Cloudflare status of 2020 and 2025, KEV of 2025 H1, ICS
advisories of 2021 and 2023), ``heldout109`` (news of Feb 1–12 2026, Feb, Aug and Dec 2023, GitHub status of 2024,
Google Cloud status of 2026, KEV of 2022, ICS advisories of 2020 and 2024) and ``heldout110`` (news of Oct 31–Nov 8 and
Nov 24–30 2025, Mar, Jun and Nov 2023, Google Cloud status of 2023, Cloudflare status of 2022, KEV of 2025 H2, ICS
advisories of 2018 and 2023), 60 each, once on 50d5e48 (that session's final code). Each set's first measurement is
the honest figure for questions the ranking had never seen; after it, a set is dev.

The store: ``corpus-2025`` (19,301 records) and ``news-2023`` (14,974), built once into ``--data-dir``.
Every question is asked through ``threatbot search --batch --json`` (the same path a user's batch takes),
with its own ``now`` and time zone. ``--code DIR`` runs another checkout's search (e.g. main before a
change) over the same store, so before/after figures come from one store and one judge.

Relevance:

* held-out sets (``bench/heldout*.jsonl``, rules in ``bench/LABELLING.md``, each labeller's notes beside
  it): each question lists records by
  URL (canonicalised as the store does) and/or id, with a grade (2 = answers it, 1 = partly). A result
  counts when its record or any member of its cluster is listed; each relevant incident counts once.
* the old set (``bench/questions.jsonl``): a title pattern within a date range and/or ids, as in
  ``bench/retrieval.py``; all grade 1.

Metrics per question, averaged per category (a question whose answer is nothing only counts toward the
honest-nothing rate): nDCG@10 with the grades as gains, R@10 = relevant incidents in the top 10 /
min(10, relevant incidents), P@5 = relevant results among the (up to) 5 returned, honest nothing = the
answer is empty when the label says nothing answers, latency p50/p95 from ``took_ms``.

    python bench/evaluate.py [--data-dir DIR] [--code DIR] [--sets old,heldout,...,heldout110] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchstore import MODEL_DIR, REPO, SHARED, search_batch

SOURCES = [
    SHARED / "fixtures" / "corpus-2025" / "corpus.jsonl",
    SHARED / "fixtures" / "news-2023" / "security_feeds_2023_entries.jsonl",
]
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "threatbot-eval-store"
SETS = {
    "old": REPO / "bench" / "questions.jsonl",
    # Every held-out set in bench/, in the order written (heldout, heldout2, …): a set is evaluated once it is there.
    **{
        path.stem: path
        for path in sorted((REPO / "bench").glob("heldout*.jsonl"), key=lambda p: int(p.stem[len("heldout") :] or 1))
    },
}


# -- the store and the judge ---------------------------------------------------------------------


def build_store(data_dir: Path, env: dict[str, str]) -> None:
    """Ingest both corpora into ``data_dir`` unless it already holds a store (about an hour on 2 busy cores)."""
    if (data_dir / "threatbot.sqlite3").is_file():
        return
    print(f"building the evaluation store in {data_dir} (one-off)…", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", *map(str, SOURCES), "--data-dir", str(data_dir)],
        env=env,
        check=True,
        cwd=REPO,
    )


class Judge:
    """Maps each label to graded incidents (clusters) of the store, read straight from SQLite."""

    def __init__(self, database: Path) -> None:
        sys.path.insert(0, str(REPO))
        from retrieval.records import canonical_url

        self.canonical_url = canonical_url
        self.db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        self.db.row_factory = sqlite3.Row
        self.references = 0  # labelled URLs/ids looked up…
        self.unresolved = 0  # …and how many the store does not hold (a store built from other data)

    def graded_ids(self, question: dict) -> dict[str, int]:
        """Record id → grade for every stored record the label points to."""
        label = question.get("relevant")
        if not label:
            return {}
        if isinstance(label, dict):  # the old set: title pattern in a date range, and/or ids
            return dict.fromkeys(self._by_title(label), 1)
        grades: dict[str, int] = {}
        for item in label:
            grade = int(item.get("grade", 1))
            for record_id in self._by_reference(item):
                grades[record_id] = max(grade, grades.get(record_id, 0))
        return grades

    def _by_title(self, label: dict) -> set[str]:
        ids = set(label.get("ids", []))
        if "title" not in label:
            return ids
        start = datetime.fromisoformat(label["from"]).replace(tzinfo=UTC)
        end = datetime.fromisoformat(label["to"]).replace(tzinfo=UTC) + timedelta(days=1)
        pattern = re.compile(label["title"])
        exclude = re.compile(label["exclude"]) if label.get("exclude") else None
        rows = self.db.execute(
            "SELECT id, json_extract(data, '$.title') AS title FROM records WHERE published >= ? AND published < ?",
            (start.timestamp(), end.timestamp()),
        )
        return ids | {
            r["id"] for r in rows if pattern.search(r["title"]) and not (exclude and exclude.search(r["title"]))
        }

    def _by_reference(self, item: dict) -> set[str]:
        self.references += 1
        found = self._lookup(item)
        self.unresolved += not found
        return found

    def _lookup(self, item: dict) -> set[str]:
        found: set[str] = set()
        if item.get("id"):
            found |= {r["id"] for r in self.db.execute("SELECT id FROM records WHERE id = ?", (item["id"],))}
        if item.get("url"):
            url = self.canonical_url(item["url"]) or item["url"]
            found |= {r["id"] for r in self.db.execute("SELECT id FROM records WHERE canonical_url = ?", (url,))}
        return found

    def clusters(self, ids: set[str] | list[str]) -> dict[str, str]:
        ids = list(ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                f"SELECT id, cluster_id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
            out.update({r["id"]: r["cluster_id"] or r["id"] for r in rows})
        return out


# -- scoring -------------------------------------------------------------------------------------


def score(returned: list[list[str]], grades: dict[str, int], cluster_of: dict[str, str]) -> dict[str, float]:
    """One question's metrics. ``returned``: per result, its id followed by its cluster members' ids."""
    if not grades:
        return {"nothing": float(not returned)}
    incident_grade: dict[str, int] = {}
    for record_id, grade in grades.items():
        incident = cluster_of.get(record_id, record_id)
        incident_grade[incident] = max(grade, incident_grade.get(incident, 0))
    credited: set[str] = set()
    gains: list[float] = []
    hits: list[bool] = []
    for ids in returned[:10]:
        incidents = {cluster_of.get(i, i) for i in ids if i in grades}
        hits.append(bool(incidents))
        fresh = incidents - credited
        gains.append(max((incident_grade[i] for i in fresh), default=0))
        credited |= incidents
    dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
    ideal_gains = sorted(incident_grade.values(), reverse=True)[:10]
    ideal = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal_gains))
    top5 = hits[:5]
    return {
        "ndcg": dcg / ideal if ideal else 0.0,
        "recall": len(credited) / min(10, len(incident_grade)),
        "precision": sum(top5) / len(top5) if top5 else 0.0,
    }


def table(name: str, rows: list[tuple[dict, dict[str, float], float]]) -> str:
    by_category: dict[str, list[tuple[dict[str, float], float]]] = defaultdict(list)
    for question, metrics, took in rows:
        by_category[question.get("category", "uncategorised")].append((metrics, took))
    lines = [
        f"{name}: {len(rows)} questions, {sum(1 for _, m, _ in rows if 'nothing' in m)} whose answer is nothing",
        f"  {'category':<16} {'n':>4} {'nDCG@10':>8} {'R@10':>6} {'P@5':>6} {'nothing':>9} {'p50 ms':>7} {'p95 ms':>7}",
    ]
    for category in [*sorted(by_category), "ALL"]:
        items = [(m, t) for _, m, t in rows] if category == "ALL" else by_category[category]
        lines.append("  " + _line(category, items))
    return "\n".join(lines)


def _line(category: str, items: list[tuple[dict[str, float], float]]) -> str:
    def mean(key: str) -> str:
        values = [m[key] for m, _ in items if key in m]
        return f"{sum(values) / len(values):.3f}" if values else "-"

    nothing = [m["nothing"] for m, _ in items if "nothing" in m]
    honest = f"{int(sum(nothing))}/{len(nothing)}" if nothing else "-"
    times = sorted(t for _, t in items)
    p50 = statistics.median(times)
    p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) >= 2 else p50
    return (
        f"{category:<16} {len(items):>4} {mean('ndcg'):>8} {mean('recall'):>6} {mean('precision'):>6} "
        f"{honest:>9} {p50:>7.1f} {p95:>7.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose search answers (default: this one)")
    parser.add_argument("--sets", default="old,heldout", help="comma-separated: old, heldout, or paths")
    parser.add_argument("--verbose", action="store_true", help="print each question's top results")
    parser.add_argument("--json-out", type=Path, help="also write per-question metrics here")
    args = parser.parse_args()
    if not all(p.is_file() for p in SOURCES) or not (MODEL_DIR / "model.onnx").is_file():
        print("needs ../shared/fixtures and ../shared/models beside the repository", file=sys.stderr)
        return 2
    env = os.environ | {"THREATBOT_EMBEDDING_MODEL_DIR": str(MODEL_DIR), "CI": "true"}
    build_store(args.data_dir, env)
    judge = Judge(args.data_dir / "threatbot.sqlite3")
    records = judge.db.execute("SELECT count(*) FROM records").fetchone()[0]
    print(f"store: {records} records in {args.data_dir}; search code: {args.code.resolve()}\n")
    dump = []
    for name in args.sets.split(","):
        path = SETS.get(name, Path(name))
        questions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        answers = search_batch(args.data_dir, questions, env, code=args.code.resolve())
        rows = []
        errors = []
        for question, answer in zip(questions, answers, strict=True):
            if answer.get("error"):  # the batch answers a failing question empty and goes on: say so
                errors.append(f"{question['id']}: {answer['error']}")
            grades = judge.graded_ids(question)
            returned = [[r["id"], *r.get("members", [])] for r in answer["results"]]
            cluster_of = judge.clusters({*grades, *(i for ids in returned for i in ids)})
            metrics = score(returned, grades, cluster_of)
            rows.append((question, metrics, float(answer["took_ms"])))
            dump.append({"set": name, "id": question["id"], **metrics, "took_ms": answer["took_ms"]})
            if answer.get("error"):
                dump[-1]["error"] = answer["error"]
            if args.verbose:
                print(f"[{question['id']}] {question['query']!r} {metrics}")
                for r in answer["results"][:5]:
                    mark = "+" if any(i in grades for i in [r["id"], *r.get("members", [])]) else "-"
                    print(f"   {mark} {r['published'][:10]} {r['kind']:<13} {r['title'][:90]}")
        print(table(f"{name} ({path.name})", rows))
        for error in errors:
            print(f"  ERROR (scored as an empty answer) {error}")
        if judge.references:
            print(f"  labelled records not in this store: {judge.unresolved} of {judge.references}")
        judge.references = judge.unresolved = 0
        print()
    if args.json_out:
        args.json_out.write_text("\n".join(json.dumps(d) for d in dump) + "\n")
    return 1 if any(d.get("error") for d in dump) else 0


if __name__ == "__main__":
    sys.exit(main())
