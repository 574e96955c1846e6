"""Benchmark: time from chat message to reply through the conversation core (no LLM), on ~35k records.

Questions and thread follow-ups go through ``Conversation.handle`` exactly as an adapter sends
them; the same questions also go through the searcher alone, which is the baseline the core's
own cost is measured against. Goal: p95 message → reply under 300 ms.

    python bench/conversation.py --data-dir data/bench-conversation [--rounds 5] [--no-news]

The data dir is built on first use (corpus-2025's 19k canonical records, the KEV catalogue and
news-2023's 15k items; embedding them takes ~10 minutes on 2 cores) and reused afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO))

#: The moment of asking: the last day of corpus-2025's news, in Berlin.
NOW = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)
TZ = "Europe/Berlin"
GOAL_P95_MS = 300.0

#: Threads: a question, then follow-ups in the same thread.
SCRIPT: list[list[str]] = [
    ["any Exchange outages today?", "what about this week?", "is it exploited?", "show the source"],
    ["what did Fortinet patch this week?", "only critical ones", "tell me more about the second one", "which CVEs?"],
    ["any GitHub outages yesterday?", "what about today?", "more", "any updates?"],
    ["Cloudflare outages this week", "which countries are affected?", "what's the mitigation?"],
    ["exploited vulnerabilities this week", "more", "only critical ones", "the third one", "what's the mitigation?"],
    ["ransomware attacks on hospitals this month", "what about last month?", "tell me more about the first one"],
    ["crypto exchange hacks this month", "more"],
    ["latest 5", "more", "show 2"],
    ["search ivanti connect secure", "what about citrix?", "is it exploited?"],
    ["any data breaches yesterday?", "only critical ones", "what about last week?"],
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def news_2023_records(path: Path) -> Iterator[object]:
    """news-2023's link items (title, description, link, date_published) as canonical records."""
    from dateutil import parser as dates

    from retrieval.records import ThreatRecord

    with path.open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            try:
                published = dates.parse(item["date_published"])
            except (KeyError, ValueError, OverflowError):
                continue
            host = (urlsplit(item.get("source") or item.get("link") or "").hostname or "").removeprefix("www.")
            yield ThreatRecord(
                title=item.get("title") or "(untitled)",
                summary=item.get("description") or "",
                url=item.get("link") or "",
                published=published,
                source=host,
            )


def build(data_dir: Path, *, news: bool) -> None:
    from bot.config import Settings
    from retrieval.enrich import enrich
    from retrieval.ingest import Ingestor
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(data_dir))
    if store.count() > 0:
        print(f"reusing {data_dir}: {store.count()} records")
        store.close()
        return
    ingestor = Ingestor(store)
    started = time.perf_counter()
    for source in (
        FIXTURES / "corpus-2025" / "corpus.jsonl",
        FIXTURES / "kev" / "known_exploited_vulnerabilities.json",
    ):
        print(ingestor.ingest(str(source), progress=sys.stderr.isatty()).line(), flush=True)
    if news:
        records = [
            enrich(r, ingestor.dictionary)
            for r in news_2023_records(FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl")
        ]
        report = store.upsert(records, progress=sys.stderr.isatty())
        print(f"news-2023: new {report.new}, updated {report.updated}, unchanged {report.unchanged}", flush=True)
    print(f"built {data_dir}: {store.count()} records in {time.perf_counter() - started:.0f} s")
    store.close()


def run(data_dir: Path, rounds: int) -> int:
    from bot.config import Settings
    from bot.conversation import Conversation
    from bot.messages import IncomingMessage, ReplyKind
    from retrieval.query import parse_query
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(data_dir))
    core = Conversation(store)
    core.searcher.search("warm up the embedder", now=NOW, tz=TZ)
    questions: list[float] = []
    followups: list[float] = []
    retrieval: list[float] = []
    kinds: dict[str, int] = {}
    for round_number in range(rounds):
        for number, thread in enumerate(SCRIPT):
            thread_id = f"bench-{round_number}-{number}-{time.monotonic_ns()}"
            for position, text in enumerate(thread):
                started = time.perf_counter()
                reply = core.handle(
                    IncomingMessage(text, platform="bench", channel="b", thread_id=thread_id, tz=TZ, now=NOW)
                )
                elapsed = (time.perf_counter() - started) * 1000
                (followups if position else questions).append(elapsed)
                kinds[reply.kind.value] = kinds.get(reply.kind.value, 0) + 1
                if reply.kind is ReplyKind.NOTICE and "went wrong" in reply.text:
                    print(f"error answering {text!r}", file=sys.stderr)
                    return 1
            # The baseline: understanding + retrieval alone for the thread's question.
            query_text = thread[0].removeprefix("search ").removeprefix("latest 5")
            started = time.perf_counter()
            core.searcher.run(parse_query(query_text, now=NOW, tz=TZ), limit=50)
            retrieval.append((time.perf_counter() - started) * 1000)
    everything = questions + followups
    print(f"\n{store.count()} records, {rounds} rounds of {len(SCRIPT)} threads, {len(everything)} messages")
    print(f"reply kinds: {dict(sorted(kinds.items()))}")
    print(f"{'':28}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    rows = [
        ("message → reply (all)", everything),
        ("  new questions", questions),
        ("  follow-ups", followups),
        ("baseline: retrieval alone", retrieval),
    ]
    for label, values in rows:
        print(f"{label:28}{statistics.median(values):9.1f}{percentile(values, 0.95):9.1f}{max(values):9.1f}")
    p95 = percentile(everything, 0.95)
    print(f"goal: p95 < {GOAL_P95_MS:.0f} ms — {'met' if p95 < GOAL_P95_MS else 'NOT met'} ({p95:.1f} ms)")
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-conversation")
    parser.add_argument("--rounds", type=int, default=5, help="times the whole script is replayed (default 5)")
    parser.add_argument("--no-news", action="store_true", help="build without news-2023 (~21k records)")
    args = parser.parse_args(argv)
    if not FIXTURES.is_dir():
        print(f"needs the fixtures at {FIXTURES}", file=sys.stderr)
        return 2
    build(args.data_dir, news=not args.no_news)
    return run(args.data_dir, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
