"""The outbox, the deliverer and the delivery targets (memory, console, webhook against a local sink)."""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from bot.deliverer import Deliverer, DeliveryPolicy
from bot.delivery.base import (
    DeliveryError,
    DeliveryRejected,
    DeliveryTarget,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateLimited,
)
from bot.delivery.console import ConsoleTarget
from bot.delivery.memory import MemoryTarget
from bot.delivery.webhook import SIGNATURE_HEADER, WebhookTarget, sign
from bot.outbox import Outbox, Planned, RowKind, RowStatus
from retrieval.database import Database
from retrieval.records import Severity, ThreatRecord
from tests.helpers.webhook_sink import WebhookSink


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _record(n: int, **fields) -> ThreatRecord:
    base = {
        "title": f"Fortinet FortiWeb flaw {n} exploited",
        "summary": "Attackers exploit a path traversal flaw.",
        "published": datetime(2025, 11, 14, 12, n, tzinfo=UTC),
        "url": f"https://example.org/story/{n}",
        "source": "Example News",
        "severity": "high",
    }
    return ThreatRecord(**(base | fields))


def _post(platform: str, channel: str, cluster: str, record_id: str) -> Planned:
    payload = {"cluster_id": cluster, "record_ids": [record_id], "subscriptions": ["vendor:fortinet"]}
    return Planned(RowKind.POST, platform, channel, f"post:{platform}:{channel}:{cluster}", payload, (cluster,))


def _update(platform: str, channel: str, cluster: str, record_id: str) -> Planned:
    payload = {"record_id": record_id, "new_source": True, "changes": []}
    key = f"update:{platform}:{channel}:{cluster}:{record_id}:3:0"
    return Planned(RowKind.UPDATE, platform, channel, key, payload, cluster_id=cluster)


# -- the outbox on its own ---------------------------------------------------------------------------


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    return Outbox(Database(tmp_path / "t.sqlite3"), clock=Clock())


def test_planning_twice_queues_once_and_a_channel_never_gets_an_incident_twice(outbox: Outbox) -> None:
    assert outbox.commit_plan([_post("slack", "C1", "k1", "r1")], []) == 1
    assert outbox.commit_plan([_post("slack", "C1", "k1", "r1")], []) == 0, "same idempotency key"
    digest = Planned(RowKind.DIGEST, "slack", "C1", "digest:slack:C1:x", {"items": []}, ("k1",))
    assert outbox.commit_plan([digest], []) == 0, "k1 is already claimed in C1"
    assert outbox.commit_plan([_post("slack", "C2", "k1", "r1")], []) == 1, "another channel may have it"
    assert outbox.stats().total(RowStatus.PENDING) == 2
    assert {(c.channel, c.status) for c in outbox.claims(["k1"])} == {
        ("C1", RowStatus.PENDING),
        ("C2", RowStatus.PENDING),
    }


def test_an_update_waits_for_its_post_and_dies_with_it(outbox: Outbox) -> None:
    outbox.commit_plan([_post("slack", "C1", "k1", "r1"), _update("slack", "C1", "k1", "r2")], [])
    [post] = outbox.due()
    assert post.kind is RowKind.POST, "the update is not sendable before the post has a message id"
    assert outbox.next_attempt_at() == post.next_attempt
    outbox.mark_sending(post.id)
    ref = PostRef("slack", "C1", "1718000000.000100")
    outbox.mark_sent(post, ref)
    [update] = outbox.due()
    assert update.kind is RowKind.UPDATE and update.parent == ref

    outbox.commit_plan([_post("slack", "C9", "k9", "r9"), _update("slack", "C9", "k9", "r10")], [])
    doomed = next(r for r in outbox.due() if r.channel == "C9")
    outbox.mark_dead(doomed, "channel_not_found")
    dead = outbox.rows(status=RowStatus.DEAD)
    assert {r.kind for r in dead} == {RowKind.POST, RowKind.UPDATE}
    assert outbox.retry_dead() == 2


