"""The Discord bot's chat side against the fake Discord's documented rules: every reply type accepted,
record text never rendered as markdown, replies to the bot as mentions, one registration of the
commands, and subscriptions checked (and placed) where the feed will really post."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.discord.bot import DiscordBot
from adapters.discord.component import DiscordComponent, DiscordPlatform, platform
from adapters.discord.config import DiscordSettings
from adapters.discord.delivery import DiscordTarget
from adapters.discord.endpoints import DiscordEndpoints
from adapters.discord.render import render_reply
from adapters.discord.webhook import DiscordWebhookTarget
from bot.config import Settings
from bot.conversation import Conversation
from bot.daemon import DeliveryConfig, open_runtime
from bot.deliverer import DeliveryPolicy
from bot.delivery.base import IncidentPost
from bot.demo import seed_demo
from bot.messages import Reply, ReplyKind, ThreadKey
from bot.platform import Platform
from bot.sources import SourceBook
from bot.subscriptions import Subscriptions
from retrieval.records import Severity, ThreatRecord
from retrieval.store import RecordStore
from tests.conftest import needs_model
from tests.fakes.discord_api import (
    APP_ID,
    BOT_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    CREATE_PUBLIC_THREADS,
    EMBED_LINKS,
    GUILD_FORUM,
    GUILD_ID,
    LEAD_ID,
    OTHER_CHANNEL_ID,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    FakeDiscord,
    InteractionRecord,
    serving_discord,
)
from tests.test_discord_bot import answered, run_bot
from tests.test_discord_channels import raw

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
EVIL_TITLE = "FortiGate flaw [vendor.com](https://evil.example/login) exploited *now*"
EVIL = ThreatRecord(
    title=EVIL_TITLE,
    published=NOW - timedelta(hours=2),
    url="https://news.example.org/fortigate",
    source="Vendor advisories",
    severity=Severity.CRITICAL,
    summary="Attackers exploit FortiGate; see [the fix](https://evil.example/fix).",
    vendors=["Fortinet"],
    products=["FortiGate"],
    countries=["Germany"],
    mitigation="Patch now [here](https://evil.example/patch).",
)


# -- rendering, without Discord ------------------------------------------------------------------------------


def test_record_text_in_chat_answers_never_renders_as_markdown() -> None:
    reply = Reply(
        f"Countries named for *{EVIL_TITLE}*: Germany. `unsubscribe s1:ab` stops it. See https://a.example/x_y",
        ThreadKey("discord", "1", "2"),
        ReplyKind.FIELD,
        suggestions=["what about [x](https://evil.example)?"],
    )
    (message,) = render_reply(reply)
    content = message.content
    assert "[vendor.com](https://evil" not in content.replace("\\[", "")  # no masked link survives
    assert "\\[vendor.com](https://evil.example/login)" in content
    assert "exploited \\*now\\*" in content  # the title's own asterisks stay characters
    assert "`unsubscribe s1:ab`" in content  # the core's own code span is kept
    assert "<https://a.example/x_y>" in content  # bare URLs: no preview, not escaped inside
    assert "\\[x](https://evil.example)" in content


# -- against the fake -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("discord-chat-seed")
    store = RecordStore(Settings.from_env(folder))
    seed_demo(store, NOW)
    store.upsert([EVIL])
    store.close()
    return folder


@pytest.fixture
def core(seeded, tmp_path) -> Iterator[Conversation]:
    folder = tmp_path / "data"
    shutil.copytree(seeded, folder)
    store = RecordStore(Settings.from_env(folder))
    yield Conversation(store, subscriptions=Subscriptions(store.db), sources=SourceBook(store.db))
    store.close()


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with serving_discord() as server:
        yield server


def admin(fake: FakeDiscord, sub: str, options: dict | None = None, **where) -> InteractionRecord:
    return fake.slash(sub, options, user_id=LEAD_ID, command="threat-admin", **where)


@needs_model
def test_every_reply_type_passes_discords_rules(fake, core) -> None:
    """help, search, latest, show, details, subscriptions, sources, mention answers and follow-ups."""

    async def scenario(bot: DiscordBot) -> None:
        for sub, options in [
            ("help", None),
            ("search", {"query": "fortinet exploited"}),
            ("latest", {"count": 20}),
            ("subscriptions", None),
            ("sources", None),
        ]:
            await answered(fake, fake.slash(sub, options))
        listed = fake.slash("latest", {"count": 5})
        (answer,) = await answered(fake, listed)
        record_id = answer["embeds"][0]["footer"]["text"].removeprefix("id ")
        await answered(fake, fake.slash("show", {"id": record_id}))
        thread_id = int(answer["id"])
        await fake.until(lambda: thread_id in fake.threads)
        for n, text in enumerate(["tell me more about the second one", "what's the mitigation?", "more"], 1):
            fake.post_as_user(thread_id, text, mention_bot=True)
            await fake.until(lambda n=n: len(fake.bot_messages(thread_id)) >= n)
        question = fake.post_as_user(CHANNEL_ID, "any Exchange outages today?", mention_bot=True)
        await fake.until(lambda: fake.bot_messages(int(question["id"])))
        dm = fake.dm_channel()
        fake.post_as_user(dm, "latest 20")
        await fake.until(lambda: fake.bot_messages(dm))

    run_bot(fake, core, scenario)
    assert fake.limit_violations == []
    assert all(c.status < 400 for c in fake.calls if c.path.startswith(("/channels", "/webhooks", "/interactions")))


@needs_model
def test_a_feed_title_with_a_masked_link_is_shown_literally_in_chat(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        shown = fake.slash("show", {"id": EVIL.id})
        (detail,) = await answered(fake, shown)
        embed = detail["embeds"][0]
        assert "\\[the fix](https://evil.example/fix)" in embed["description"]
        thread_id = int(detail["id"])
        await fake.until(lambda: thread_id in fake.threads)
        fake.post_as_user(thread_id, "which countries are affected?", mention_bot=True)
        (answer,) = await fake.until(lambda: fake.bot_messages(thread_id))
        assert "Germany" in answer["content"]
        assert "\\[vendor.com](https://evil.example/login)" in answer["content"]
        assert "[vendor.com](https://evil.example/login)" not in answer["content"].replace("\\[", "")

    run_bot(fake, core, scenario)


@needs_model
def test_a_reply_to_the_bot_is_a_mention_and_is_answered_in_that_messages_thread(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        # A feed post in the channel (the bot's message); someone replies to it with the ping on.
        feed_post = fake.bot_messages(CHANNEL_ID)[0]
        reply = fake.post_as_user(CHANNEL_ID, "any Exchange outages today?", reply_to=feed_post)
        assert reply["mentions"] and "<@" not in reply["content"]  # no raw mention in the text
        thread_id = int(feed_post["id"])  # the thread of the message replied to
        answer = await fake.until(lambda: fake.bot_messages(thread_id))
        assert "Exchange" in answer[0]["content"]
        # With the ping off and no Message Content intent Discord sends no text: one hint, no guess.
        fake.post_as_user(CHANNEL_ID, "and yesterday?", reply_to=feed_post, ping=False)
        hint = await fake.until(lambda: fake.bot_messages(CHANNEL_ID)[1:])
        assert "keep **@ ON**" in hint[0]["content"]

    target = DiscordTarget(BOT_TOKEN)
    try:
        record = core.store.get(EVIL.id)
        assert record is not None
        target.post(str(CHANNEL_ID), IncidentPost("k", record.id, record, (record,), ("fortinet",), "discord"))
    finally:
        target.close()
    run_bot(fake, core, scenario)


@needs_model
def test_commands_are_registered_once_and_only_where_configured(fake, core) -> None:
    idle = lambda bot: asyncio.sleep(0)  # noqa: E731
    run_bot(fake, core, idle, guild_id=GUILD_ID)
    run_bot(fake, core, idle, guild_id=GUILD_ID)  # a restart with the same commands
    puts = fake.find("PUT", r"/commands$")
    assert [c.path for c in puts] == [f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"]
    # Moving to global commands removes the server's copies: no two /threat entries for its members.
    run_bot(fake, core, lambda bot: fake.until(lambda: fake.commands.get(str(GUILD_ID)) == []))
    assert [c["name"] for c in fake.commands["global"]] == ["threat", "threat-admin"]
    assert fake.commands[str(GUILD_ID)] == []
    # And back: the server gets them, the global ones go.
    run_bot(fake, core, idle, guild_id=GUILD_ID)
    assert [c["name"] for c in fake.commands[str(GUILD_ID)]] == ["threat", "threat-admin"]
    assert fake.commands["global"] == []
    # A changed definition (here: who may use /threat-admin) is registered again.
    before = len(fake.find("PUT", r"/commands$"))
    fake.commands[str(GUILD_ID)][1]["default_member_permissions"] = "8"
    run_bot(fake, core, idle, guild_id=GUILD_ID)
    assert len(fake.find("PUT", r"/commands$")) == before + 1
    assert fake.commands[str(GUILD_ID)][1]["default_member_permissions"] == "16"


@needs_model
def test_subscribe_says_what_is_missing_where_the_bot_cannot_post(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        fake.deny_bot(CHANNEL_ID, SEND_MESSAGES | EMBED_LINKS)
        refused = admin(fake, "subscribe", {"filters": "exploited fortinet"})
        (notice,) = await answered(fake, refused)
        assert notice["flags"] == 64  # private
        assert (
            "**Send Messages** and **Embed Links**" in notice["content"] and "Nothing was changed" in notice["content"]
        )
        assert core.subscriptions.subscriptions(platform="discord", channel=str(CHANNEL_ID)) == []
        # Also when asked by mention (the cached permissions count there).
        fake.set_overwrite(CHANNEL_ID, BOT_ID, deny=EMBED_LINKS)
        asked = fake.post_as_user(CHANNEL_ID, "subscribe critical outages", user_id=LEAD_ID, mention_bot=True)
        (said,) = await fake.until(lambda: fake.bot_messages(int(asked["id"])))
        assert "**Embed Links**" in said["content"] and "Nothing was changed" in said["content"]
        assert core.subscriptions.subscriptions(platform="discord", channel=str(CHANNEL_ID)) == []
        # Without Create Public Threads it subscribes, and says updates will be replies.
        fake.set_overwrite(CHANNEL_ID, BOT_ID, deny=CREATE_PUBLIC_THREADS)
        done = admin(fake, "subscribe", {"filters": "exploited fortinet"})
        (confirmation,) = await answered(fake, done)
        assert "Subscribed this channel" in confirmation["content"]
        assert "**Create Public Threads**" in confirmation["content"]

    run_bot(fake, core, scenario)


@needs_model
def test_in_a_thread_the_feed_posts_into_the_thread_and_in_a_forum_post_one_post_per_incident(fake, core) -> None:
    forum = fake.add_channel("threat-feed", GUILD_FORUM)
    thread = fake.add_thread(CHANNEL_ID, "fortinet watch")
    status, created = 0, {}

    async def scenario(bot: DiscordBot) -> None:
        nonlocal status, created
        done = admin(fake, "subscribe", {"filters": "exploited fortinet"}, channel_id=thread)
        (confirmation,) = await answered(fake, done)
        assert "Subscribed" in confirmation["content"]
        listed = fake.slash("subscriptions", channel_id=thread)
        (listing,) = await answered(fake, listed)
        assert "exploited fortinet" in listing["content"]
        # A forum post (a thread in a forum): the subscription is the forum's.
        status, created = raw(
            fake, "POST", f"/channels/{forum}/threads", {"name": "feed setup", "message": {"content": "here"}}
        )
        await asyncio.sleep(0.2)  # THREAD_CREATE reaches the bot's cache
        in_forum = admin(fake, "subscribe", {"filters": "ransomware"}, channel_id=int(created["id"]))
        (forum_confirmation,) = await answered(fake, in_forum)
        assert "Subscribed" in forum_confirmation["content"]

    run_bot(fake, core, scenario)
    assert status == 201
    assert [s.query for s in core.subscriptions.subscriptions(platform="discord", channel=str(thread))] == [
        "exploited fortinet"
    ]
    assert core.subscriptions.subscriptions(platform="discord", channel=str(CHANNEL_ID)) == []
    (forum_sub,) = core.subscriptions.subscriptions(platform="discord", channel=str(forum))
    # Delivered: into the thread, not its parent; into the forum as one new post per incident.
    config = DeliveryConfig(default_sources=False, delivery=DeliveryPolicy(rate_limits={"discord": 0.0}))
    target = DiscordTarget(BOT_TOKEN)
    runtime = open_runtime(Settings.from_env(core.store.config.data_dir), config, targets=[target], store=core.store)
    try:
        for sub in core.subscriptions.all():
            runtime.planner.backfill(sub, NOW - timedelta(days=30))
        result = runtime.deliverer.drain()
    finally:
        target.close()
    assert result.sent > 0 and result.dead == 0
    assert fake.bot_messages(thread) and fake.bot_messages(CHANNEL_ID) == []
    posts = [t for t in fake.threads.values() if t["parent_id"] == str(forum) and t["owner_id"] == str(BOT_ID)]
    assert posts and all(fake.bot_messages(int(t["id"])) for t in posts)
    assert forum_sub.query == "ransomware"


@needs_model
def test_a_missing_send_permission_in_the_thread_is_named_at_subscribe(fake, core) -> None:
    thread = fake.add_thread(CHANNEL_ID, "watch")

    async def scenario(bot: DiscordBot) -> None:
        fake.deny_bot(CHANNEL_ID, SEND_MESSAGES_IN_THREADS)
        refused = admin(fake, "subscribe", {"filters": "exploited fortinet"}, channel_id=thread)
        (notice,) = await answered(fake, refused)
        assert "in this thread" in notice["content"] and "**Send Messages in Threads**" in notice["content"]

    run_bot(fake, core, scenario)
    assert core.subscriptions.all() == []


# -- the platform contract ----------------------------------------------------------------------------------------


def test_the_package_exports_a_platform(fake) -> None:
    nothing = platform(DiscordSettings())
    assert isinstance(nothing, Platform) and isinstance(nothing, DiscordPlatform)
    status = nothing.status()
    assert (status.chat, status.delivery) == (False, False) and "DISCORD_BOT_TOKEN" in status.detail
    assert nothing.delivery_targets() == [] and nothing.chat_component(None) is None  # type: ignore[arg-type]

    # As serve calls every platform: with the core's settings, the rest from the environment.
    from_env = platform(Settings.from_env(Path("unused")), env={"DISCORD_BOT_TOKEN": BOT_TOKEN})
    assert from_env.status().chat and from_env.settings.token == BOT_TOKEN
    with pytest.raises(ValueError, match="THREATBOT_DISCORD_GUILD_ID"):
        platform(None, env={"THREATBOT_DISCORD_GUILD_ID": "my-server"})

    hook = fake.add_webhook(CHANNEL_ID)
    both = platform(DiscordSettings(token=BOT_TOKEN, guild_id=GUILD_ID, webhooks={"*": hook}))
    status = both.status()
    assert (status.chat, status.delivery) == (True, True)
    assert f"server {GUILD_ID}" in status.detail and "webhook-only feed" in status.detail
    assert hook.rsplit("/", 1)[1] not in status.detail  # never the token
    targets = both.delivery_targets()
    try:
        assert [type(t) for t in targets] == [DiscordTarget, DiscordWebhookTarget]
    finally:
        for target in targets:
            target.close()


@needs_model
def test_the_platforms_chat_component_runs_around_the_given_core(fake, core) -> None:
    settings = DiscordSettings(token=BOT_TOKEN, endpoints=DiscordEndpoints(fake.api_url, fake.gateway_url))
    component = platform(settings, guild_ready_timeout=0.05).chat_component(core)
    assert isinstance(component, DiscordComponent) and component.bot.conversation is core

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await fake.until(lambda: component.bot.is_ready())
        record = fake.slash("latest", {"count": 1})
        await answered(fake, record)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


@needs_model
def test_without_embed_links_answers_come_as_text_and_where_it_cannot_speak_it_says_so_in_a_dm(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        fake.deny_bot(CHANNEL_ID, EMBED_LINKS)
        record = fake.slash("search", {"query": "exchange outage"})
        (answer,) = await answered(fake, record)
        assert answer["embeds"] == [] and "Exchange" in answer["content"] and "1. " in answer["content"]
        asked = fake.post_as_user(CHANNEL_ID, "latest 3", mention_bot=True)
        (reply,) = await fake.until(lambda: fake.bot_messages(int(asked["id"])))
        assert reply["embeds"] == [] and reply["content"]
        # Where it may not post at all, the asker hears why in a DM instead of silence.
        fake.deny_bot(OTHER_CHANNEL_ID, SEND_MESSAGES | CREATE_PUBLIC_THREADS)
        fake.post_as_user(OTHER_CHANNEL_ID, "latest 3", mention_bot=True)
        dm = fake.dm_channel()
        (note,) = await fake.until(lambda: fake.bot_messages(dm))
        assert f"<#{OTHER_CHANNEL_ID}>" in note["content"] and "refused" in note["content"]

    run_bot(fake, core, scenario)
    assert fake.limit_violations == []


# -- delivery health, end to end through the deliverer -----------------------------------------------------------


class Clock:
    """The deliverer's clock, moved on by hand past back-offs (starts now: ``resume`` uses the wall clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def deliver_until_disabled(runtime, platform: str, channel: str, clock: Clock) -> None:
    """Deliver, letting back-offs pass, until the channel is disabled; never more than a few rounds."""
    for _ in range(6):
        runtime.deliverer.deliver_due()
        if runtime.deliverer.health.get(platform, channel).state.value == "disabled":
            return
        clock.now += 3600
    raise AssertionError(f"{platform}:{channel} was retried on and on instead of disabled")


