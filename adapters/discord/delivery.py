"""Feed delivery through the Discord bot's REST API: incidents as embeds, updates in the incident's thread.

``DiscordTarget`` implements :class:`bot.delivery.base.DeliveryTarget` for subscriptions whose platform
is ``discord`` and whose channel is a channel id:

* ``post`` — the incident as one embed (:func:`adapters.discord.render.render_incident`);
* ``update`` — opens a thread on the incident's message the first time (its id is the message's),
  then replies there; where no thread can be opened (a DM, missing Create Public Threads) it replies
  to the message instead. The returned ref carries the thread id for the next update;
* ``post_digest`` — a burst of incidents as one message of up to 10 embeds.

Where the subscription's channel is:

* a text channel — as above;
* a thread — posts go into the thread (Discord reopens an archived one); updates reply to the post;
* a forum or media channel — these take no plain messages (``50008``), so each incident becomes its
  own post (a thread whose first message is the embed, as MonitoRSS does) and its updates go into that
  post. Before opening one the target looks for the post among the forum's active threads, since a
  forum post carries no nonce.

Every send passes a ``nonce`` derived from the payload's idempotency key; discord.py adds
``enforce_nonce``, so Discord drops a repeat sent within minutes (the deliverer's at-least-once
retry after a crash). Rate limits are discord.py's: it waits out 429s itself and only a wait longer
than ``max_ratelimit_timeout`` comes back here, as :class:`~bot.delivery.base.RateLimited`.

**A channel that cannot receive** — deleted (``10003``), hidden from the bot or the bot removed
(``50001``), a permission missing (``50013``; Embed Links shows as ``50006``, an embed-only message
emptied), a locked thread (``160005``/``50083``), a DM that refuses the bot (``50007``) — raises
:class:`~bot.delivery.base.ChannelUnavailable` with a reason a person can act on; the deliverer
counts those per channel and disables the channel's subscriptions with that reason.

The target works from any thread. Give it a token and it keeps its own REST-only client (no gateway)
on a private loop — what ``poll --once`` and ``serve`` use; or give it a running ``discord.Client``
and it sends through that client's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Final, TypeVar

import aiohttp
import discord

from adapters.discord.limits import CONTENT, OutgoingMessage, clip
from adapters.discord.loop import LoopThread
from adapters.discord.render import discord_markdown, render_digest, render_incident, render_update, thread_name
from bot.delivery.base import (
    ChannelNotice,
    ChannelUnavailable,
    DeliveryError,
    DeliveryRejected,
    DeliveryTarget,
    Digest,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateHint,
    RateLimited,
)

__all__ = ["CHANNEL_FAILURES", "DiscordTarget", "channel_failure", "delivery_error", "nonce_for"]

log = logging.getLogger(__name__)

# threatbot never joins voice: no warnings about voice libraries at every start.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
T = TypeVar("T")

#: Discord error codes met when opening a thread on a message, or posting where messages cannot go.
THREAD_ALREADY_EXISTS = 160004
CANNOT_ON_CHANNEL_TYPE = 50024
NON_TEXT_CHANNEL = 50008
CANNOT_REPLY_WITHOUT_HISTORY = 160002
#: Feed threads stay open a week between updates (a message in an archived thread reopens it).
FEED_THREAD_ARCHIVE_MINUTES: Final = 10080


def nonce_for(key: str) -> str:
    """Discord's nonce (≤ 25 characters) for an idempotency key: the same key, the same nonce."""
    return "tb" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:23]


#: Discord's JSON error codes that say the *channel* cannot receive, with the reason shown to people.
#: ``50013`` names the permission the failed call needed (see :func:`channel_failure`).
CHANNEL_FAILURES: dict[int, str] = {
    10003: "Unknown Channel: the channel was deleted",
    10015: "Unknown Webhook: the webhook was deleted",
    50001: "Missing Access: the bot cannot see the channel, or was removed from the server",
    50007: "the person does not accept direct messages from the bot",
    50008: "the channel takes no messages (a voice channel or a category)",
    50013: "Missing Permissions",
    50083: "the thread is locked and archived",
    160005: "the thread is locked",
}
EMPTY_MESSAGE = 50006
THREAD_KINDS = (discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)