def test_rows_left_mid_send_are_requeued_on_recovery(outbox: Outbox) -> None:
    outbox.commit_plan([_post("slack", "C1", "k1", "r1")], [])
    [row] = outbox.due()
    outbox.mark_sending(row.id)
    assert outbox.due() == []
    assert outbox.recover() == 1
    [again] = outbox.due()
    assert again.key == row.key and again.attempts == 1


# -- the deliverer -----------------------------------------------------------------------------------


@pytest.fixture
def stored(store):
    """Three records of one incident and one of another, stored (clusters assigned by the store)."""
    report = store.upsert([_record(1), _record(2, url="https://example.org/other", title="Unrelated Chrome bug")])
    return {c.record.id: c.record for c in report.changes}


def test_records_stored_before_delivery_are_backlog_and_later_changes_are_unseen(store) -> None:
    # The delivery tables are created over a store that already holds records: those are seen, never posted.
    old = store.upsert([_record(1), _record(2, url="https://example.org/other", title="Unrelated Chrome bug")])
    outbox = Outbox(store.db, clock=Clock())
    assert outbox.unseen() == []
    assert outbox.seen_ids([c.record.id for c in old.changes]) == {c.record.id for c in old.changes}

    new = store.upsert([_record(3, url="https://example.org/third", title="Ivanti gateway outage")]).changes[0].record
    raised = store.upsert([_record(1, severity="critical")]).changes[0].record
    changes = {now.record_id: (now, seen) for now, seen in outbox.unseen()}
    assert set(changes) == {new.id, raised.id}
    assert changes[new.id][1] is None, "never seen"
    now, seen = changes[raised.id]
    assert (seen.severity, now.severity) == (Severity.HIGH.rank, Severity.CRITICAL.rank)
    assert now.cluster_id == raised.cluster_id and not now.exploited
    assert len(outbox.unseen(limit=1)) == 1

    outbox.commit_plan([], [now for now, _ in changes.values()])
    assert outbox.unseen() == []


def _deliverer(store, targets, clock=None, **policy) -> tuple[Outbox, Deliverer]:
    clock = clock or Clock()
    outbox = Outbox(store.db, clock=clock)
    return outbox, Deliverer(outbox, store, targets, policy=DeliveryPolicy(**policy), clock=clock)


def test_a_post_is_built_from_the_store_and_its_message_id_kept_for_updates(store, stored) -> None:
    target = MemoryTarget(platform="slack")
    outbox, deliverer = _deliverer(store, [target])
    record = next(iter(stored.values()))
    outbox.commit_plan([_post("slack", "C1", record.cluster_id, record.id)], [])
    assert deliverer.deliver_due().sent == 1
    [sent] = target.sent
    assert isinstance(sent.payload, IncidentPost) and sent.payload.record.id == record.id
    assert sent.payload.members and sent.payload.matched == (record.id,)
    assert sent.payload.key == f"post:slack:C1:{record.cluster_id}"
    [claim] = outbox.claims([record.cluster_id])
    assert claim.status is RowStatus.SENT and claim.ref == sent.ref

    outbox.commit_plan([_update("slack", "C1", record.cluster_id, record.id)], [])
    deliverer.deliver_due()
    assert target.sent[-1].verb == "update" and target.sent[-1].parent == sent.ref


