"""Webhook-only mode: the feed through a channel webhook URL, against the fake Discord, token never logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.discord.config import DiscordSettings
from adapters.discord.webhook import DiscordWebhookTarget, parse_webhook_url
from bot.delivery.base import DeliveryRejected, Digest, FieldChange, IncidentPost, IncidentUpdate
from retrieval.records import Severity, ThreatRecord
from tests.fakes.discord_api import CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, FakeDiscord, serving_discord

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
TOKEN = "aB3_" + "x" * 64
HOOK = f"https://discord.com/api/webhooks/1234567890123456789/{TOKEN}"


def incident(n: int) -> IncidentPost:
    rec = ThreatRecord(
        title=f"Outage {n}",
        published=NOW,
        url=f"https://status.example.org/{n}",
        source="Status",
        severity=Severity.HIGH,
    )
    return IncidentPost(f"post:discord-webhook:secops:{rec.id}", rec.id, rec, (rec,), ("outages",), "discord-webhook")


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with serving_discord() as server:
        yield server


# -- URLs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        HOOK,
        HOOK.replace("discord.com", "discordapp.com"),
        HOOK.replace("discord.com", "ptb.discord.com"),
        HOOK.replace("discord.com", "canary.discord.com"),
        HOOK.replace("/api/", "/api/v10/"),
        HOOK + "?thread_id=1100000000000000777",
    ],
)
def test_discord_webhook_urls_are_accepted(url: str) -> None:
    address = parse_webhook_url(url)
    assert address.id == 1234567890123456789 and address.token == TOKEN
    assert TOKEN not in repr(address) and TOKEN not in str(address)


@pytest.mark.parametrize(
    "url",
    [
        HOOK.replace("https://", "http://"),
        HOOK.replace("discord.com", "discord.com.evil.example"),
        HOOK.replace("discord.com", "evil.example/discord.com"),
        f"https://hooks.slack.com/services/T000/B000/{TOKEN}",
        f"https://discord.com/api/webhooks/notanid/{TOKEN}",
        "https://discord.com/api/webhooks/1234567890123456789",
        "",
    ],
)
def test_anything_else_is_refused_without_echoing_the_token(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_webhook_url(url)
    assert TOKEN not in str(caught.value)


def test_a_test_may_allow_a_webhook_on_the_api_it_points_at(fake) -> None:
    local = f"{fake.api_url.removesuffix('/v10')}/webhooks/42/{TOKEN}"
    with pytest.raises(ValueError, match="not a Discord webhook URL"):
        parse_webhook_url(local)
    assert parse_webhook_url(local, allow_any_host=True).id == 42
    with pytest.raises(ValueError, match="not on the Discord API"):
        parse_webhook_url(f"http://127.0.0.1:1/api/webhooks/42/{TOKEN}", allow_any_host=True)


def test_the_environment_names_webhooks_per_channel() -> None:
    settings = DiscordSettings.from_env(
        {"THREATBOT_DISCORD_WEBHOOKS": f"secops={HOOK}, cloud={HOOK}", "THREATBOT_DISCORD_WEBHOOK_URL": HOOK}
    )
    assert set(settings.webhooks) == {"secops", "cloud", "*"}
    assert TOKEN not in repr(settings)
    with pytest.raises(ValueError) as caught:
        DiscordSettings.from_env({"THREATBOT_DISCORD_WEBHOOKS": HOOK})
    assert TOKEN not in str(caught.value)


# -- delivery -----------------------------------------------------------------------------------------------


def test_posts_updates_and_digests_go_through_the_webhook_and_the_token_is_never_logged(fake, caplog) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    token = url.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    target = DiscordWebhookTarget({"secops": url}, pace=0)
    try:
        assert token not in repr(target)
        ref = target.post("secops", incident(1))
        (message,) = fake.channel_messages(CHANNEL_ID)
        assert ref.message_id == message["id"] and message["webhook_id"]
        assert message["embeds"][0]["title"] == "Outage 1"
        assert ref.url == f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{message['id']}"
        post = incident(1)
        update = IncidentUpdate(
            "u1", post.cluster_id, post.record, post.members, (FieldChange("severity", "high", "critical"),)
        )
        assert target.update("secops", ref, update) == ref
        posted = fake.channel_messages(CHANNEL_ID)[-1]["embeds"][0]
        assert posted["title"] == "Update: Outage 1"
        assert {"name": "Original post", "value": ref.url, "inline": False} in posted["fields"]
        target.post_digest(
            "secops", Digest("d1", tuple(incident(n) for n in range(8)), ("outages",), "discord-webhook")
        )
        digest = fake.channel_messages(CHANNEL_ID)[-1]["embeds"]
        assert digest[0]["title"] == "8 new incidents matching “outages”"
        assert digest[-1]["footer"]["text"] == "Updates to any of them follow as separate messages."
        sends = fake.find("POST", r"^/webhooks/")
        assert len(sends) == 3 and all(c.body["allowed_mentions"] == {"parse": []} for c in sends)
        with pytest.raises(DeliveryRejected, match="no Discord webhook configured for channel 'other'"):
            target.post("other", incident(2))
    finally:
        target.close()
    assert any("webhook" in r.getMessage().lower() for r in caplog.records)  # discord.py did log the requests…
    assert not [r for r in caplog.records if token in r.getMessage()]  # …without the token


def test_a_thread_id_in_the_url_posts_into_that_thread(fake) -> None:
    thread_id = fake.add_thread(OTHER_CHANNEL_ID, "feed goes here")
    target = DiscordWebhookTarget(fake.add_webhook(OTHER_CHANNEL_ID) + f"?thread_id={thread_id}")
    try:
        ref = target.post("anything", incident(3))
    finally:
        target.close()
    assert ref.thread_id == str(thread_id)
    assert [m["embeds"][0]["title"] for m in fake.channel_messages(thread_id)] == ["Outage 3"]


def test_a_webhook_429_is_waited_out(fake) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    target = DiscordWebhookTarget(url, pace=0)
    try:
        target.post("any", incident(4))
        fake.rate_limit("POST", r"^/webhooks/\d+/", retry_after=0.4)
        target.post("any", incident(5))
    finally:
        target.close()
    limited, retried = fake.find("POST", r"^/webhooks/")[1:]
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at - limited.at >= 0.35
    assert len(fake.channel_messages(CHANNEL_ID)) == 2


def test_a_deleted_webhook_is_rejected_and_the_error_hides_the_token(fake) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    token = url.rsplit("/", 1)[1]
    fake.webhooks.clear()
    target = DiscordWebhookTarget(url)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryRejected) as caught:
            target.post("any", incident(6))
        assert time.monotonic() - started < 5
    finally:
        target.close()
    assert "HTTP 404" in str(caught.value) and token not in str(caught.value)
    assert caught.value.__cause__ is None