def channel_failure(error: BaseException, what: str, *, needs: str = "Send Messages") -> ChannelUnavailable | None:
    """The failure as :class:`ChannelUnavailable` when it is about the channel, else None.

    ``needs`` is the permission the call relied on, named in the reason of a ``50013``. A bot's embeds
    without Embed Links are dropped by Discord, and an embed-only message is then refused as empty
    (``50006``): every feed message here is embeds, so that is the Embed Links permission.
    """
    if not isinstance(error, discord.HTTPException):
        return None
    code = error.code
    if code == EMPTY_MESSAGE:
        reason = "Missing Permissions: Embed Links (feed posts are embeds)"
    elif code == 50013:
        reason = f"Missing Permissions: {needs}"
    elif code in CHANNEL_FAILURES:
        reason = CHANNEL_FAILURES[code]
    elif isinstance(error, discord.NotFound) and not code:
        reason = CHANNEL_FAILURES[10003]
    else:
        return None
    return ChannelUnavailable(f"{what}: HTTP {error.status} (code {code}: {error.text})", reason=reason, code=str(code))


def delivery_error(error: BaseException, what: str, *, needs: str = "Send Messages") -> DeliveryError:
    """A discord.py / network failure as the deliverer's error classes (retry, wait, give up, or channel gone)."""
    if (unavailable := channel_failure(error, what, needs=needs)) is not None:
        return unavailable
    if isinstance(error, discord.RateLimited):
        return RateLimited(f"{what}: rate limited for {error.retry_after:.1f} s", error.retry_after)
    if isinstance(error, discord.LoginFailure):
        return DeliveryRejected(f"{what}: Discord refused the bot token")
    if isinstance(error, discord.HTTPException):
        status = error.status
        detail = f"{what}: HTTP {status}" + (f" (code {error.code}: {error.text})" if error.text else "")
        if status == 429:
            retry = error.response.headers.get("Retry-After") if error.response is not None else None
            try:
                seconds = float(retry) if retry else None
            except ValueError:
                seconds = None
            return RateLimited(detail, seconds)
        if isinstance(error, discord.DiscordServerError) or status >= 500 or status == 408:
            return DeliveryError(detail)
        return DeliveryRejected(detail)
    if isinstance(error, aiohttp.ClientError | OSError | asyncio.TimeoutError | TimeoutError):
        return DeliveryError(f"{what}: {type(error).__name__}: {error}")
    return DeliveryError(f"{what}: {type(error).__name__}: {error}")


