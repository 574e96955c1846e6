"""Where feed posts can and cannot go on Discord: every documented refusal ends in a clear state.

The fake Discord enforces Discord's documented rules (permissions per channel, forum and media
channels, archived and locked threads, deleted webhooks and channels, the nonce window); these tests
run the real delivery targets through it and check that each failure is either handled (a forum post,
a reply instead of a thread) or raised as :class:`~bot.delivery.base.ChannelUnavailable` with a reason
a person can act on — never a silent success and never an error the deliverer would retry forever.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.discord.delivery import DiscordTarget
from adapters.discord.webhook import DiscordWebhookTarget
from bot.delivery.base import (
    ChannelUnavailable,
    DeliveryRejected,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    RateLimited,
)
from retrieval.records import Severity, ThreatRecord
from tests.fakes.discord_api import (
    BOT_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    CREATE_PUBLIC_THREADS,
    EMBED_LINKS,
    GUILD_FORUM,
    GUILD_ID,
    GUILD_MEDIA,
    GUILD_VOICE,
    NONCE_WINDOW,
    OTHER_CHANNEL_ID,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    FakeDiscord,
    serving_discord,
)

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)


def record(n: int, **fields) -> ThreatRecord:
    base = {
        "title": f"Incident {n}",
        "published": NOW - timedelta(minutes=n),
        "url": f"https://news.example.org/{n}",
        "source": "Vendor advisories",
        "severity": Severity.HIGH,
    }
    return ThreatRecord(**{**base, **fields})


def post(n: int, channel: int | str = CHANNEL_ID, platform: str = "discord") -> IncidentPost:
    rec = record(n)
    return IncidentPost(f"post:{platform}:{channel}:{rec.id}", rec.id, rec, (rec,), ("outages",), platform, (rec.id,))


def update_of(incident: IncidentPost, key: str = "u1") -> IncidentUpdate:
    change = (FieldChange("exploited", False, True),)
    return IncidentUpdate(
        key, incident.cluster_id, incident.record, incident.members, change, platform=incident.platform
    )


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with serving_discord() as server:
        yield server


@pytest.fixture
def target(fake) -> Iterator[DiscordTarget]:
    sender = DiscordTarget(BOT_TOKEN)
    yield sender
    sender.close()


def raw(fake: FakeDiscord, method: str, path: str, body: dict | None = None, query: str = "") -> tuple[int, dict]:
    """A request to the fake as Discord's REST API, without discord.py: the fake's own rules, checked alone."""
    request = urllib.request.Request(
        f"{fake.api_url}{path}{query}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bot {fake.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def unavailable(call) -> ChannelUnavailable:
    with pytest.raises(ChannelUnavailable) as caught:
        call()
    return caught.value


# -- the fake's rules, as Discord documents them ---------------------------------------------------------------


def test_the_fake_refuses_what_discord_refuses(fake) -> None:
    embed = {"embeds": [{"title": "x", "description": "y"}]}
    forum = fake.add_channel("feeds", GUILD_FORUM)
    assert raw(fake, "POST", f"/channels/{forum}/messages", embed)[1]["code"] == 50008
    voice = fake.add_channel("voice", GUILD_VOICE)
    assert raw(fake, "POST", f"/channels/{voice}/messages", embed)[1]["code"] == 50008
    assert raw(fake, "POST", "/channels/1100000000000077777/messages", embed) == (
        404,
        {"code": 10003, "message": "Unknown Channel"},
    )
    # A forum takes posts: a thread and its first message, with the thread's id.
    status, created = raw(fake, "POST", f"/channels/{forum}/threads", {"name": "A post", "message": embed})
    assert status == 201 and created["message"]["id"] == created["id"] and created["parent_id"] == str(forum)
    # Webhooks into forums need thread_name or thread_id, not both; thread_name elsewhere is refused.
    hook = fake.add_webhook(forum).split("/api")[1]
    assert raw(fake, "POST", hook, embed, "?wait=true")[1]["code"] == 220001
    both = {**embed, "thread_name": "x"}
    assert raw(fake, "POST", hook, both, f"?wait=true&thread_id={created['id']}")[1]["code"] == 220002
    text_hook = fake.add_webhook(CHANNEL_ID).split("/api")[1]
    assert raw(fake, "POST", text_hook, both, "?wait=true")[1]["code"] == 220003
    fake.delete_webhook(text_hook)
    assert raw(fake, "POST", text_hook, embed, "?wait=true") == (404, {"code": 10015, "message": "Unknown Webhook"})


def test_the_fake_computes_permissions_per_channel(fake) -> None:
    embed = {"embeds": [{"title": "x"}]}
    fake.deny_bot(CHANNEL_ID, SEND_MESSAGES)
    assert raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", embed)[:1] == (403,)
    assert raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", embed)[1]["code"] == 50013
    assert raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", embed)[0] == 200  # only that channel
    # @everyone denied View Channel hides the channel even though the bot's role allows it.
    fake.set_overwrite(OTHER_CHANNEL_ID, GUILD_ID, deny=VIEW_CHANNEL)
    assert raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", embed)[1]["code"] == 50001
    fake.set_overwrite(OTHER_CHANNEL_ID, BOT_ID, allow=VIEW_CHANNEL)  # a member allow wins
    assert raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", embed)[0] == 200
    # Without Embed Links the embeds are dropped, and an embed-only message is empty.
    fake.deny_bot(OTHER_CHANNEL_ID, EMBED_LINKS)
    assert raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", embed)[1]["code"] == 50006
    status, message = raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", {**embed, "content": "hi"})
    assert status == 200 and message["embeds"] == []
    fake.remove_bot()
    assert raw(fake, "POST", f"/channels/{OTHER_CHANNEL_ID}/messages", embed)[1]["code"] == 50001


def test_the_nonce_dedupes_only_for_a_few_minutes(fake) -> None:
    body = {"content": "once", "nonce": "tb-123", "enforce_nonce": True}
    _, first = raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", body)
    _, again = raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", body)
    assert again["id"] == first["id"]
    fake.advance(NONCE_WINDOW + 1)
    _, later = raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", body)
    assert later["id"] != first["id"]
    assert raw(fake, "POST", f"/channels/{CHANNEL_ID}/messages", {**body, "nonce": "x" * 26})[1]["code"] == 50035


def test_archived_threads_reopen_on_a_message_and_locked_ones_refuse(fake) -> None:
    thread = fake.add_thread(CHANNEL_ID)
    fake.archive_thread(thread)
    assert raw(fake, "POST", f"/channels/{thread}/messages", {"content": "hello"})[0] == 200
    assert fake.threads[thread]["thread_metadata"]["archived"] is False
    fake.archive_thread(thread, locked=True)
    assert raw(fake, "POST", f"/channels/{thread}/messages", {"content": "hello"})[1]["code"] == 50083
    fake.threads[thread]["thread_metadata"]["archived"] = False
    assert raw(fake, "POST", f"/channels/{thread}/messages", {"content": "hello"})[1]["code"] == 160005


# -- the bot's target -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("break_it", "code", "reason"),
    [
        (lambda fake: fake.delete_channel(CHANNEL_ID), "10003", "Unknown Channel: the channel was deleted"),
        (lambda fake: fake.deny_bot(CHANNEL_ID, VIEW_CHANNEL), "50001", "Missing Access"),
        (lambda fake: fake.remove_bot(), "50001", "removed from the server"),
        (lambda fake: fake.deny_bot(CHANNEL_ID, SEND_MESSAGES), "50013", "Missing Permissions: Send Messages"),
        (lambda fake: fake.deny_bot(CHANNEL_ID, EMBED_LINKS), "50006", "Missing Permissions: Embed Links"),
    ],
)
def test_a_channel_that_cannot_receive_raises_channel_unavailable(fake, target, break_it, code, reason) -> None:
    target.post(str(CHANNEL_ID), post(1))  # it worked before
    break_it(fake)
    failure = unavailable(lambda: target.post(str(CHANNEL_ID), post(2)))
    assert failure.code == code and reason in failure.reason
    assert isinstance(failure, DeliveryRejected)  # final: the deliverer does not retry it


def test_a_channel_that_takes_no_messages_is_unavailable(fake, target) -> None:
    voice = fake.add_channel("stand-up", GUILD_VOICE)
    failure = unavailable(lambda: target.post(str(voice), post(1)))
    assert failure.code == "50008" and "takes no messages" in failure.reason


def test_a_digest_and_an_update_to_a_broken_channel_are_unavailable_too(fake, target) -> None:
    incident = post(1)
    ref = target.post(str(CHANNEL_ID), incident)
    fake.deny_bot(CHANNEL_ID, SEND_MESSAGES | SEND_MESSAGES_IN_THREADS | CREATE_PUBLIC_THREADS)
    failure = unavailable(lambda: target.update(str(CHANNEL_ID), ref, update_of(incident)))
    assert failure.code == "50013"
    digest = Digest("digest:1", (post(2), post(3)), ("outages",), "discord")
    assert unavailable(lambda: target.post_digest(str(CHANNEL_ID), digest)).code == "50013"


def test_in_a_thread_posts_go_into_it_and_a_missing_thread_permission_is_named(fake, target) -> None:
    thread = fake.add_thread(CHANNEL_ID, "feed thread")
    fake.archive_thread(thread)
    incident = post(1, thread)
    ref = target.post(str(thread), incident)
    assert [m["id"] for m in fake.bot_messages(thread)] == [ref.message_id]
    assert fake.bot_messages(CHANNEL_ID) == []  # not its parent
    assert fake.threads[thread]["thread_metadata"]["archived"] is False  # Discord reopened it
    # Updates reply to the post inside the thread (a thread has no threads).
    result = target.update(str(thread), ref, update_of(incident))
    assert result.thread_id is None
    assert fake.bot_messages(thread)[-1]["message_reference"]["message_id"] in (ref.message_id, int(ref.message_id))
    fake.deny_bot(CHANNEL_ID, SEND_MESSAGES_IN_THREADS)
    failure = unavailable(lambda: target.post(str(thread), post(2, thread)))
    assert failure.reason == "Missing Permissions: Send Messages in Threads"
    fake.archive_thread(thread, locked=True)
    assert unavailable(lambda: target.post(str(thread), post(3, thread))).code == "50083"


def test_a_locked_thread_refuses_and_a_deleted_one_is_unknown(fake, target) -> None:
    thread = fake.add_thread(CHANNEL_ID, "feed thread")
    fake.archive_thread(thread, locked=True)
    fake.threads[thread]["thread_metadata"]["archived"] = False
    failure = unavailable(lambda: target.post(str(thread), post(1, thread)))
    assert (failure.code, failure.reason) == ("160005", "the thread is locked")
    fake.delete_channel(thread)
    assert unavailable(lambda: target.post(str(thread), post(2, thread))).code == "10003"


@pytest.mark.parametrize("kind", [GUILD_FORUM, GUILD_MEDIA])
def test_in_a_forum_each_incident_is_its_own_post_and_updates_go_into_it(fake, target, kind) -> None:
    forum = fake.add_channel("threat-feed", kind)
    first, second = post(1, forum), post(2, forum)
    ref = target.post(str(forum), first)
    assert ref.thread_id == ref.message_id and int(ref.thread_id) in fake.threads
    thread = fake.threads[int(ref.thread_id)]
    assert thread["parent_id"] == str(forum) and thread["name"] == "Incident 1"
    (opening,) = fake.bot_messages(int(ref.thread_id))
    assert opening["embeds"][0]["title"] == "Incident 1"
    other = target.post(str(forum), second)
    assert other.thread_id != ref.thread_id  # one post per incident
    # The deliverer's retry after a crash finds the post instead of opening another.
    assert target.post(str(forum), first) == ref
    assert len([t for t in fake.threads.values() if t["parent_id"] == str(forum)]) == 2
    # Updates go into the incident's post, never into the forum itself.
    assert target.update(str(forum), ref, update_of(first)).thread_id == ref.thread_id
    assert [m["embeds"][0]["title"] for m in fake.bot_messages(int(ref.thread_id))][-1] == "Update: Incident 1"
    digest = Digest("digest:f", (post(3, forum), post(4, forum)), ("outages",), "discord")
    digest_ref = target.post_digest(str(forum), digest)
    assert fake.threads[int(digest_ref.thread_id)]["name"].startswith("2 new incidents")
    assert fake.limit_violations == []


def test_a_forum_post_that_was_locked_rejects_the_update_without_blaming_the_forum(fake, target) -> None:
    forum = fake.add_channel("threat-feed", GUILD_FORUM)
    incident = post(1, forum)
    ref = target.post(str(forum), incident)
    fake.archive_thread(int(ref.thread_id), locked=True)
    with pytest.raises(DeliveryRejected) as caught:
        target.update(str(forum), ref, update_of(incident))
    assert not isinstance(caught.value, ChannelUnavailable)  # one post is locked, the forum is fine
    assert target.post(str(forum), post(2, forum)).thread_id


def test_a_forum_without_send_messages_is_unavailable(fake, target) -> None:
    forum = fake.add_channel("threat-feed", GUILD_FORUM)
    fake.deny_bot(forum, SEND_MESSAGES)
    failure = unavailable(lambda: target.post(str(forum), post(1, forum)))
    assert failure.reason == "Missing Permissions: Send Messages"


def test_without_thread_permissions_updates_reply_and_without_history_they_are_plain(fake, target) -> None:
    incident = post(1)
    ref = target.post(str(CHANNEL_ID), incident)
    fake.deny_bot(CHANNEL_ID, CREATE_PUBLIC_THREADS)
    assert target.update(str(CHANNEL_ID), ref, update_of(incident)).thread_id is None
    assert fake.bot_messages(CHANNEL_ID)[-1]["message_reference"]["message_id"] in (ref.message_id, int(ref.message_id))
    fake.deny_bot(CHANNEL_ID, CREATE_PUBLIC_THREADS | READ_MESSAGE_HISTORY)
    target.update(str(CHANNEL_ID), ref, update_of(incident, "u2"))
    last = fake.bot_messages(CHANNEL_ID)[-1]
    assert "message_reference" not in last and last["embeds"][0]["title"] == "Update: Incident 1"


def test_an_update_in_a_locked_feed_thread_replies_in_the_channel(fake, target) -> None:
    incident = post(1)
    ref = target.post(str(CHANNEL_ID), incident)
    ref = target.update(str(CHANNEL_ID), ref, update_of(incident))
    fake.archive_thread(int(ref.thread_id), locked=True)
    target.update(str(CHANNEL_ID), ref, update_of(incident, "u2"))
    assert fake.bot_messages(CHANNEL_ID)[-1]["message_reference"]["message_id"] in (ref.message_id, int(ref.message_id))


# -- the webhook target -----------------------------------------------------------------------------------------


def webhook_target(fake: FakeDiscord, urls: dict[str, str] | str, **options) -> DiscordWebhookTarget:
    options.setdefault("pace", 0)
    return DiscordWebhookTarget(urls, **options)


def test_a_deleted_webhook_is_unavailable_with_its_reason(fake) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    target = webhook_target(fake, url)
    try:
        target.post("secops", post(1, "secops", "discord-webhook"))
        fake.delete_webhook(url)
        failure = unavailable(lambda: target.post("secops", post(2, "secops", "discord-webhook")))
        assert (failure.code, failure.reason) == ("10015", "Unknown Webhook: the webhook was deleted")
        assert url.rsplit("/", 1)[1] not in str(failure)  # the token stays secret
    finally:
        target.close()


def test_deleting_the_channel_deletes_its_webhook(fake) -> None:
    url = fake.add_webhook(OTHER_CHANNEL_ID)
    target = webhook_target(fake, url)
    try:
        fake.delete_channel(OTHER_CHANNEL_ID)
        assert unavailable(lambda: target.post("x", post(1, "x", "discord-webhook"))).code == "10015"
    finally:
        target.close()


def test_a_forum_webhook_opens_a_post_per_incident_and_updates_go_into_it(fake) -> None:
    forum = fake.add_channel("threat-feed", GUILD_FORUM)
    target = webhook_target(fake, fake.add_webhook(forum))
    try:
        incident = post(1, "feed", "discord-webhook")
        ref = target.post("feed", incident)
        assert ref.thread_id == ref.message_id
        assert fake.threads[int(ref.thread_id)]["name"] == "Incident 1"
        target.update("feed", ref, update_of(incident))
        titles = [m["embeds"][0]["title"] for m in fake.channel_messages(int(ref.thread_id))]
        assert titles == ["Incident 1", "Update: Incident 1"]
        second = target.post("feed", post(2, "feed", "discord-webhook"))
        assert second.thread_id != ref.thread_id
        codes = [c.status for c in fake.find("POST", r"^/webhooks/")]
        assert codes.count(400) == 1  # one 220001 taught it the channel is a forum
    finally:
        target.close()


def test_a_webhook_into_a_locked_thread_is_unavailable(fake) -> None:
    thread = fake.add_thread(CHANNEL_ID, "feed")
    fake.archive_thread(thread, locked=True)
    target = webhook_target(fake, fake.add_webhook(CHANNEL_ID) + f"?thread_id={thread}")
    try:
        assert unavailable(lambda: target.post("x", post(1, "x", "discord-webhook"))).code == "50083"
    finally:
        target.close()


def test_names_sharing_a_webhook_get_an_incident_once_and_share_its_pace(fake) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    target = webhook_target(fake, {"secops": url, "netops": url}, pace=30.0)
    try:
        first = target.post("secops", post(1, "secops", "discord-webhook"))
        # The same incident matched netops's subscription too: one message in the one channel.
        again = target.post("netops", post(1, "netops", "discord-webhook"))
        assert again.message_id == first.message_id and again.channel == "netops"
        assert len(fake.channel_messages(CHANNEL_ID)) == 1
        # Another incident for the other name is paced by the webhook, not by the name.
        with pytest.raises(RateLimited) as caught:
            target.post("netops", post(2, "netops", "discord-webhook"))
        assert 25 < caught.value.retry_after <= 30
        assert len(fake.channel_messages(CHANNEL_ID)) == 1
    finally:
        target.close()
