"""The Discord bot: ``/threat`` commands, questions by mention and in DMs, follow-ups in its threads.

It only translates. A Discord event becomes an :class:`~bot.messages.IncomingMessage`, the core
answers (``Conversation.handle``, run in a worker thread: it is CPU-bound), and
:func:`adapters.discord.render.render_reply` turns the :class:`~bot.messages.Reply` into messages.

Where conversations live (``ThreadKey("discord", channel, thread)``):

* a mention in a server channel opens a thread on the asking message (its id is the message's) and
  answers there; ``channel`` is the parent channel, so subscriptions made in a thread are the channel's;
* inside a thread the bot started, every message it can read is a follow-up; in other threads, only
  mentions; a DM is one continuing conversation (``thread`` = the DM channel id);
* a ``/threat`` command is deferred at once (Discord wants an answer within 3 s; search and the LLM
  may take longer) and answered by follow-up; a list or record answer then gets a thread, and the
  core's context is moved to it with ``Conversation.rebind_thread``.

**Intents.** Only non-privileged ones: ``guilds``, ``guild_messages``, ``dm_messages``. Without the
privileged Message Content intent Discord sends the text of DMs, of messages that mention the bot,
and of the bot's own messages — *not* of other messages in threads the bot created. So in its threads
the bot answers mentions (and says so, once per thread, when someone writes without one).
``THREATBOT_DISCORD_MESSAGE_CONTENT=1`` asks for the intent (enable it in the Developer Portal first):
then every message in the bot's threads is read as a follow-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import discord
from discord import app_commands

from adapters.discord.config import DiscordSettings
from adapters.discord.limits import OutgoingMessage
from adapters.discord.permissions import missing_for_posting, permission_label
from adapters.discord.render import discord_markdown, render_reply, thread_name
from adapters.discord.slash import ADMIN_GROUP_NAME, GROUP_NAME, command_groups
from adapters.discord.sync import remove_server_copies, sync_commands
from bot.commands import Command, Verb, parse_command
from bot.conversation import Conversation
from bot.messages import IncomingMessage, Reply, ReplyKind, ThreadKey

__all__ = ["PLATFORM", "DiscordBot", "bot_intents"]

log = logging.getLogger(__name__)

# threatbot never joins voice: no warnings about voice libraries at every start.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False

PLATFORM = "discord"
#: Chat threads archive after a day of quiet (a new message reopens them).
CHAT_THREAD_ARCHIVE_MINUTES: Final = 1440
#: "A thread has already been created for this message".
THREAD_ALREADY_EXISTS = 160004
#: An embed-only message Discord emptied: the bot lacks Embed Links there.
EMPTY_MESSAGE = 50006
#: Replies that start a conversation worth following up: they get a thread.
THREAD_KINDS = frozenset({ReplyKind.ANSWER, ReplyKind.RECORD, ReplyKind.NONE_FOUND, ReplyKind.UPDATES})
NO_MENTIONS = discord.AllowedMentions.none()

MENTION_HINT = (
    "I only see messages here that mention me: start yours with {mention} — e.g. `{mention} only critical ones`. "
    "(A server admin can let me read every message in my threads: see the Message Content intent in threatbot's docs.)"
)
REPLY_HINT = (
    "I can only read replies that ping me: keep **@ ON** when you reply to me, or start with {mention}. "
    "(A server admin can let me read every message: see the Message Content intent in threatbot's docs.)"
)
NO_EMBEDS = (
    "I can't show stories here: I'm missing the **Embed Links** permission in this channel "
    "(every story is an embed). A server admin can allow it for threatbot in the channel's permissions."
)
SLASH_HELP = (
    f"On Discord: `/{GROUP_NAME}` to search and read; `/{ADMIN_GROUP_NAME}` (subscribe, unsubscribe, add-source) "
    "for people who manage channels — a server admin can change who sees it in Server Settings → Integrations."
)
SORRY = "Sorry — I couldn't answer that (the error is logged). Please try again."
#: Commands about the channel's feed: they act on where posts go (a thread, or a forum), not on the chat's channel.
FEED_VERBS = frozenset({Verb.SUBSCRIBE, Verb.UNSUBSCRIBE, Verb.SUBSCRIPTIONS, Verb.RESUME})
#: Commands that start (or restart) posting here: first checked against what the bot may do here.
POSTING_VERBS = frozenset({Verb.SUBSCRIBE, Verb.RESUME})
#: How each kind of place is named to people.
PLACE_WORDS = {"channel": "this channel", "thread": "this thread", "forum": "this forum", "dm": "this DM"}


def bot_intents(message_content: bool = False) -> discord.Intents:
    """The gateway intents the bot asks for: nothing privileged unless Message Content is opted into."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels, threads and roles of the servers it is in (permission checks)
    intents.guild_messages = True  # MESSAGE_CREATE in servers: mentions, follow-ups in its threads
    intents.dm_messages = True  # questions in DMs
    intents.message_content = message_content
    return intents