@needs_model
@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("permission", "Missing Permissions: Send Messages in Threads"),
        ("locked", "the thread is locked"),
        ("deleted", "Unknown Channel: the channel was deleted"),
    ],
)
def test_a_discord_channel_that_cannot_receive_is_disabled_with_its_reason_told_and_resumable(
    fake, core, breakage, reason
) -> None:
    thread = fake.add_thread(CHANNEL_ID, "ransomware watch")
    clock = Clock()
    config = DeliveryConfig(default_sources=False, delivery=DeliveryPolicy(rate_limits={"discord": 0.0}))
    target = DiscordTarget(BOT_TOKEN)
    runtime = open_runtime(
        Settings.from_env(core.store.config.data_dir), config, targets=[target], store=core.store, clock=clock
    )
    try:
        sub = runtime.subscriptions.subscribe(
            platform="discord", channel=str(thread), query="ransomware", created_by=str(LEAD_ID)
        )
        if breakage == "permission":
            fake.deny_bot(CHANNEL_ID, SEND_MESSAGES_IN_THREADS)
        elif breakage == "locked":
            fake.archive_thread(thread, locked=True)
            fake.threads[thread]["thread_metadata"]["archived"] = False
        else:
            fake.delete_channel(thread)
        planned = runtime.planner.backfill(sub, NOW - timedelta(days=30))
        assert planned.posts + planned.digests > 0
        deliver_until_disabled(runtime, "discord", str(thread), clock)
        status = runtime.deliverer.health.get("discord", str(thread))
        assert status.reason == reason and status.failures == 3
        assert runtime.subscriptions.get(sub.id).status == "disabled"
        # The subscriber was told once, by DM, with the reason and how to resume.
        (notice,) = fake.bot_messages(fake.dm_channel(LEAD_ID))
        assert reason.split(":")[0] in notice["content"] and "/threat-admin resume" in notice["content"]
        assert f"<#{thread}>" in notice["content"]
        clock.now += 3600
        assert runtime.deliverer.deliver_due().sent == 0  # nothing more tried while disabled
        assert len(fake.bot_messages(fake.dm_channel(LEAD_ID))) == 1
    finally:
        target.close()
    if breakage == "deleted":
        return  # nothing to resume: the subscription says why, and `unsubscribe` removes it

    async def scenario(bot: DiscordBot) -> None:
        listed = fake.slash("subscriptions", channel_id=thread)
        (listing,) = await answered(fake, listed)
        assert "disabled" in listing["content"].lower() and reason.split(":")[0] in listing["content"]
        if breakage == "permission":
            # Still not fixed: resume says what is missing and changes nothing.
            early = admin(fake, "resume", channel_id=thread)
            (notice,) = await answered(fake, early)
            assert "**Send Messages in Threads**" in notice["content"] and "Nothing was changed" in notice["content"]
            fake.set_overwrite(CHANNEL_ID, BOT_ID)
        else:
            fake.threads[thread]["thread_metadata"]["locked"] = False
        resumed = admin(fake, "resume", channel_id=thread)
        (confirmation,) = await answered(fake, resumed)
        assert "Resumed" in confirmation["content"]

    run_bot(fake, core, scenario)
    target = DiscordTarget(BOT_TOKEN)
    runtime = open_runtime(
        Settings.from_env(core.store.config.data_dir), config, targets=[target], store=core.store, clock=clock
    )
    try:
        assert runtime.deliverer.drain().sent == planned.posts + planned.digests
    finally:
        target.close()
    assert runtime.deliverer.health.get("discord", str(thread)).state.value == "ok"