def test_failures_back_off_then_give_up_and_rejections_are_final(store, stored) -> None:
    calls: list[str] = []

    def fail(verb, channel, payload):
        calls.append(channel)
        if channel == "C-down":
            raise DeliveryError("502 from the platform")
        if channel == "C-gone":
            raise DeliveryRejected("channel_not_found")

    clock = Clock()
    outbox, deliverer = _deliverer(store, [MemoryTarget(platform="slack", fail=fail)], clock, max_attempts=3)
    record = next(iter(stored.values()))
    outbox.commit_plan([_post("slack", "C-down", record.cluster_id, record.id)], [])
    outbox.commit_plan([_post("slack", "C-gone", record.cluster_id, record.id)], [])
    first = deliverer.deliver_due()
    assert (first.retried, first.dead) == (1, 1)
    assert deliverer.deliver_due().retried == 0, "not due again before its back-off"
    waits = []
    for _ in range(2):
        nxt = outbox.next_attempt_at()
        assert nxt is not None
        waits.append(nxt - clock.now)
        clock.now = nxt
        deliverer.deliver_due()
    assert waits == [15.0, 30.0]
    [down] = [r for r in outbox.rows() if r.channel == "C-down"]
    assert down.status is RowStatus.DEAD and down.attempts == 3 and "502" in (down.last_error or "")
    assert calls.count("C-gone") == 1


def test_rate_limited_waits_as_told(store, stored) -> None:
    answers = [RateLimited("slow down", retry_after=42.0)]

    def fail(verb, channel, payload):
        if answers:
            raise answers.pop()

    clock = Clock()
    outbox, deliverer = _deliverer(store, [MemoryTarget(platform="slack", fail=fail)], clock, max_attempts=1)
    first, second = stored.values()
    outbox.commit_plan([_post("slack", "C1", r.cluster_id, r.id) for r in (first, second)], [])
    result = deliverer.deliver_due()
    assert (result.retried, result.paced, result.resume_at) == (1, 1, clock.now + 42.0), "the channel waits"
    assert outbox.next_attempt_at() == clock.now
    clock.now += 42.0
    assert deliverer.deliver_due().sent == 2, "a rate limit is not a failure: max_attempts=1 did not kill it"


def test_messages_to_one_channel_are_paced_without_holding_up_others(store) -> None:
    records = [_record(n, title=f"Distinct story number {n} about {word}") for n, word in enumerate("abcdef")]
    report = store.upsert(records)
    target = MemoryTarget(platform="slack")
    outbox, deliverer = _deliverer(store, [target], clock=time.time, rate_limits={"slack": 8.0})
    planned = [_post("slack", "C-busy", c.record.cluster_id, c.record.id) for c in report.changes[:4]]
    planned += [_post("slack", "C-quiet", c.record.cluster_id, c.record.id) for c in report.changes[4:]]
    outbox.commit_plan(planned, [])
    deliverer.drain()
    busy = [s.at for s in target.sent if s.channel == "C-busy"]
    quiet = [s.at for s in target.sent if s.channel == "C-quiet"]
    assert len(busy) == 4 and len(quiet) == 2
    gaps = [b - a for a, b in itertools.pairwise(busy)]
    assert min(gaps) >= 0.12, gaps
    assert quiet[0] < busy[1], "the quiet channel did not wait behind the busy one"


def test_rows_for_a_platform_without_a_target_stay_queued(store, stored) -> None:
    outbox, deliverer = _deliverer(store, [MemoryTarget(platform="slack")])
    record = next(iter(stored.values()))
    outbox.commit_plan([_post("discord", "123456789012345678", record.cluster_id, record.id)], [])
    result = deliverer.drain()
    assert (result.sent, result.no_target) == (0, 1)
    assert outbox.stats().total(RowStatus.PENDING) == 1


def test_target_routing_prefers_the_platforms_own_target() -> None:
    slack, catch_all = MemoryTarget(platform="slack"), ConsoleTarget(io.StringIO())
    deliverer = Deliverer.__new__(Deliverer)
    deliverer.targets = [catch_all, slack]
    assert deliverer.target_for("slack") is slack
    assert deliverer.target_for("discord") is catch_all
    assert not DeliveryTarget().handles("slack")


# -- targets -----------------------------------------------------------------------------------------