class DiscordTarget(DeliveryTarget):
    """Delivers ``discord`` subscriptions through the bot's REST API."""

    platform = "discord"
    channel_format = "a Discord channel id, e.g. 1012345678901234567 (Developer Mode → Copy Channel ID)"
    #: Discord allows about 5 messages per 5 s per channel; one a second leaves room for chat answers.
    rate_hint = RateHint(1.0)

    def __init__(
        self,
        token: str | None = None,
        *,
        client: discord.Client | None = None,
        platforms: tuple[str, ...] = (),
        max_ratelimit_timeout: float = 60.0,
        timeout: float = 180.0,
    ) -> None:
        super().__init__(platforms=platforms)
        if (token is None) == (client is None):
            raise ValueError("DiscordTarget wants a bot token or a running discord.Client, not both")
        self._token = token
        self._timeout = timeout
        self._own_loop = LoopThread("discord-delivery") if client is None else None
        self._client = client or discord.Client(
            intents=discord.Intents(guilds=True),  # REST only: never connects, but discord.py warns without it
            max_ratelimit_timeout=max_ratelimit_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self._login_lock: asyncio.Lock | None = None
        #: Forum and media channels met so far: they take posts, not messages.
        self._forums: dict[int, discord.ForumChannel] = {}

    # -- the three verbs ----------------------------------------------------------------------------

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        channel_id = self._channel_id(channel)
        outgoing = render_incident(post)
        name = thread_name(post.record.title)
        message_id, thread_id = self._call(
            lambda: self._deliver(channel_id, outgoing, nonce_for(post.key), name), "post", channel_id
        )
        return PostRef(post.platform or self.platform, channel, message_id, thread_id)

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        channel_id = self._channel_id(channel)
        outgoing = render_digest(digest)
        name = thread_name(outgoing.embeds[0].title or "New incidents") if outgoing.embeds else "New incidents"
        message_id, thread_id = self._call(
            lambda: self._deliver(channel_id, outgoing, nonce_for(digest.key), name), "digest", channel_id
        )
        return PostRef(digest.platform or self.platform, channel, message_id, thread_id)

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        channel_id = self._channel_id(channel)
        outgoing = render_update(update)
        name = thread_name(update.record.title)
        thread_id = self._call(
            lambda: self._reply(channel_id, ref, outgoing, nonce_for(update.key), name), "update", channel_id
        )
        return PostRef(ref.platform, ref.channel, ref.message_id, thread_id, ref.url)

    def notify_unavailable(self, channel: str, notice: ChannelNotice) -> bool:
        """DM each subscriber (a Discord user id) once: which subscriptions stopped here, why, how to resume.

        A subscriber whose privacy settings refuse DMs (``50007``) is skipped; the log and
        ``/threat subscriptions`` say it anyway. Returns whether anyone was told.
        """
        text = discord_markdown(
            notice.text(f"<#{channel}>").replace("say `resume` there", "run `/threat-admin resume` there")
        )
        told = False
        for user in notice.subscribers:
            if not user.isdigit():
                continue  # subscribed from the CLI: nobody to DM
            try:
                self._call(partial(self._direct_message, int(user), text), "notice", int(user))
                told = True
            except DeliveryError as error:
                log.warning("could not DM subscriber %s about channel %s: %s", user, channel, error)
        return told

    async def _direct_message(self, user_id: int, text: str) -> None:
        await self._ensure_login()
        dm = await self._client.create_dm(discord.Object(user_id))
        await dm.send(content=clip(text, CONTENT), allowed_mentions=discord.AllowedMentions.none())

    def close(self) -> None:
        if self._own_loop is None:
            return
        try:
            self._own_loop.run(self._client.close(), timeout=10)
        except Exception:  # closing is best effort
            log.debug("closing the Discord REST client failed", exc_info=True)
        self._own_loop.close()

    # -- sending ------------------------------------------------------------------------------------

    async def _deliver(
        self, channel_id: int, outgoing: OutgoingMessage, nonce: str, name: str
    ) -> tuple[str, str | None]:
        """A new top-level message, or in a forum a new post; returns (message id, thread id or None)."""
        await self._ensure_login()
        try:
            if channel_id not in self._forums:
                try:
                    message = await self._send(channel_id, outgoing, nonce)
                    return str(message.id), None
                except discord.HTTPException as error:
                    if error.code != NON_TEXT_CHANNEL or not await self._is_forum(channel_id):
                        raise
            return await self._forum_post(channel_id, outgoing, name)
        except discord.HTTPException as error:
            if error.code == 50013:
                error.threatbot_needs = await self._needed_permission(channel_id)  # type: ignore[attr-defined]
            raise

    async def _needed_permission(self, channel_id: int) -> str:
        """Which permission a refused send needed: it depends on what the channel is."""
        try:
            channel = self._client.get_channel(channel_id) or await self._client.fetch_channel(channel_id)
        except discord.HTTPException:
            return "Send Messages"
        if getattr(channel, "type", None) in THREAD_KINDS:
            return "Send Messages in Threads"
        return "Send Messages"

    async def _is_forum(self, channel_id: int) -> bool:
        """Whether the channel is a forum or media channel (remembered: they only take posts)."""
        channel = await self._client.fetch_channel(channel_id)
        if isinstance(channel, discord.ForumChannel):  # media channels are ForumChannels too
            self._forums[channel_id] = channel
            return True
        return False

    async def _forum_post(self, channel_id: int, outgoing: OutgoingMessage, name: str) -> tuple[str, str]:
        """One forum post (thread + first message) per incident; an earlier identical post is reused."""
        forum = self._forums.get(channel_id)
        if forum is None:
            await self._is_forum(channel_id)
            forum = self._forums[channel_id]
        existing = await self._existing_post(forum, outgoing, name)
        if existing is not None:
            return existing, existing
        created = await forum.create_thread(
            name=name,
            auto_archive_duration=FEED_THREAD_ARCHIVE_MINUTES,
            content=outgoing.content or None,
            embeds=outgoing.embeds,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        return str(created.message.id), str(created.thread.id)

    async def _existing_post(self, forum: discord.ForumChannel, outgoing: OutgoingMessage, name: str) -> str | None:
        """The id of an active post of ours with the same name and first embed (a retry after a crash)."""
        me = self._client.user
        if me is None or not outgoing.embeds:
            return None
        try:
            data = await self._client.http.get_active_threads(forum.guild.id)
        except discord.HTTPException:
            return None
        wanted = outgoing.embeds[0]
        for thread in data.get("threads", []):
            if thread.get("parent_id") != str(forum.id) or thread.get("owner_id") != str(me.id):
                continue
            if thread.get("name") != name:
                continue
            try:
                first = await self._client.http.get_message(thread["id"], thread["id"])
            except discord.HTTPException:
                continue
            embeds: list[dict[str, Any]] = list(first.get("embeds") or [])  # type: ignore[arg-type]
            footer = (embeds[0].get("footer") or {}).get("text") if embeds else None
            if embeds and embeds[0].get("title") == wanted.title and footer == wanted.footer.text:
                return str(thread["id"])
        return None

    async def _send(
        self,
        channel_id: int,
        outgoing: OutgoingMessage,
        nonce: str | None,
        reference: discord.MessageReference | None = None,
    ) -> discord.Message:
        await self._ensure_login()
        channel = self._client.get_partial_messageable(channel_id)
        extra: dict[str, Any] = {}
        if nonce is not None:
            extra["nonce"] = nonce
        if reference is not None:
            extra.update(reference=reference, mention_author=False)
        return await channel.send(
            content=outgoing.content or None,
            embeds=outgoing.embeds,
            allowed_mentions=discord.AllowedMentions.none(),
            **extra,
        )

    async def _reply(
        self, channel_id: int, ref: PostRef, outgoing: OutgoingMessage, nonce: str, name: str
    ) -> str | None:
        """Post the update in the incident's thread (opening it if needed); returns the thread id, or None."""
        await self._ensure_login()
        thread_id = int(ref.thread_id) if ref.thread_id and ref.thread_id.isdigit() else None
        if thread_id is None:
            thread_id = await self._open_thread(channel_id, int(ref.message_id), name)
        if thread_id is not None:
            try:
                await self._send(thread_id, outgoing, nonce)
                return str(thread_id)
            except discord.HTTPException as error:
                if error.code not in (10003, 50001, 50013, 50083, 160005):
                    raise
                log.info("incident thread %s unusable (%s); replying in the channel instead", thread_id, error.text)
        reference = discord.MessageReference(
            message_id=int(ref.message_id), channel_id=channel_id, fail_if_not_exists=False
        )
        try:
            await self._send(channel_id, outgoing, nonce, reference)
        except discord.HTTPException as error:
            if error.code == NON_TEXT_CHANNEL:
                # A forum: the incident's post was the only place for it, and it is locked or deleted.
                raise DeliveryRejected(f"the incident's forum post {ref.message_id} is locked or deleted") from error
            if error.code != CANNOT_REPLY_WITHOUT_HISTORY:
                raise
            await self._send(channel_id, outgoing, nonce)  # no Read Message History: a plain message then
        return None

    async def _open_thread(self, channel_id: int, message_id: int, name: str) -> int | None:
        try:
            data = await self._client.http.start_thread_with_message(
                channel_id, message_id, name=name, auto_archive_duration=FEED_THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as error:
            if error.code == THREAD_ALREADY_EXISTS:
                return message_id  # a thread started from a message has the message's id
            if isinstance(error, discord.Forbidden | discord.NotFound) or error.code == CANNOT_ON_CHANNEL_TYPE:
                log.info("cannot open a thread on %s/%s (%s): replying instead", channel_id, message_id, error.text)
                return None
            raise
        return int(data["id"])

    # -- plumbing -----------------------------------------------------------------------------------

    async def _ensure_login(self) -> None:
        if self._token is None:
            if self._client.user is None:
                raise DeliveryError("the Discord bot has not logged in yet")
            return
        if self._login_lock is None:
            self._login_lock = asyncio.Lock()
        async with self._login_lock:
            if self._client.user is None:
                await self._client.login(self._token)

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]], what: str, channel_id: int) -> T:
        try:
            if self._own_loop is not None:
                return self._own_loop.run(make(), timeout=self._timeout)
            if self._client.user is None or self._client.is_closed():
                raise DeliveryError("the Discord bot is not logged in")
            future = asyncio.run_coroutine_threadsafe(make(), self._client.loop)
            try:
                return future.result(self._timeout)
            except TimeoutError:
                future.cancel()
                raise
        except DeliveryError:
            raise
        except Exception as error:
            needs = getattr(error, "threatbot_needs", "Send Messages")
            raise delivery_error(error, f"discord {what} to {channel_id}", needs=needs) from error

    def _channel_id(self, channel: str) -> int:
        text = channel.strip()
        if not text.isdigit():
            raise DeliveryRejected(f"{channel!r} is not a Discord channel id ({self.channel_format})")
        return int(text)