@dataclass(frozen=True)
class Place:
    """Where an event happened, as the core keys conversations, and where a subscription made there posts."""

    channel: str  # the parent channel for threads; the DM channel for DMs
    thread: str  # "" in a server channel (no conversation yet)
    kind: str  # "dm", "thread" or "channel"
    ours: bool = False  # a thread the bot started
    #: Where feed posts for a subscription made here go: the thread itself inside a thread, the forum
    #: inside a forum post (one post per incident), else the channel. Empty: the same as ``channel``.
    feed: str = ""
    #: What ``feed`` is: "channel", "thread", "forum" or "dm" (see ``permissions.POSTING_NEEDS``).
    feed_kind: str = "channel"

    @property
    def feed_channel(self) -> str:
        return self.feed or self.channel


class DiscordBot(discord.Client):
    """A discord.py client wired to the conversation core. Start it with ``await bot.start(token)``."""

    def __init__(
        self,
        conversation: Conversation,
        settings: DiscordSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings or DiscordSettings()
        options.setdefault("allowed_mentions", NO_MENTIONS)
        super().__init__(intents=bot_intents(self.settings.message_content), **options)
        self.conversation = conversation
        self.clock = clock or (lambda: datetime.now(UTC))
        self.tree = app_commands.CommandTree(self)
        for group in command_groups(self.on_threat_command):
            self.tree.add_command(group)
        self.tree.error(self._on_tree_error)
        #: Threads this process opened → their parent channel (the cache may not know them yet).
        self.our_threads: dict[int, int] = {}
        self._hinted: set[int] = set()
        self.synced: list[app_commands.AppCommand] = []
        self._copies_checked = False

    # -- start-up -----------------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        await self.sync_commands()

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Register ``/threat`` and ``/threat-admin`` on the configured server (instant) or globally.

        Only when they changed since the last start, and without leaving copies in the other scope
        (:mod:`adapters.discord.sync`).
        """
        try:
            self.synced = await sync_commands(self, self.tree, self.settings.guild_id)
        except discord.HTTPException as error:
            # The bot still answers mentions and DMs; the commands from an earlier sync keep working.
            log.error("could not register the app commands: HTTP %s %s", error.status, error.text)
            return []
        return self.synced

    async def on_ready(self) -> None:
        log.info(
            "Discord: logged in as %s (%s) in %d server(s); message content %s",
            self.user,
            self.user.id if self.user else "?",
            len(self.guilds),
            "on" if self.intents.message_content else "off (mentions and DMs only)",
        )
        if not self.settings.guild_id and not self._copies_checked:
            self._copies_checked = True  # READY comes again after a reconnect: once per start is enough
            await remove_server_copies(self, self.tree)

    # -- messages -----------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot or message.webhook_id is not None or message.author.id == me.id:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        try:
            place = await self.place_of(message.channel)
        except discord.HTTPException as error:
            log.warning("cannot tell where message %s was posted: %s", message.id, error.text)
            return
        mentioned = self._mentions_me(message)
        replied_to = self._replied_bot_message(message)
        if mentioned and not self.question_text(message) and not self.intents.message_content and replied_to:
            # A reply to the bot with the ping turned off: Discord sends its content only with the intent.
            await self._hint_mention(message.channel, REPLY_HINT)
        elif place.kind == "dm":
            await self._answer_in(message, message.channel, place)
        elif place.kind == "thread":
            if mentioned or (place.ours and message.content.strip()):
                await self._answer_in(message, message.channel, place)
            elif place.ours and not self.intents.message_content:
                await self._hint_mention(message.channel)
        elif mentioned and replied_to is not None:
            await self._answer_in_thread_of(message, replied_to, place)
        elif mentioned:
            await self._answer_in_new_thread(message, place)

    def _mentions_me(self, message: discord.Message) -> bool:
        """A mention of the bot or its managed role, or a reply to one of its messages (ping on or off)."""
        assert self.user is not None
        if self.user.id in message.raw_mentions or any(user.id == self.user.id for user in message.mentions):
            return True
        if self._replied_bot_message(message) is not None:
            return True
        role = message.guild.self_role if message.guild is not None else None
        return role is not None and role.id in message.raw_role_mentions

    def _replied_bot_message(self, message: discord.Message) -> discord.Message | None:
        """The bot's message this one replies to (Discord resolves it in ``referenced_message``), if any."""
        reference = message.reference
        resolved = reference.resolved if reference is not None else None
        if isinstance(resolved, discord.Message) and self.user is not None and resolved.author.id == self.user.id:
            return resolved
        return None

    async def _answer_in_thread_of(self, message: discord.Message, replied_to: discord.Message, place: Place) -> None:
        """A reply to the bot's message in a channel: answer in that message's thread (a feed post's is about
        its incident), opening it if needed; where no thread can be opened, reply in the channel."""
        title = replied_to.embeds[0].title if replied_to.embeds and replied_to.embeds[0].title else replied_to.content
        thread: discord.abc.Messageable | None = None
        try:
            thread = await replied_to.create_thread(
                name=thread_name(title or "threatbot"), auto_archive_duration=CHAT_THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as error:
            if error.code == THREAD_ALREADY_EXISTS:
                found = self.get_channel(replied_to.id) or await self.fetch_channel(replied_to.id)
                thread = found if isinstance(found, discord.Thread) else None
            else:
                log.info("cannot open a thread on %s (%s): replying in the channel", replied_to.id, error.text)
        if thread is None:
            key = Place(place.channel, str(replied_to.id), "channel")
            await self._answer_in(message, message.channel, key, reply=True)
            return
        self.our_threads[replied_to.id] = int(place.channel)
        await self._answer_in(message, thread, Place(place.channel, str(replied_to.id), "thread", ours=True))

    def question_text(self, message: discord.Message) -> str:
        """The message without the bot's mention (user or its managed role)."""
        text = message.content
        if self.user is not None:
            text = re.sub(rf"<@!?{self.user.id}>", " ", text)
        role = message.guild.self_role if message.guild is not None else None
        if role is not None:
            text = text.replace(f"<@&{role.id}>", " ")
        return " ".join(text.split())

    async def _answer_in_new_thread(self, message: discord.Message, place: Place) -> None:
        """A mention in a server channel: open a thread on it and answer there (or reply, if threads are not allowed)."""
        text = self.question_text(message)
        try:
            thread = await message.create_thread(
                name=thread_name(text or "threatbot"), auto_archive_duration=CHAT_THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as error:
            log.info("cannot open a thread in %s (%s): replying in the channel", place.channel, error.text)
            await self._answer_in(
                message, message.channel, Place(place.channel, str(message.id), "channel"), reply=True
            )
            return
        self.our_threads[thread.id] = int(place.channel)
        await self._answer_in(message, thread, Place(place.channel, str(thread.id), "thread", ours=True))

    async def _answer_in(
        self,
        message: discord.Message,
        destination: discord.abc.Messageable,
        place: Place,
        *,
        reply: bool = False,
    ) -> None:
        text = self.question_text(message)
        verb = parse_command(text).verb
        can_manage = self.can_manage(message.author, message.channel)
        incoming = IncomingMessage(
            text=text,
            platform=PLATFORM,
            channel=await self._channel_for(verb, place),
            thread_id=place.thread,
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            tz=self.settings.tz,
            can_manage=can_manage,
            now=self.clock(),
            workspace=str(message.guild.id) if message.guild else "",
        )
        try:
            refusal = (
                self._cannot_post(place, self._my_permissions(message.channel)) if verb is Verb.SUBSCRIBE else None
            )
            async with destination.typing():
                if refusal is not None and can_manage:
                    answer = Reply(refusal, incoming.thread_key(), ReplyKind.NOTICE)
                else:
                    answer = await asyncio.to_thread(self.conversation.handle, incoming)
            here = self._my_permissions(destination)
            for part in render_reply(answer, embeds_allowed=here is None or here.embed_links):
                await self._send(destination, part, reference=message if reply else None)
        except discord.HTTPException as error:
            log.warning("could not answer message %s: HTTP %s %s", message.id, error.status, error.text)
            if error.code == EMPTY_MESSAGE:
                await self._send_quietly(destination, OutgoingMessage(NO_EMBEDS))
            elif error.code in (50001, 50013, 160005, 50083):
                await self._tell_privately(message, error)
        except Exception:
            log.exception("failed to answer message %s", message.id)
            await self._send_quietly(destination, OutgoingMessage(SORRY))

    async def _tell_privately(self, message: discord.Message, error: discord.HTTPException) -> None:
        """The bot may not speak where it was asked: say so to the asker in a DM rather than stay silent."""
        where = f"<#{message.channel.id}>"  # where they asked
        text = (
            f"I couldn't answer you in {where}: Discord refused my message there ({error.text or error.code}). "
            "A server admin can give threatbot *View Channel*, *Send Messages* and *Send Messages in Threads* "
            "there — or ask me here."
        )
        try:
            await message.author.send(discord_markdown(text), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as failure:
            log.info("could not tell %s privately either: %s", message.author.id, failure.text)

    async def _hint_mention(self, thread: discord.abc.Messageable, hint: str = MENTION_HINT) -> None:
        thread_id = getattr(thread, "id", 0)
        if thread_id in self._hinted or self.user is None:
            return
        self._hinted.add(thread_id)
        await self._send_quietly(thread, OutgoingMessage(hint.format(mention=self.user.mention)))

    # -- /threat ------------------------------------------------------------------------------------

    async def on_threat_command(self, interaction: discord.Interaction, name: str, options: dict[str, Any]) -> None:
        """A ``/threat`` or ``/threat-admin`` subcommand: defer, answer in a worker thread, follow up, open a
        thread for lists. ``subscribe`` first checks the interaction's ``app_permissions``: where the bot
        could not post, it says what is missing and subscribes nothing."""
        command = Command.from_options(name, {k: v for k, v in options.items() if v is not None})
        private = command.verb is Verb.HELP
        await interaction.response.defer(thinking=True, ephemeral=private)
        place = await self.place_of(interaction.channel, interaction.channel_id)
        user = interaction.user
        can_manage = self.can_manage_interaction(interaction)
        incoming = IncomingMessage(
            text=command.display(),
            platform=PLATFORM,
            channel=await self._channel_for(command.verb, place),
            thread_id=place.thread,
            user_id=str(user.id),
            user_name=user.display_name,
            tz=self.settings.tz,
            can_manage=can_manage,
            now=self.clock(),
            command=command,
            workspace=str(interaction.guild_id or ""),
        )
        permissions = interaction.app_permissions if interaction.guild_id is not None else None
        refusal = self._cannot_post(place, permissions) if command.verb in POSTING_VERBS and can_manage else None
        if refusal is not None:
            answer = Reply(refusal, incoming.thread_key(), ReplyKind.NOTICE, ephemeral=True)
        else:
            answer = await asyncio.to_thread(self.conversation.handle, incoming)
        if command.verb is Verb.SUBSCRIBE and not answer.ephemeral:
            note = self._posting_note(place, permissions)
            answer.text = f"{answer.text}\n{note}" if note else answer.text
        if answer.kind is ReplyKind.HELP:
            answer.text = f"{answer.text}\n{SLASH_HELP}"
        embeds_allowed = interaction.guild_id is None or interaction.app_permissions.embed_links
        parts = render_reply(answer, embeds_allowed=embeds_allowed)
        if answer.ephemeral and not private:
            # The deferral was public; a private answer replaces it instead of showing to everyone.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as error:
                log.debug("could not delete the deferred response: %s", error.text)
            for part in parts:
                await self._follow_up(interaction, part, ephemeral=True)
            return
        first: discord.WebhookMessage | None = None
        for part in parts:
            sent = await self._follow_up(interaction, part, ephemeral=private)
            first = first or sent
        if first is not None and self._wants_thread(answer, place, interaction):
            await self._open_answer_thread(interaction, first, answer, command, place)

    def _wants_thread(self, answer: Reply, place: Place, interaction: discord.Interaction) -> bool:
        if answer.ephemeral or answer.kind not in THREAD_KINDS or place.kind != "channel":
            return False
        return interaction.app_permissions.create_public_threads or not interaction.app_permissions.value

    async def _open_answer_thread(
        self,
        interaction: discord.Interaction,
        first: discord.WebhookMessage,
        answer: Reply,
        command: Command,
        place: Place,
    ) -> None:
        channel_id = int(place.channel)
        try:
            data = await self.http.start_thread_with_message(
                channel_id,
                first.id,
                name=thread_name(command.display() or answer.text),
                auto_archive_duration=CHAT_THREAD_ARCHIVE_MINUTES,
            )
        except discord.HTTPException as error:
            log.info("no thread for the answer in %s: %s", channel_id, error.text)
            return
        thread_id = int(data["id"])
        self.our_threads[thread_id] = channel_id
        new_key = ThreadKey(PLATFORM, place.channel, str(thread_id))
        await asyncio.to_thread(self.conversation.rebind_thread, answer.thread_key, new_key, now=self.clock())

    async def _follow_up(
        self, interaction: discord.Interaction, part: OutgoingMessage, *, ephemeral: bool
    ) -> discord.WebhookMessage:
        return await interaction.followup.send(
            content=part.content or discord.utils.MISSING,
            embeds=part.embeds,
            ephemeral=ephemeral,
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("/threat failed", exc_info=error)
        try:
            if interaction.response.is_done():
                # Replace the public "thinking…" message with a private note.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
                await interaction.followup.send(SORRY, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(SORRY, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            log.debug("could not report the failure to the user", exc_info=True)

    # -- where and who ------------------------------------------------------------------------------

    async def place_of(self, channel: Any, channel_id: int | None = None) -> Place:
        """The conversation's place for a channel object (fetched when the cache does not know it)."""
        if isinstance(channel, discord.DMChannel | discord.GroupChannel):
            return Place(str(channel.id), str(channel.id), "dm", feed_kind="dm")
        if isinstance(channel, discord.Thread):
            ours = self.user is not None and (channel.owner_id == self.user.id or channel.id in self.our_threads)
            parent = channel.parent_id or self.our_threads.get(channel.id, channel.id)
            if isinstance(self.get_channel(parent), discord.ForumChannel):
                # A forum post: subscriptions made here post to the forum, one post per incident.
                return Place(str(parent), str(channel.id), "thread", ours, str(parent), "forum")
            return Place(str(parent), str(channel.id), "thread", ours, str(channel.id), "thread")
        if isinstance(channel, discord.abc.GuildChannel):
            return Place(str(channel.id), "", "channel")
        known_id = getattr(channel, "id", None) or channel_id
        if known_id is None:
            raise discord.ClientException("an event without a channel")
        if known_id in self.our_threads:
            return Place(str(self.our_threads[known_id]), str(known_id), "thread", True, str(known_id), "thread")
        if isinstance(channel, discord.PartialMessageable) and channel.guild_id is None:
            return Place(str(known_id), str(known_id), "dm", feed_kind="dm")
        fetched = await self.fetch_channel(known_id)  # not cached: ask Discord what it is
        if isinstance(fetched, discord.PartialMessageable):  # pragma: no cover - fetch returns real channels
            return Place(str(known_id), "", "channel")
        return await self.place_of(fetched)

    async def _channel_for(self, verb: Verb, place: Place) -> str:
        """The channel the core is told: the feed's for subscription commands, else the conversation's.

        Inside a thread the two differ. A blank ``subscribe`` there watches the thread's topic, so its
        context is carried to the feed's key first (``Conversation.rebind_thread``).
        """
        if verb not in FEED_VERBS or place.feed_channel == place.channel:
            return place.channel
        if place.thread:
            old = ThreadKey(PLATFORM, place.channel, place.thread)
            new = ThreadKey(PLATFORM, place.feed_channel, place.thread)
            await asyncio.to_thread(self.conversation.rebind_thread, old, new, now=self.clock())
        return place.feed_channel

    def _my_permissions(self, channel: Any) -> discord.Permissions | None:
        """The bot's permissions in ``channel`` from the cache; None where they cannot be known (or a DM)."""
        guild = getattr(channel, "guild", None)
        if guild is None or isinstance(channel, discord.PartialMessageable) or guild.me is None:
            return None
        try:
            return channel.permissions_for(guild.me)
        except (AttributeError, discord.ClientException):
            return None

    @staticmethod
    def _cannot_post(place: Place, permissions: discord.Permissions | None) -> str | None:
        """Why feed posts for a subscription made here could not be delivered, or None when they can."""
        if permissions is None or place.feed_kind == "dm":
            return None
        missing, _ = missing_for_posting(place.feed_kind, permissions)
        if not missing:
            return None
        names = " and ".join(f"*{permission_label(flag)}*" for flag in missing)
        where = PLACE_WORDS[place.feed_kind]
        return (
            f"I can't post the feed in {where}: I'm missing {names} here. A server admin can allow "
            f"{'it' if len(missing) == 1 else 'them'} for threatbot (the channel's settings → Permissions), "
            "then try again. Nothing was changed."
        )

    @staticmethod
    def _posting_note(place: Place, permissions: discord.Permissions | None) -> str:
        """What works less well here (updates as replies instead of a thread), for the subscribe confirmation."""
        if permissions is None or place.feed_kind == "dm":
            return ""
        _, missing = missing_for_posting(place.feed_kind, permissions)
        if "create_public_threads" in missing:
            return (
                "Without *Create Public Threads* here, updates to an incident come as replies to its post "
                "instead of in its thread."
            )
        if "read_message_history" in missing:
            return "Without *Read Message History* here, updates to an incident come as plain messages."
        return ""

    def can_manage(self, author: discord.abc.User, channel: Any) -> bool:
        """A message author's right to manage feeds: THREATBOT_DISCORD_MANAGERS, by default Manage Channels/Server."""
        policy = self.settings.managers
        if not isinstance(author, discord.Member):
            return policy.allows(user_id=author.id)
        try:
            # A channel the cache does not know (PartialMessageable) has no overwrites to apply: use the server's.
            partial = isinstance(channel, discord.PartialMessageable)
            permissions = author.guild_permissions if partial else channel.permissions_for(author)
        except (AttributeError, discord.ClientException):
            permissions = author.guild_permissions
        return policy.allows(user_id=author.id, permissions=permissions, role_ids=[r.id for r in author.roles])

    def can_manage_interaction(self, interaction: discord.Interaction) -> bool:
        policy = self.settings.managers
        user = interaction.user
        if interaction.guild_id is None or not isinstance(user, discord.Member):
            return policy.allows(user_id=user.id)
        return policy.allows(user_id=user.id, permissions=interaction.permissions, role_ids=[r.id for r in user.roles])

    # -- sending ------------------------------------------------------------------------------------

    async def _send(
        self, destination: discord.abc.Messageable, part: OutgoingMessage, *, reference: discord.Message | None = None
    ) -> discord.Message:
        if reference is None:
            return await destination.send(
                content=part.content or None, embeds=part.embeds, allowed_mentions=NO_MENTIONS
            )
        return await destination.send(
            content=part.content or None,
            embeds=part.embeds,
            allowed_mentions=NO_MENTIONS,
            reference=reference,
            mention_author=False,
        )

    async def _send_quietly(self, destination: discord.abc.Messageable, part: OutgoingMessage) -> None:
        try:
            await self._send(destination, part)
        except discord.HTTPException as error:
            log.warning("could not post to %s: HTTP %s %s", getattr(destination, "id", "?"), error.status, error.text)
