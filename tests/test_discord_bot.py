"""The Discord bot end to end: real discord.py against the fake Discord, the real core on the demo records.

Each test starts a fresh fake and a fresh copy of a seeded store, logs the bot in for real (REST login,
command sync, gateway READY/GUILD_CREATE) and drives it the way people do: ``/threat`` commands,
mentions, messages in threads, DMs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.discord.bot import MENTION_HINT, DiscordBot
from adapters.discord.component import DiscordComponent, discord_component_from_env
from adapters.discord.config import DiscordSettings
from adapters.discord.delivery import DiscordTarget
from adapters.discord.endpoints import DiscordEndpoints, point_discord_at
from adapters.discord.permissions import ManagerPolicy
from bot.config import Settings
from bot.conversation import Conversation
from bot.daemon import DeliveryConfig, open_runtime
from bot.deliverer import DeliveryPolicy
from bot.demo import seed_demo
from bot.messages import ThreadKey
from bot.sources import SourceBook
from bot.subscriptions import Subscriptions
from retrieval.store import RecordStore
from tests.conftest import needs_model
from tests.fakes.discord_api import (
    ANALYST_ID,
    BOT_ID,
    BOT_TOKEN,
    CHANNEL_ID,
    GUILD_ID,
    LEAD_ID,
    MESSAGE_CONTENT_INTENT,
    FakeDiscord,
    InteractionRecord,
    serving_discord,
)

pytestmark = needs_model

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
SUBCOMMANDS = {"search", "latest", "show", "subscriptions", "sources", "stack", "help"}
ADMIN_SUBCOMMANDS = {"subscribe", "unsubscribe", "resume", "add-source", "stack-add", "stack-remove"}
MANAGE_CHANNELS = 1 << 4
PRIVILEGED = MESSAGE_CONTENT_INTENT | (1 << 1) | (1 << 8)  # message content, members, presences


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("discord-seed")
    store = RecordStore(Settings.from_env(folder))
    seed_demo(store, NOW)
    store.close()
    return folder


@pytest.fixture
def core(seeded, tmp_path) -> Iterator[Conversation]:
    """The conversation core over a private copy of the seeded store, with subscriptions and sources."""
    folder = tmp_path / "data"
    shutil.copytree(seeded, folder)
    store = RecordStore(Settings.from_env(folder))
    yield Conversation(store, subscriptions=Subscriptions(store.db), sources=SourceBook(store.db))
    store.close()


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with serving_discord() as server:
        yield server


def run_bot(
    fake: FakeDiscord,
    core: Conversation,
    scenario: Callable[[DiscordBot], Awaitable[None]],
    **settings_changes,
) -> None:
    settings = DiscordSettings(token=BOT_TOKEN, tz="Europe/Berlin", **settings_changes)

    async def main() -> None:
        bot = DiscordBot(core, settings, clock=lambda: NOW, guild_ready_timeout=0.05)
        task = asyncio.create_task(bot.start(BOT_TOKEN))
        try:
            await fake.until(lambda: bot.is_ready() or task.done())
            assert not task.done(), task.exception()
            await scenario(bot)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


async def answered(fake: FakeDiscord, record: InteractionRecord, count: int = 1) -> list[dict]:
    await fake.until(lambda: len(record.followups) >= count)
    await asyncio.sleep(0.1)  # a thread may be opened right after the follow-up
    return record.followups


def every_bot_send_mutes_mentions(fake: FakeDiscord) -> None:
    sends = fake.find("POST", r"^/channels/\d+/messages$") + fake.find("POST", r"^/webhooks/")
    assert sends
    for call in sends:
        assert call.body.get("allowed_mentions") == {"parse": []}, call


# -- start-up -------------------------------------------------------------------------------------------


def test_login_syncs_the_threat_group_with_non_privileged_intents(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        assert bot.user is not None and bot.user.id == BOT_ID
        assert bot.get_guild(GUILD_ID) is not None

    run_bot(fake, core, scenario, guild_id=GUILD_ID)
    assert fake.find("GET", r"^/users/@me$") and fake.find("GET", r"^/oauth2/applications/@me$")
    sync = fake.find("PUT", r"/commands$")
    assert [c.path for c in sync] == [f"/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"]
    group, admin = sync[0].body
    assert group["name"] == "threat" and group.get("default_member_permissions") is None
    assert {option["name"] for option in group["options"]} == SUBCOMMANDS
    # Manager-only commands are their own top-level command, so admins can restrict it in Integrations.
    assert admin["name"] == "threat-admin" and str(admin["default_member_permissions"]) == str(MANAGE_CHANNELS)
    assert {option["name"] for option in admin["options"]} == ADMIN_SUBCOMMANDS
    assert all(option["type"] == 1 for option in group["options"])  # subcommands
    latest = next(o for o in group["options"] if o["name"] == "latest")
    count = next(o for o in latest["options"] if o["name"] == "count")
    assert (count["min_value"], count["max_value"]) == (1, 20)
    (identify,) = fake.identifies
    assert identify["intents"] & PRIVILEGED == 0


def test_without_a_guild_the_commands_are_synced_globally(fake, core) -> None:
    run_bot(fake, core, lambda bot: asyncio.sleep(0))
    assert [c.path for c in fake.find("PUT", r"/commands$")] == [f"/applications/{BOT_ID}/commands"]


# -- /threat ----------------------------------------------------------------------------------------------


def test_search_is_deferred_then_answered_with_embeds_and_a_thread_that_keeps_the_context(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        record = fake.slash("search", {"query": "exchange outage"})
        (answer,) = await answered(fake, record)
        assert record.callbacks == [{"type": 5}]  # deferred, publicly, "thinking"
        assert record.callback_at - record.dispatched_at < 3.0
        assert answer["content"].startswith("3 Exchange outages:")
        assert "**" not in answer["content"].split("\n")[0]
        assert len(answer["embeds"]) == 3
        assert all(e["title"].startswith(f"{n}. ") for n, e in enumerate(answer["embeds"], 1))
        assert all("<t:" in e["description"] for e in answer["embeds"])
        thread_id = int(answer["id"])
        await fake.until(lambda: thread_id in fake.threads)
        assert fake.threads[thread_id]["name"] == "search exchange outage"
        # The core's context moved to the thread: a follow-up there picks from the list.
        follow = fake.post_as_user(thread_id, "tell me more about the second one", mention_bot=True)
        reply = await fake.until(lambda: fake.bot_messages(thread_id))
        assert follow["content"].startswith(f"<@{BOT_ID}>")
        embed = reply[0]["embeds"][0]
        assert embed["title"] == answer["embeds"][1]["title"].split(". ", 1)[1]
        assert {f["name"] for f in embed["fields"]} >= {"Severity", "Published"}
        # A command inside the thread has the thread's context too: "show 3" is the list's third story.
        show = fake.slash("show", {"id": "3"}, channel_id=thread_id)
        (third,) = await answered(fake, show)
        assert third["embeds"][0]["title"] == answer["embeds"][2]["title"].split(". ", 1)[1]
        assert len(fake.threads) == 1  # no new thread for an answer given inside one

    run_bot(fake, core, scenario)
    every_bot_send_mutes_mentions(fake)


def test_latest_show_and_help(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        latest = fake.slash("latest", {"count": 2, "filters": "ransomware"})
        (answer,) = await answered(fake, latest)
        assert latest.callbacks == [{"type": 5}]
        assert len(answer["embeds"]) == 2
        record_id = answer["embeds"][0]["footer"]["text"].removeprefix("id ")

        show = fake.slash("show", {"id": record_id})
        (detail,) = await answered(fake, show)
        (embed,) = detail["embeds"]
        assert embed["footer"]["text"] == f"id {record_id}"
        assert embed["title"] == answer["embeds"][0]["title"].split(". ", 1)[1]

        help_ = fake.slash("help")
        (text,) = await answered(fake, help_)
        assert help_.callbacks == [{"type": 5, "data": {"flags": 64}}]  # deferred privately
        assert text["flags"] == 64 and "`search <query>`" in text["content"]

    run_bot(fake, core, scenario)


def test_subscriptions_need_a_manager_and_refusals_are_private(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        with pytest.raises(PermissionError):  # Discord does not even offer /threat-admin to the analyst
            fake.slash("subscribe", {"filters": "x"}, user_id=ANALYST_ID, command="threat-admin")
        fake.command_overrides.add(("threat-admin", ANALYST_ID))  # an admin opened it up in Integrations
        refused = fake.slash("subscribe", {"filters": "exploited fortinet"}, user_id=ANALYST_ID, command="threat-admin")
        (notice,) = await answered(fake, refused)
        assert refused.callbacks == [{"type": 5}]
        assert refused.deleted_original  # the public "thinking" message is replaced by a private answer
        assert notice["flags"] == 64 and "Only people who manage" in notice["content"]

        done = fake.slash("subscribe", {"filters": "exploited fortinet"}, user_id=LEAD_ID, command="threat-admin")
        (confirmation,) = await answered(fake, done)
        assert confirmation["flags"] == 0 and "Subscribed this channel" in confirmation["content"]
        subs = core.subscriptions.subscriptions(platform="discord", channel=str(CHANNEL_ID))
        assert [(s.query, s.created_by) for s in subs] == [("exploited fortinet", str(LEAD_ID))]

        listed = fake.slash("subscriptions")
        (listing,) = await answered(fake, listed)
        assert subs[0].id in listing["content"]

        gone = fake.slash("unsubscribe", {"id": subs[0].id}, user_id=LEAD_ID, command="threat-admin")
        (removed,) = await answered(fake, gone)
        assert f"Unsubscribed `{subs[0].id}`" in removed["content"]
        assert core.subscriptions.subscriptions(platform="discord", channel=str(CHANNEL_ID)) == []

        url = "https://feeds.example.org/security.xml"
        added = fake.slash("add-source", {"url": url}, user_id=LEAD_ID, command="threat-admin")
        (source,) = await answered(fake, added)
        assert "Added source" in source["content"]
        listing = fake.slash("sources")
        (sources,) = await answered(fake, listing)
        assert "feeds.example.org" in sources["content"]

    run_bot(fake, core, scenario)


def test_managers_can_be_configured_by_role_and_user(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        fake.command_overrides.add(("threat-admin", ANALYST_ID))
        record = fake.slash("subscribe", {"filters": "critical outages"}, user_id=ANALYST_ID, command="threat-admin")
        (confirmation,) = await answered(fake, record)
        assert "Subscribed this channel" in confirmation["content"]
        lead = fake.slash("subscribe", {"filters": "kev"}, user_id=LEAD_ID, command="threat-admin")
        (refusal,) = await answered(fake, lead)
        assert "Only people who manage" in refusal["content"]  # Manage Channels no longer counts

    run_bot(fake, core, scenario, managers=ManagerPolicy.parse(f"user:{ANALYST_ID}"))


# -- mentions, threads, DMs --------------------------------------------------------------------------------


def test_a_mention_is_answered_in_a_new_thread_and_followed_up_there(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        question = fake.post_as_user(CHANNEL_ID, "any Exchange outages today?", mention_bot=True)
        thread_id = int(question["id"])  # a thread started from a message has its id
        first = await fake.until(lambda: fake.bot_messages(thread_id))
        assert fake.threads[thread_id]["name"] == "any Exchange outages today?"
        assert first[0]["content"].startswith("Today (Tue 2 Jun, Europe/Berlin): 1 Exchange outage:")
        assert "Microsoft Exchange Online" in first[0]["embeds"][0]["title"]
        assert fake.bot_messages(CHANNEL_ID) == []  # nothing in the channel itself

        fake.post_as_user(thread_id, "which countries are affected?", mention_bot=True)
        second = await fake.until(lambda: fake.bot_messages(thread_id)[1:])
        assert second[0]["content"].startswith("Countries named for **Microsoft Exchange Online outage")

        # Without the Message Content intent an unmentioned message arrives empty: one hint, not an answer.
        fake.post_as_user(thread_id, "what's the mitigation?")
        fake.post_as_user(thread_id, "and the impact?")
        hint = await fake.until(lambda: fake.bot_messages(thread_id)[2:])
        await asyncio.sleep(0.3)
        assert [m["content"] for m in fake.bot_messages(thread_id)[2:]] == [MENTION_HINT.format(mention=f"<@{BOT_ID}>")]
        assert hint[0]["allowed_mentions"] == {"parse": []}

    run_bot(fake, core, scenario)
    every_bot_send_mutes_mentions(fake)


def test_with_message_content_every_message_in_its_thread_is_a_follow_up(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        question = fake.post_as_user(CHANNEL_ID, "ransomware attack on a hospital", mention_bot=True)
        thread_id = int(question["id"])
        await fake.until(lambda: fake.bot_messages(thread_id))
        fake.post_as_user(thread_id, "which countries are affected?")
        answer = await fake.until(lambda: fake.bot_messages(thread_id)[1:])
        assert answer[0]["content"] == (
            "Countries named for **Ransomware attack forces Klinikum Nordstadt hospital to divert ambulances**: Germany."
        )
        # Unmentioned messages elsewhere are not questions; a mention of the bot's role is a mention.
        fake.post_as_user(CHANNEL_ID, "lunch anyone?")
        role_question = fake.post_as_user(CHANNEL_ID, "any Exchange outages today?", mention_bot_role=True)
        role_thread = int(role_question["id"])
        answer = await fake.until(lambda: fake.bot_messages(role_thread))
        assert fake.threads[role_thread]["name"] == "any Exchange outages today?"
        assert answer[0]["content"].startswith("Today (Tue 2 Jun, Europe/Berlin): 1 Exchange outage:")
        assert fake.bot_messages(CHANNEL_ID) == []

    run_bot(fake, core, scenario, message_content=True)
    assert fake.identifies[0]["intents"] & MESSAGE_CONTENT_INTENT


def test_a_dm_is_one_continuing_conversation(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        dm = fake.dm_channel(ANALYST_ID)
        fake.post_as_user(dm, "any Exchange outages today?")
        await fake.until(lambda: fake.bot_messages(dm))
        fake.post_as_user(dm, "which countries are affected?")
        replies = await fake.until(lambda: fake.bot_messages(dm)[1:])
        assert "United States" in replies[0]["content"]
        key = ThreadKey("discord", str(dm), str(dm))
        assert core.threads.load(key, NOW) is not None
        assert not fake.find("POST", r"/threads$")  # no threads in DMs

    run_bot(fake, core, scenario)


def test_bots_and_its_own_messages_are_ignored(fake, core) -> None:
    async def scenario(bot: DiscordBot) -> None:
        fake.dispatch(
            "MESSAGE_CREATE",
            {
                "id": "1100000000000900001",
                "channel_id": str(CHANNEL_ID),
                "guild_id": str(GUILD_ID),
                "type": 0,
                "author": {**fake.users[BOT_ID], "id": "1100000000000900002", "username": "otherbot"},
                "content": f"<@{BOT_ID}> any Exchange outages today?",
                "mentions": [fake.users[BOT_ID]],
                "mention_roles": [],
                "attachments": [],
                "embeds": [],
                "timestamp": NOW.isoformat(),
                "edited_timestamp": None,
                "tts": False,
                "mention_everyone": False,
                "pinned": False,
                "flags": 0,
                "components": [],
            },
        )
        await asyncio.sleep(0.4)

    run_bot(fake, core, scenario)
    assert not fake.find("POST", r"/messages")


# -- serve ------------------------------------------------------------------------------------------------


def test_the_component_serve_runs_logs_in_from_the_environment_and_stops_cleanly(fake, core) -> None:
    env = {
        "DISCORD_BOT_TOKEN": BOT_TOKEN,
        "THREATBOT_DISCORD_API_URL": fake.api_url,
        "THREATBOT_DISCORD_GATEWAY_URL": fake.gateway_url,
        "THREATBOT_DISCORD_GUILD_ID": str(GUILD_ID),
    }
    point_discord_at()  # the component must point discord.py at the fake itself
    component = discord_component_from_env(core, settings=DiscordSettings.from_env(env), guild_ready_timeout=0.05)
    assert isinstance(component, DiscordComponent)
    assert discord_component_from_env(core, settings=DiscordSettings.from_env({})) is None

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await fake.until(lambda: component.bot.is_ready())
        record = fake.slash("help")
        await answered(fake, record)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert component.bot.is_closed()

    asyncio.run(main())
    assert fake.find("PUT", rf"/guilds/{GUILD_ID}/commands$")


def test_a_refused_token_stops_the_component_with_a_clear_error(fake, core) -> None:
    endpoints = DiscordEndpoints(fake.api_url, fake.gateway_url)
    component = discord_component_from_env(core, settings=DiscordSettings(token="wrong", endpoints=endpoints))
    assert component is not None

    async def main() -> None:
        await component.run(asyncio.Event())

    with pytest.raises(RuntimeError, match="refused DISCORD_BOT_TOKEN"):
        asyncio.run(main())


# -- feed, end to end ----------------------------------------------------------------------------------------


def test_a_channels_subscription_is_delivered_by_the_bot_target_through_the_outbox(fake, core) -> None:
    config = DeliveryConfig(default_sources=False, delivery=DeliveryPolicy(rate_limits={"discord": 0.0}))
    target = DiscordTarget(BOT_TOKEN)
    runtime = open_runtime(Settings.from_env(core.store.config.data_dir), config, targets=[target], store=core.store)
    try:
        sub = runtime.subscriptions.subscribe(
            platform="discord", channel=str(CHANNEL_ID), query="ransomware", created_by=str(LEAD_ID)
        )
        planned = runtime.planner.backfill(sub, NOW - timedelta(days=30))
        assert planned.posts + planned.digests > 0
        result = runtime.deliverer.drain()
        assert result.sent == planned.posts + planned.digests and result.dead == 0
    finally:
        target.close()
    posted = fake.bot_messages(CHANNEL_ID)
    assert len(posted) == result.sent
    titles = [e["title"] for m in posted for e in m["embeds"]]
    assert titles and all("ransomware" in t.lower() for t in titles)
    rows = runtime.outbox.rows(limit=50)
    assert {r.ref.message_id for r in rows if r.ref} == {m["id"] for m in posted}


def test_threatbot_serve_runs_the_bot_when_configured_and_stops_on_sigterm(fake, tmp_path) -> None:
    config = tmp_path / "threatbot.toml"
    config.write_text("default_sources = false\n", encoding="utf-8")
    env = {
        **os.environ,
        "DISCORD_BOT_TOKEN": BOT_TOKEN,
        "THREATBOT_DISCORD_API_URL": fake.api_url,
        "THREATBOT_DISCORD_GATEWAY_URL": fake.gateway_url,
        "THREATBOT_DISCORD_GUILD_ID": str(GUILD_ID),
        "THREATBOT_DATA_DIR": str(tmp_path / "data"),
        "THREATBOT_CONFIG": str(config),
    }
    code = "from bot.cli import main; raise SystemExit(main(['serve']))"
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=root, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not fake.identifies and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.identifies, "serve never connected to the gateway"
        record = fake.slash("help")
        while not record.followups and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record.followups and record.callbacks == [{"type": 5, "data": {"flags": 64}}]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert BOT_TOKEN not in errors
    assert fake.find("PUT", rf"/guilds/{GUILD_ID}/commands$")


def test_a_failure_while_answering_is_reported_to_the_asker_not_swallowed(fake) -> None:
    class Broken:
        def handle(self, message):
            raise RuntimeError("store is gone")

    async def scenario(bot: DiscordBot) -> None:
        record = fake.slash("search", {"query": "exchange"})
        (notice,) = await answered(fake, record)
        assert notice["content"].startswith("Sorry — I couldn't answer that") and notice["flags"] == 64
        assert record.deleted_original
        question = fake.post_as_user(CHANNEL_ID, "any outages?", mention_bot=True)
        reply = await fake.until(lambda: fake.bot_messages(int(question["id"])))
        assert reply[0]["content"].startswith("Sorry — I couldn't answer that")

    run_bot(fake, Broken(), scenario)  # type: ignore[arg-type]