def _payloads() -> tuple[IncidentPost, IncidentUpdate, Digest]:
    news, kev = _record(1), _record(2, source="CISA KEV", exploited=True, severity=Severity.CRITICAL)
    post = IncidentPost("post:webhook:soc:k1", "k1", news, (news,), ("vendor:fortinet",), "slack", (news.id,))
    update = IncidentUpdate(
        "update:webhook:soc:k1:r2:4:1",
        "k1",
        kev,
        (news, kev),
        (FieldChange("exploited", False, True), FieldChange("severity", "high", "critical")),
        new_source=True,
        platform="slack",
    )
    return post, update, Digest("digest:webhook:soc:abc", (post,), ("kev",), "slack")


def test_webhook_signs_the_exact_body_and_sends_the_idempotency_key() -> None:
    post, update, digest = _payloads()
    with WebhookSink(secret="s3cret") as sink:
        target = WebhookTarget(sink.url, secret="s3cret")
        ref = target.post("soc", post)
        assert ref == PostRef("slack", "soc", "msg-1")
        target.update("soc", ref, update)
        target.post_digest("soc", digest)
        target.post("soc", post)  # a retry after a crash: the receiver dedupes it
        target.close()
        assert sink.rejected == 0
        assert [d.event for d in sink.received] == ["post", "update", "digest", "post"]
        assert len(sink.unique) == 3
        first = sink.received[0]
        assert first.headers["idempotency-key"] == post.key
        expected = "sha256=" + hmac.new(b"s3cret", first.raw, hashlib.sha256).hexdigest()
        assert first.headers[SIGNATURE_HEADER.lower()] == expected == sign("s3cret", first.raw)
        assert first.body["record"]["title"] == post.record.title and first.body["channel"] == "soc"
        assert sink.received[1].body["ref"]["message_id"] == "msg-1"
        assert sink.received[1].body["changes"][0] == {"field": "exploited", "before": False, "after": True}
        with pytest.raises(DeliveryRejected):
            WebhookTarget(sink.url, secret="wrong").post("soc", post)


def test_webhook_maps_statuses_to_retry_wait_or_give_up() -> None:
    post, _, _ = _payloads()
    with WebhookSink() as sink:
        target = WebhookTarget(sink.url)
        sink.fail_next(1, 429, {"Retry-After": "7"})
        with pytest.raises(RateLimited) as limited:
            target.post("soc", post)
        assert limited.value.retry_after == 7
        sink.fail_next(1, 503)
        with pytest.raises(DeliveryError) as transient:
            target.post("soc", post)
        assert not isinstance(transient.value, DeliveryRejected)
        sink.fail_next(1, 400)
        with pytest.raises(DeliveryRejected):
            target.post("soc", post)
    unreachable = WebhookTarget("http://127.0.0.1:9/hook", timeout=1)
    with pytest.raises(DeliveryError):
        unreachable.post("soc", post)


def test_webhook_without_secret_sends_no_signature() -> None:
    post, _, _ = _payloads()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    WebhookTarget("https://hooks.example.org/x", transport=httpx.MockTransport(handler)).post("soc", post)
    assert SIGNATURE_HEADER not in seen[0].headers and seen[0].headers["idempotency-key"] == post.key


def test_console_renders_posts_updates_and_digests() -> None:
    post, update, digest = _payloads()
    out = io.StringIO()
    console = ConsoleTarget(out)
    ref = console.post("#soc", post)
    console.update("#soc", ref, update)
    console.post_digest("#soc", digest)
    text = out.getvalue()
    assert "[#soc] [high/other] Fortinet FortiWeb flaw 1 exploited" in text
    assert "new source CISA KEV" in text and "exploited: no → yes" in text
    assert "1 new incidents" in text

    lines = io.StringIO()
    ConsoleTarget(lines, jsonl=True).post("#soc", post)
    event = json.loads(lines.getvalue())
    assert event["event"] == "post" and event["key"] == post.key and event["matched"] == [post.record.id]


def test_memory_target_is_thread_safe() -> None:
    post, _, _ = _payloads()
    target = MemoryTarget()
    threads = [threading.Thread(target=lambda: [target.post("c", post) for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({s.ref.message_id for s in target.sent}) == 200
