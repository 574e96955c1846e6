"""Delivery health (``bot.health``): a channel that cannot receive goes failing, then disabled with its
reason; its subscriber is told once; nothing is retried forever or dropped silently; ``resume`` brings
back what was waiting; a success resets it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.commands import Verb, parse_command
from bot.conversation import Conversation
from bot.deliverer import Deliverer, DeliveryPolicy
from bot.delivery.base import ChannelNotice, ChannelUnavailable
from bot.delivery.memory import MemoryTarget
from bot.health import DISABLED_PREFIX, ChannelHealth, ChannelState
from bot.messages import IncomingMessage
from bot.outbox import Outbox, Planned, RowKind, RowStatus
from bot.subscriptions import Subscriptions
from retrieval.records import ThreatRecord


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Telling(MemoryTarget):
    """A memory target whose platform can reach subscribers: it keeps the notices."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.notices: list[ChannelNotice] = []

    def notify_unavailable(self, channel: str, notice: ChannelNotice) -> bool:
        self.notices.append(notice)
        return True


def _post(channel: str, cluster: str, record_id: str) -> Planned:
    payload = {"cluster_id": cluster, "record_ids": [record_id], "subscriptions": ["fortinet"]}
    return Planned(RowKind.POST, "slack", channel, f"post:slack:{channel}:{cluster}", payload, (cluster,))


@pytest.fixture
def records(store):
    report = store.upsert(
        [
            ThreatRecord(
                title=f"Fortinet flaw {n} exploited",
                summary="Attackers exploit a path traversal flaw.",
                published=datetime(2025, 11, 14, 12, n, tzinfo=UTC),
                url=f"https://example.org/story/{n}",
                source="Example News",
            )
            for n in range(4)
        ]
    )
    return [c.record for c in report.changes]


def test_a_channel_that_cannot_receive_is_disabled_after_three_failures_and_told_once(store, records) -> None:
    clock = Clock()
    gone = {"C-gone"}

    def fail(verb, channel, payload):
        if channel in gone:
            raise ChannelUnavailable(
                "channel_not_found", reason="the bot is not in the channel", code="channel_not_found"
            )

    target = Telling(platform="slack", fail=fail)
    outbox = Outbox(store.db, clock=clock)
    book = Subscriptions(store.db)
    sub = book.subscribe(platform="slack", channel="C-gone", query="fortinet", created_by="U0SUBSCRIBER")
    deliverer = Deliverer(
        outbox, store, [target], policy=DeliveryPolicy(base_backoff=10), clock=clock, subscriptions=book
    )
    outbox.commit_plan([_post("C-gone", r.cluster_id or r.id, r.id) for r in records[:3]], [])
    outbox.commit_plan([_post("C-ok", records[3].cluster_id or records[3].id, records[3].id)], [])

    first = deliverer.deliver_due()
    assert first.retried == 1 and first.sent == 1  # the other channel is not held up
    health = ChannelHealth(store.db)
    assert health.get("slack", "C-gone").state is ChannelState.FAILING
    assert book.get(sub.id).status == "failing"
    assert deliverer.deliver_due().retried == 0, "the whole channel waits out its back-off"

    rounds = 0
    while health.get("slack", "C-gone").state is not ChannelState.DISABLED:
        clock.now += 3600
        deliverer.deliver_due()
        rounds += 1
        assert rounds < 5, "never retried forever"
    status = health.get("slack", "C-gone")
    assert status.failures == 3 and status.reason == "the bot is not in the channel"
    # Every message waiting for that channel ended with the reason: none is left to spin, none vanished.
    rows = [r for r in outbox.rows(limit=50) if r.channel == "C-gone"]
    assert rows and all(r.status is RowStatus.DEAD and r.last_error.startswith(DISABLED_PREFIX) for r in rows)
    # Told once, with what stopped and how to resume.
    [notice] = target.notices
    assert notice.subscribers == ("U0SUBSCRIBER",) and "resume" in notice.text()
    assert book.get(sub.id).status == "disabled" and "not in the channel" in book.get(sub.id).problem

    # Nothing more is planned or sent there while disabled; a second notice never comes.
    clock.now += 3600
    assert deliverer.deliver_due().sent == 0
    assert len(target.notices) == 1

    # Fixed and resumed: what was waiting goes out, and the channel is healthy again.
    gone.clear()
    assert book.resume(platform="slack", channel="C-gone") == 3
    assert deliverer.deliver_due().sent == 3
    assert health.get("slack", "C-gone").state is ChannelState.OK
    assert book.resume(platform="slack", channel="C-gone") == -1


