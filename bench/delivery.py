"""Delivery benchmark: 1,000 new records against 200 subscriptions, matched, queued and sent to a local webhook.

Measures, on real news (the 2023 fixtures, one contiguous slice, as one poll would bring them):

* **match + enqueue**: ``DeliveryPlanner.plan()`` — every subscription evaluated with search's
  ``Searcher.matching`` (query embeddings cached, equal queries evaluated once), posts/digests and
  claims written in one transaction. Baseline beside it: the same matching done the plain way, one
  ``Searcher.matching`` per subscription with no sharing — which is also how the expected count is
  computed, independently of the planner.
* **delivery**: outbox rows through ``WebhookTarget`` to a local sink (no rate limit), messages/s.
  Baseline: bare ``httpx`` POSTs of the same bodies to the same sink, no outbox bookkeeping.
* **correctness**: messages the sink received (unique idempotency keys) = messages expected.

    python bench/delivery.py [--records 1000] [--subscriptions 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NEWS = SHARED / "fixtures" / "news-2023" / "security_feeds_2023_entries.jsonl"
MODEL_DIR = SHARED / "models" / "all-MiniLM-L6-v2" / "onnx"
sys.path.insert(0, str(REPO))

#: Standing queries of the kinds security teams write; spread over channels, several channels share some.
VENDORS = [
    "microsoft", "google", "apple", "cisco", "fortinet", "ivanti", "vmware", "citrix", "oracle", "adobe",
    "linux", "android", "chrome", "windows", "exchange", "openai", "github", "cloudflare", "aws", "okta",
    "palo alto networks", "sonicwall", "atlassian", "samsung", "zyxel", "progress", "moveit", "barracuda",
    "juniper", "f5",
]  # fmt: skip
TOPICS = [
    "ransomware", "ransomware healthcare", "data breach", "outage", "phishing", "zero-day", "kev", "cve",
    "severity>=high", "malware", "botnet", "supply chain attack", "crypto exchange hack", "ddos", "espionage",
    "north korea hackers", "china hackers", "russia hackers", "password leak", "patch tuesday",
]  # fmt: skip


def subscription_queries(count: int) -> list[str]:
    """``count`` queries: vendors, topics and vendor+topic pairs, cycled (so some repeat, as in real teams)."""
    pairs = [f"vendor:{v.replace(' ', '_')} {t}" for v, t in zip(VENDORS, itertools.cycle(TOPICS[:10]), strict=False)]
    distinct = VENDORS + TOPICS + pairs + [f"{v} -crypto" for v in VENDORS[:10]]
    return [distinct[i % len(distinct)] for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=200)
    parser.add_argument("--channels", type=int, default=40)
    parser.add_argument("--offset", type=int, default=6000, help="where the slice starts in the 2023 news file")
    parser.add_argument(
        "--digest-threshold",
        type=int,
        default=10**9,
        help="new incidents per channel above which one digest is sent (default: never, so every incident is a message)",
    )
    args = parser.parse_args()
    if not NEWS.is_file() or not (MODEL_DIR / "model.onnx").is_file():
        print("needs ../shared/fixtures/news-2023 and ../shared/models beside the repository", file=sys.stderr)
        return 2
    os.environ.setdefault("THREATBOT_EMBEDDING_MODEL_DIR", str(MODEL_DIR))

    import httpx

    from bot.config import Settings
    from bot.daemon import DeliveryConfig, open_runtime
    from bot.deliverer import DeliveryPolicy
    from bot.delivery.webhook import WebhookTarget
    from bot.outbox import RowStatus
    from bot.subscriptions import standing_query
    from retrieval.ingest import Ingestor
    from retrieval.search import Searcher
    from tests.helpers.webhook_sink import WebhookSink

    with tempfile.TemporaryDirectory() as tmp, WebhookSink() as sink:
        work = Path(tmp)
        slice_path = work / "poll.jsonl"
        with NEWS.open(encoding="utf-8") as lines, slice_path.open("w", encoding="utf-8") as out:
            for line in itertools.islice(lines, args.offset, args.offset + args.records):
                out.write(line)

        config = DeliveryConfig(
            default_sources=False,
            digest_threshold=args.digest_threshold,
            delivery=DeliveryPolicy(rate_limits={"webhook": 0.0}),
        )
        target = WebhookTarget(sink.url, secret="bench-secret")
        runtime = open_runtime(Settings(data_dir=work / "data"), config, targets=[target])
        queries = subscription_queries(args.subscriptions)
        subs = [
            runtime.subscriptions.subscribe(
                platform="webhook", channel=f"C{n % args.channels:03d}", query=q, created_by="bench"
            )
            for n, q in enumerate(queries)
        ]
        time.sleep(0.01)

        started = time.perf_counter()
        report = Ingestor(runtime.store).ingest(str(slice_path))
        ingest_s = time.perf_counter() - started
        records = [c.record for c in report.upsert.changes] if report.upsert else []
        print(report.line())

        # Baseline and expected count: one plain Searcher.matching per subscription, nothing shared.
        started = time.perf_counter()
        plain = Searcher(runtime.store)
        clusters_by_channel: dict[str, set[str]] = {}
        moment = max(r.fetched_at for r in records if r.fetched_at)
        for sub in subs:
            for result in plain.matching(standing_query(sub.query, now=moment), records):
                clusters_by_channel.setdefault(sub.channel, set()).add(result.record.cluster_id or result.record.id)
        naive_s = time.perf_counter() - started
        threshold = config.digest_threshold
        expected = sum(1 if len(c) > threshold else len(c) for c in clusters_by_channel.values())
        incidents = sum(len(c) for c in clusters_by_channel.values())

        started = time.perf_counter()
        plan = runtime.planner.plan()
        plan_s = time.perf_counter() - started
        queued = plan.posts + plan.digests + plan.updates

        started = time.perf_counter()
        delivered = runtime.deliverer.drain()
        deliver_s = time.perf_counter() - started
        stats = runtime.outbox.stats()
        bodies = [d.raw for d in sink.unique]

        # Baseline for sending: the same bodies POSTed with bare httpx, no outbox.
        with WebhookSink() as raw_sink, httpx.Client() as client:
            started = time.perf_counter()
            for n, body in enumerate(bodies):
                client.post(raw_sink.url, content=body, headers={"Idempotency-Key": f"raw-{n}"})
            raw_s = time.perf_counter() - started
        runtime.close()

    distinct = len(set(queries))
    print(
        f"\n{len(records)} new records, {len(subs)} subscriptions ({distinct} distinct queries) in "
        f"{args.channels} channels; ingest (embed+cluster+store) took {ingest_s:.1f} s, not counted below\n"
    )
    print(f"{'step':<46} {'threatbot':>12} {'baseline':>12}")
    print(
        f"{'match + enqueue (s)':<46} {plan_s:>12.2f} {naive_s:>12.2f}   baseline: Searcher.matching per subscription"
    )
    print(
        f"{'  per record x subscription (µs)':<46} {plan_s / (len(records) * len(subs)) * 1e6:>12.1f} "
        f"{naive_s / (len(records) * len(subs)) * 1e6:>12.1f}"
    )
    dps = delivered.sent / deliver_s if deliver_s else float("inf")
    raw_rate = len(bodies) / raw_s if raw_s else float("inf")
    print(f"{'deliveries per second':<46} {dps:>12.1f} {raw_rate:>12.1f}   baseline: bare httpx POSTs, no outbox")
    print(
        f"\nincidents matched: {incidents} across {len(clusters_by_channel)} channels -> messages expected {expected} "
        f"(digest above {threshold} per channel)"
    )
    print(
        f"queued {queued} ({plan.posts} posts, {plan.digests} digests), sent {delivered.sent}, "
        f"sink received {len(sink.received)} ({len(sink.unique)} unique keys), outbox sent {stats.total(RowStatus.SENT)}"
    )
    ok = expected == queued == delivered.sent == len(sink.unique) == stats.total(RowStatus.SENT)
    print("delivered == expected:", "OK" if ok else "MISMATCH")
    print(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "match_enqueue_s": round(plan_s, 3),
                "naive_s": round(naive_s, 3),
                "deliveries_per_s": round(dps, 1),
                "raw_posts_per_s": round(raw_rate, 1),
                "expected": expected,
                "delivered": len(sink.unique),
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
