"""Feed delivery through the Discord bot's REST API: incidents as embeds, updates in the incident's thread.

``DiscordTarget`` implements :class:`bot.delivery.base.DeliveryTarget` for subscriptions whose platform
is ``discord`` and whose channel is a channel id:

* ``post`` — the incident as one embed (:func:`adapters.discord.render.render_incident`);
* ``update`` — opens a thread on the incident's message the first time (its id is the message's),
  then replies there; where no thread can be opened (a DM, missing Create Public Threads) it replies
  to the message instead. The returned ref carries the thread id for the next update;
* ``post_digest`` — a burst of incidents as one message of up to 10 embeds.

Every send passes a ``nonce`` derived from the payload's idempotency key; discord.py adds
``enforce_nonce``, so Discord drops a repeat sent within minutes (the deliverer's at-least-once
retry after a crash). Rate limits are discord.py's: it waits out 429s itself and only a wait longer
than ``max_ratelimit_timeout`` comes back here, as :class:`~bot.delivery.base.RateLimited`.

The target works from any thread. Give it a token and it keeps its own REST-only client (no gateway)
on a private loop — what ``poll --once`` and ``serve`` use; or give it a running ``discord.Client``
and it sends through that client's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import discord

from adapters.discord.limits import OutgoingMessage
from adapters.discord.loop import LoopThread
from adapters.discord.render import render_digest, render_incident, render_update, thread_name
from bot.delivery.base import (
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

__all__ = ["DiscordTarget", "delivery_error", "nonce_for"]

log = logging.getLogger(__name__)

# threatbot never joins voice: no warnings about voice libraries at every start.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
T = TypeVar("T")

#: Discord error codes met when opening a thread on a message.
THREAD_ALREADY_EXISTS = 160004
CANNOT_ON_CHANNEL_TYPE = 50024
#: Feed threads stay open a week between updates (a message in an archived thread reopens it).
FEED_THREAD_ARCHIVE_MINUTES = 10080


def nonce_for(key: str) -> str:
    """Discord's nonce (≤ 25 characters) for an idempotency key: the same key, the same nonce."""
    return "tb" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:23]


def delivery_error(error: BaseException, what: str) -> DeliveryError:
    """A discord.py / network failure as the deliverer's error classes (retry, wait, or give up)."""
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

    # -- the three verbs ----------------------------------------------------------------------------

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        channel_id = self._channel_id(channel)
        message = self._call(lambda: self._send(channel_id, render_incident(post), nonce_for(post.key)), "post")
        return PostRef(post.platform or self.platform, channel, str(message.id))

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        channel_id = self._channel_id(channel)
        message = self._call(lambda: self._send(channel_id, render_digest(digest), nonce_for(digest.key)), "digest")
        return PostRef(digest.platform or self.platform, channel, str(message.id))

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        channel_id = self._channel_id(channel)
        outgoing = render_update(update)
        name = thread_name(update.record.title)
        thread_id = self._call(lambda: self._reply(channel_id, ref, outgoing, nonce_for(update.key), name), "update")
        return PostRef(ref.platform, ref.channel, ref.message_id, thread_id, ref.url)

    def close(self) -> None:
        if self._own_loop is None:
            return
        try:
            self._own_loop.run(self._client.close(), timeout=10)
        except Exception:  # closing is best effort
            log.debug("closing the Discord REST client failed", exc_info=True)
        self._own_loop.close()

    # -- sending ------------------------------------------------------------------------------------

    async def _send(
        self,
        channel_id: int,
        outgoing: OutgoingMessage,
        nonce: str | None,
        reference: discord.MessageReference | None = None,
    ) -> discord.Message:
        await self._ensure_login()
        channel = self._client.get_partial_messageable(channel_id)
        return await channel.send(
            content=outgoing.content or None,
            embeds=outgoing.embeds,
            nonce=nonce,
            allowed_mentions=discord.AllowedMentions.none(),
            reference=reference,  # type: ignore[arg-type]
            mention_author=False if reference is not None else None,
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
            except (discord.NotFound, discord.Forbidden) as error:
                log.info("incident thread %s unusable (%s); replying in the channel instead", thread_id, error.text)
        reference = discord.MessageReference(
            message_id=int(ref.message_id), channel_id=channel_id, fail_if_not_exists=False
        )
        await self._send(channel_id, outgoing, nonce, reference)
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

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
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
            raise delivery_error(error, f"discord {what}") from error

    def _channel_id(self, channel: str) -> int:
        text = channel.strip()
        if not text.isdigit():
            raise DeliveryRejected(f"{channel!r} is not a Discord channel id ({self.channel_format})")
        return int(text)
