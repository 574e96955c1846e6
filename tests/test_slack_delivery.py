"""Feed posts in Slack: the delivery target against the fake Web API, alone and behind the real deliverer."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime

import pytest

from adapters.slack.client import web_client
from adapters.slack.delivery import METADATA_EVENT, SlackTarget
from adapters.slack.store import SlackStore
from bot.deliverer import Deliverer
from bot.delivery.base import (
    DeliveryError,
    DeliveryRejected,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateLimited,
)
from bot.outbox import Outbox, Planned, RowKind, RowStatus
from retrieval.database import Database
from retrieval.records import ThreatRecord
from tests.conftest import needs_model
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-9-9-deliverytoken"
NOW = datetime(2025, 11, 14, 18, 0, tzinfo=UTC)


def record(n: int, **fields) -> ThreatRecord:
    base = {
        "title": f"Fortinet FortiWeb flaw {n} exploited",
        "summary": "Attackers exploit a path traversal flaw in FortiWeb.",
        "published": datetime(2025, 11, 14, 12, n, tzinfo=UTC),
        "url": f"https://example.org/story/{n}",
        "source": "Example News",
        "severity": "high",
        "cves": ["CVE-2025-64446"],
    }
    return ThreatRecord(**(base | fields))


def incident(n: int, channel: str = "C1", *members: ThreatRecord) -> IncidentPost:
    r = record(n)
    return IncidentPost(
        f"post:slack:{channel}:cl{n}", f"cl{n}", r, (r, *members), ("vendor:fortinet",), "slack", (r.id,)
    )


@pytest.fixture
def fake():
    with FakeSlack(token=TOKEN) as slack:
        yield slack


@pytest.fixture
def target(fake, tmp_path):
    db = Database(tmp_path / "slack.sqlite3")
    client = web_client(TOKEN, base_url=fake.api_url, max_retry_wait=3)
    target = SlackTarget(client, SlackStore(db), clock=lambda: NOW)
    yield target
    db.close()


def test_a_new_incident_is_a_message_with_its_key_in_metadata_and_posted_once(fake, target) -> None:
    post = incident(1)
    ref = target.post("C1", post)
    [call] = fake.calls_to("chat.postMessage")
    assert ref == PostRef("slack", "C1", fake.channels["C1"][0]["ts"])
    assert call.params["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"key": post.key}}
    assert "Fortinet FortiWeb flaw 1 exploited" in call.all_text() and call.params["unfurl_links"] is False
    assert json.dumps(call.blocks).count("tb_vote_up") == 1
    # The deliverer sends the same payload again (a crash after the send): no second message.
    assert target.post("C1", post) == ref
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_a_send_cut_off_mid_way_is_found_in_the_channel_instead_of_posted_twice(fake, target) -> None:
    post = incident(2)
    ref = target.post("C1", post)
    # Simulate a process that died after Slack posted but before the ledger said so.
    target.store.begin_delivery(post.key, kind="post", channel="C1", headline_id=post.record.id, card_id="x")
    assert target.post("C1", post) == ref
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(fake.calls_to("conversations.history")) == 1
    # Died before Slack had it: looked for, not found, posted.
    other = incident(3)
    target.store.begin_delivery(other.key, kind="post", channel="C1", headline_id=other.record.id, card_id="x")
    target.post("C1", other)
    assert len(fake.calls_to("chat.postMessage")) == 2 and len(fake.calls_to("conversations.history")) == 2


def test_updates_reply_in_the_thread_and_edit_the_post_when_headline_facts_change(fake, target) -> None:
    post = incident(4)
    ref = target.post("C1", post)
    kev = record(40, title="CISA adds FortiWeb flaw to KEV", source="CISA KEV", severity="critical", exploited=True)
    news = IncidentUpdate("u1", "cl4", kev, (post.record, kev), (), True, "slack")
    assert target.update("C1", ref, news) == ref
    reply = fake.calls_to("chat.postMessage")[-1]
    assert reply.params["thread_ts"] == ref.message_id
    assert "*New report* from CISA KEV" in reply.all_text()
    assert fake.calls_to("chat.update") == []  # a new source alone leaves the headline as it was

    worse = IncidentUpdate(
        "u2",
        "cl4",
        kev,
        (post.record, kev),
        (FieldChange("severity", "high", "critical"), FieldChange("exploited", False, True)),
        True,
        "slack",
    )
    target.update("C1", ref, worse)
    assert "severity high → *critical*; now *exploited*" in fake.calls_to("chat.postMessage")[-1].all_text()
    [edit] = fake.calls_to("chat.update")
    assert edit.params["ts"] == ref.message_id
    top = edit.blocks[0]["text"]["text"]
    assert top.startswith("🔴 ") and "*Critical*" in top and "🔥 *exploited*" in top and "2 sources" in top
    assert "Fortinet FortiWeb flaw 4 exploited" in top  # still the original headline
    target.update("C1", ref, worse)  # the same update again: nothing new
    assert len(fake.calls_to("chat.postMessage")) == 3 and len(fake.calls_to("chat.update")) == 2


def test_a_burst_is_one_digest_and_updates_to_it_go_to_its_thread(fake, target) -> None:
    posts = tuple(incident(n, "C2") for n in range(5, 12))
    ref = target.post_digest("C2", Digest("digest:slack:C2:1", posts, ("vendor:fortinet",), "slack"))
    [call] = fake.calls_to("chat.postMessage")
    assert call.blocks[0]["text"]["text"] == "7 new incidents"
    assert all(p.record.title in call.all_text() for p in posts)
    target.update(
        "C2",
        ref,
        IncidentUpdate(
            "u3", "cl5", posts[0].record, (posts[0].record,), (FieldChange("severity", "high", "critical"),)
        ),
    )
    assert fake.calls_to("chat.postMessage")[-1].params["thread_ts"] == ref.message_id
    assert fake.calls_to("chat.update") == []  # a digest is not re-rendered


def test_http_429_is_waited_out_as_slack_says(fake, target) -> None:
    fake.fail_next("chat.postMessage", status=429, error="ratelimited", headers={"Retry-After": "1"})
    started = time.monotonic()
    ref = target.post("C3", incident(12, "C3"))
    first, second = fake.calls_to("chat.postMessage")
    assert second.at - first.at >= 1.0 and time.monotonic() - started < 5
    assert ref.message_id == fake.channels["C3"][0]["ts"]


def test_a_long_retry_after_goes_back_to_the_deliverer_and_refusals_are_final(fake, target) -> None:
    fake.fail_next("chat.postMessage", status=429, error="ratelimited", headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(RateLimited) as limited:
        target.post("C4", incident(13, "C4"))
    assert limited.value.retry_after == 30 and time.monotonic() - started < 3
    assert target.store.delivery("post:slack:C4:cl13") is None  # nothing was posted: no look-up next time

    fake.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(DeliveryRejected, match="channel_not_found"):
        target.post("C-gone", incident(14, "C-gone"))
    fake.fail_next("chat.postMessage", status=500, error="internal_error")
    with pytest.raises(DeliveryError) as failed:
        target.post("C4", incident(15, "C4"))
    assert not isinstance(failed.value, DeliveryRejected)
    bad = web_client("xoxb-wrong-token", base_url=fake.api_url)
    with pytest.raises(DeliveryRejected, match="invalid_auth"):
        SlackTarget(bad, target.store).post("C4", incident(16, "C4"))


@needs_model
def test_the_deliverer_paces_slack_posts_per_channel_and_threads_updates(fake, store) -> None:
    stories = [
        record(n, title=f"Distinct story {n} about {word}", cves=[])
        for n, word in enumerate(["tulips", "glaciers", "violins"])
    ]
    report = store.upsert(stories)
    records = [c.record for c in report.changes]
    outbox = Outbox(store.db)
    target = SlackTarget(web_client(TOKEN, base_url=fake.api_url), SlackStore(store.db))
    deliverer = Deliverer(outbox, store, [target])

    def planned_post(channel: str, r: ThreatRecord) -> Planned:
        payload = {"cluster_id": r.cluster_id, "record_ids": [r.id], "subscriptions": ["fortinet"]}
        return Planned(RowKind.POST, "slack", channel, f"post:slack:{channel}:{r.cluster_id}", payload, (r.cluster_id,))

    outbox.commit_plan(
        [planned_post("CBUSY", records[0]), planned_post("CBUSY", records[1]), planned_post("CQUIET", records[2])], []
    )
    result = deliverer.drain()
    assert result.sent == 3
    busy = [c.at for c in fake.calls_to("chat.postMessage") if c.params["channel"] == "CBUSY"]
    gaps = [b - a for a, b in itertools.pairwise(busy)]
    assert len(busy) == 2 and min(gaps) >= 0.9, gaps  # about one message per second per channel
    [claim] = [c for c in outbox.claims([records[0].cluster_id]) if c.channel == "CBUSY"]
    assert claim.status is RowStatus.SENT and claim.ref.message_id == fake.channels["CBUSY"][0]["ts"]

    update = {
        "record_id": records[0].id,
        "new_source": False,
        "changes": [{"field": "exploited", "before": False, "after": True}],
    }
    key = f"update:slack:CBUSY:{records[0].cluster_id}:{records[0].id}:3:1"
    outbox.commit_plan([Planned(RowKind.UPDATE, "slack", "CBUSY", key, update, cluster_id=records[0].cluster_id)], [])
    assert deliverer.drain().sent == 1
    reply = fake.calls_to("chat.postMessage")[-1]
    assert reply.params["thread_ts"] == claim.ref.message_id and "now *exploited*" in reply.all_text()
    assert fake.calls_to("chat.update")[-1].params["ts"] == claim.ref.message_id
