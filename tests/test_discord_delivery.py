"""Feed delivery through the bot's REST API (``DiscordTarget``) against the fake Discord, with real discord.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.discord.delivery import DiscordTarget, nonce_for
from bot.delivery.base import (
    DeliveryRejected,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateLimited,
)
from retrieval.records import Severity, ThreatRecord
from tests.fakes.discord_api import BOT_TOKEN, CHANNEL_ID, FakeDiscord, serving_discord

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)


def record(n: int, **fields) -> ThreatRecord:
    base = {
        "title": f"Incident {n}",
        "published": NOW - timedelta(minutes=n),
        "url": f"https://news.example.org/{n}",
        "source": f"Source {n % 3}",
        "severity": Severity.HIGH,
    }
    return ThreatRecord(**{**base, **fields})


def post(n: int, channel: int = CHANNEL_ID) -> IncidentPost:
    rec = record(n)
    return IncidentPost(f"post:discord:{channel}:{rec.id}", rec.id, rec, (rec,), ("outages",), "discord", (rec.id,))


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with serving_discord() as server:
        yield server


@pytest.fixture
def target(fake) -> Iterator[DiscordTarget]:
    sender = DiscordTarget(BOT_TOKEN)  # waits of up to 60 s are discord.py's to sit out
    yield sender
    sender.close()


def test_an_incident_is_posted_as_one_embed_without_pings_and_deduped_by_nonce(fake, target) -> None:
    incident = post(1)
    ref = target.post(str(CHANNEL_ID), incident)
    (message,) = fake.bot_messages(CHANNEL_ID)
    assert ref == PostRef("discord", str(CHANNEL_ID), message["id"])
    assert message["embeds"][0]["title"] == "Incident 1" and message["embeds"][0]["url"] == incident.record.url
    (call,) = fake.find("POST", r"^/channels/\d+/messages$")
    assert call.body["allowed_mentions"] == {"parse": []}
    assert call.body["nonce"] == nonce_for(incident.key) and call.body["enforce_nonce"] is True
    assert len(nonce_for(incident.key)) <= 25
    # The deliverer's retry after a crash sends the same key again: Discord returns the first message.
    assert target.post(str(CHANNEL_ID), incident) == ref
    assert len(fake.bot_messages(CHANNEL_ID)) == 1


def test_updates_open_the_incidents_thread_once_and_reply_there(fake, target) -> None:
    incident = post(2)
    ref = target.post(str(CHANNEL_ID), incident)
    first = IncidentUpdate(
        "u1", incident.cluster_id, incident.record, incident.members, (FieldChange("exploited", False, True),)
    )
    ref2 = target.update(str(CHANNEL_ID), ref, first)
    assert ref2.thread_id == ref.message_id and ref2.message_id == ref.message_id
    thread = fake.threads[int(ref.message_id)]
    assert thread["name"] == "Incident 2" and thread["thread_metadata"]["auto_archive_duration"] == 10080
    newcomer = record(20, title="CISA adds it to KEV")
    second = IncidentUpdate("u2", incident.cluster_id, newcomer, (*incident.members, newcomer), (), new_source=True)
    assert target.update(str(CHANNEL_ID), ref2, second) == ref2
    replies = fake.bot_messages(int(ref.message_id))
    assert [m["embeds"][0]["title"] for m in replies] == ["Update: Incident 2", "Update: CISA adds it to KEV"]
    assert len(fake.find("POST", r"/threads$")) == 1
    assert len(fake.bot_messages(CHANNEL_ID)) == 1  # the channel itself only has the incident


def test_a_lost_thread_ref_finds_the_existing_thread(fake, target) -> None:
    incident = post(3)
    ref = target.post(str(CHANNEL_ID), incident)
    update = IncidentUpdate("u1", incident.cluster_id, incident.record, incident.members, ())
    target.update(str(CHANNEL_ID), ref, update)
    # A ref stored before the thread existed (e.g. a crash before the commit) still lands in the thread.
    again = target.update(
        str(CHANNEL_ID), ref, IncidentUpdate("u2", incident.cluster_id, incident.record, incident.members, ())
    )
    assert again.thread_id == ref.message_id
    assert len(fake.bot_messages(int(ref.message_id))) == 2


def test_where_no_thread_can_be_opened_the_update_replies_to_the_post(fake, target) -> None:
    dm = fake.dm_channel()
    incident = post(4, dm)
    ref = target.post(str(dm), incident)
    result = target.update(
        str(dm), ref, IncidentUpdate("u1", incident.cluster_id, incident.record, incident.members, ())
    )
    assert result.thread_id is None
    reply = fake.bot_messages(dm)[-1]
    assert str(reply["message_reference"]["message_id"]) == ref.message_id
    assert reply["allowed_mentions"] == {"parse": [], "replied_user": False}


def test_a_digest_is_one_message(fake, target) -> None:
    items = tuple(post(n) for n in range(30))
    ref = target.post_digest(str(CHANNEL_ID), Digest("digest:1", items, ("outages",), "discord"))
    (message,) = fake.bot_messages(CHANNEL_ID)
    assert ref.message_id == message["id"]
    assert message["embeds"][0]["title"] == "30 new incidents matching “outages”"
    text = "\n".join(e.get("description", "") for e in message["embeds"])
    assert all(f"[Incident {n}](https://news.example.org/{n})" in text for n in range(30))


def test_a_429_is_waited_out_by_discord_py(fake, target) -> None:
    target.post(str(CHANNEL_ID), post(5))  # logged in; now the next send is rate limited
    fake.rate_limit("POST", r"^/channels/\d+/messages$", retry_after=0.5)
    started = time.monotonic()
    target.post(str(CHANNEL_ID), post(6))
    limited, retried = fake.find("POST", r"^/channels/\d+/messages$")[1:]
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at - limited.at >= 0.45
    assert time.monotonic() - started >= 0.45
    assert len(fake.bot_messages(CHANNEL_ID)) == 2


def test_a_long_rate_limit_comes_back_to_the_deliverer(fake, target) -> None:
    target.post(str(CHANNEL_ID), post(7))
    fake.rate_limit("POST", r"^/channels/\d+/messages$", retry_after=90.0)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        target.post(str(CHANNEL_ID), post(8))
    assert caught.value.retry_after == pytest.approx(90.0)
    assert time.monotonic() - started < 5  # handed back at once, not slept through


def test_bad_channels_are_rejected_for_good(fake, target) -> None:
    with pytest.raises(DeliveryRejected, match="not a Discord channel id"):
        target.post("#general", post(9))
    with pytest.raises(DeliveryRejected, match="HTTP 404"):
        target.post("1100000000000077777", post(9))


def test_a_wrong_token_is_rejected(fake) -> None:
    sender = DiscordTarget("not-the-token")
    try:
        with pytest.raises(DeliveryRejected, match="refused the bot token"):
            sender.post(str(CHANNEL_ID), post(10))
    finally:
        sender.close()