@needs_model
def test_a_deleted_webhook_disables_its_subscriptions_with_the_reason(fake, core) -> None:
    url = fake.add_webhook(CHANNEL_ID)
    clock = Clock()
    config = DeliveryConfig(default_sources=False, delivery=DeliveryPolicy(rate_limits={"discord-webhook": 0.0}))
    target = DiscordWebhookTarget({"secops": url}, pace=0)
    runtime = open_runtime(
        Settings.from_env(core.store.config.data_dir), config, targets=[target], store=core.store, clock=clock
    )
    try:
        sub = runtime.subscriptions.subscribe(
            platform="discord-webhook", channel="secops", query="ransomware", created_by="cli:alice"
        )
        fake.delete_webhook(url)
        runtime.planner.backfill(sub, NOW - timedelta(days=30))
        deliver_until_disabled(runtime, "discord-webhook", "secops", clock)
        status = runtime.deliverer.health.get("discord-webhook", "secops")
        assert status.reason == "Unknown Webhook: the webhook was deleted" and status.code == "10015"
        assert "webhook was deleted" in runtime.subscriptions.get(sub.id).problem
    finally:
        target.close()


@needs_model
def test_a_blank_subscribe_in_the_bots_thread_watches_its_topic_and_posts_into_that_thread(fake, core) -> None:
    threads: list[int] = []

    async def scenario(bot: DiscordBot) -> None:
        question = fake.post_as_user(CHANNEL_ID, "any ransomware attacks this week?", mention_bot=True)
        thread_id = int(question["id"])
        threads.append(thread_id)
        await fake.until(lambda: fake.bot_messages(thread_id))
        done = admin(fake, "subscribe", channel_id=thread_id)
        (confirmation,) = await answered(fake, done)
        assert "Subscribed" in confirmation["content"] and "ransomware" in confirmation["content"]

    run_bot(fake, core, scenario)
    (sub,) = core.subscriptions.all()
    assert sub.channel == str(threads[0]) and "ransomware" in sub.query
    assert "this week" not in sub.query  # a subscription watches from now on