def test_a_success_resets_a_failing_channel(store, records) -> None:
    clock = Clock()
    failures = iter([True, False])

    def fail(verb, channel, payload):
        if next(failures):
            raise ChannelUnavailable("not_in_channel", reason="the bot is not in the channel", code="not_in_channel")

    outbox = Outbox(store.db, clock=clock)
    deliverer = Deliverer(outbox, store, [MemoryTarget(platform="slack", fail=fail)], clock=clock)
    outbox.commit_plan([_post("C1", records[0].cluster_id or records[0].id, records[0].id)], [])
    assert deliverer.deliver_due().retried == 1
    clock.now += 3600
    assert deliverer.deliver_due().sent == 1
    assert ChannelHealth(store.db).get("slack", "C1").state is ChannelState.OK


def test_chat_shows_the_channels_health_and_resume_re_enables_it(store) -> None:
    book = Subscriptions(store.db)
    sub = book.subscribe(platform="slack", channel="C9", query="kev", created_by="U1")
    health = ChannelHealth(store.db, disable_after=2)
    for _ in range(2):
        health.record_failure("slack", "C9", reason="the channel is archived", code="is_archived")
    core = Conversation(store, subscriptions=book)

    def say(text: str, manager: bool = True):
        return core.handle(IncomingMessage(text, platform="slack", channel="C9", user_id="U1", can_manage=manager))

    listing = say("subscriptions")
    assert sub.id in listing.text and "disabled: the channel is archived (2 failures in a row)" in listing.text
    assert "`resume`" in listing.text
    again = say("subscribe fortinet")
    assert "Subscribed this channel" in again.text and "⚠ Posts to this channel are disabled" in again.text
    assert parse_command("resume").verb is Verb.RESUME
    assert "Only people who manage" in say("resume", manager=False).text
    assert say("resume").text.startswith("Resumed")
    assert "⚠" not in say("subscriptions").text
    assert "were not paused" in say("resume").text


def test_the_planner_queues_nothing_for_a_disabled_channel(store) -> None:
    from bot.poller import DeliveryPlanner

    book = Subscriptions(store.db)
    book.subscribe(platform="slack", channel="C-off", query="fortinet", created_by="U1", created_at=0)
    book.subscribe(platform="slack", channel="C-on", query="fortinet", created_by="U1", created_at=0)
    health = ChannelHealth(store.db, disable_after=1)
    health.record_failure("slack", "C-off", reason="gone", code="channel_not_found")
    outbox = Outbox(store.db)
    planner = DeliveryPlanner(store, book, outbox)
    store.upsert(
        [
            ThreatRecord(
                title="Fortinet FortiGate flaw exploited",
                summary="Fortinet warns of attacks.",
                published=datetime.now(UTC),
                url="https://example.org/forti",
                source="Example News",
                vendors=["Fortinet"],
            )
        ]
    )
    planner.plan()
    channels = {r.channel for r in outbox.rows(limit=20)}
    assert channels == {"C-on"}


def test_an_incident_matching_several_subscriptions_of_a_channel_is_posted_there_once(store) -> None:
    from bot.poller import DeliveryPlanner

    book = Subscriptions(store.db)
    for query in ("fortinet", "exploited", "vendor:fortinet"):
        book.subscribe(platform="slack", channel="C-one", query=query, created_by="U1", created_at=0)
    outbox = Outbox(store.db)
    store.upsert(
        [
            ThreatRecord(
                title="Fortinet FortiGate flaw exploited in attacks",
                summary="Fortinet warns that attackers exploit the flaw.",
                published=datetime.now(UTC),
                url="https://example.org/forti-exploited",
                source="Example News",
                vendors=["Fortinet"],
                exploited=True,
            )
        ]
    )
    report = DeliveryPlanner(store, book, outbox).plan()
    [row] = outbox.rows(limit=10)
    assert report.posts == 1 and row.channel == "C-one"
    assert len(row.payload["subscriptions"]) >= 2  # one post saying which of the channel's queries it matched
