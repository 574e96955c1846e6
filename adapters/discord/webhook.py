"""Webhook-only mode: feed posts through a channel webhook URL — no bot, no token, no gateway.

A server that only wants the feed creates a webhook (channel settings → Integrations → Webhooks),
and threatbot posts there. Subscriptions use the platform ``discord-webhook``; their channel is a
name: ``THREATBOT_DISCORD_WEBHOOK_URL`` serves any name, ``THREATBOT_DISCORD_WEBHOOKS=name=URL,…``
routes names to different webhooks.

Only Discord webhook URLs are accepted (``https://discord.com/api/webhooks/<id>/<token>``, also
``discordapp.com``, ``ptb.`` and ``canary.``, optionally with ``?thread_id=``): anything else is refused
unless a test passes ``allow_any_host=True`` for a URL on the API base discord.py is pointed at
(:func:`adapters.discord.endpoints.point_discord_at`). The token is a secret: it is never logged —
not by threatbot, and not by discord.py's debug log either (a filter redacts it).

What a webhook cannot do: open threads in a text channel, reply to a message, or dedupe by nonce.
So an update is a new message naming the incident (with a link to the original post when the
webhook's server is known), and a crash between a send and its commit can repeat a post.

A webhook of a **forum or media channel** cannot post plain messages (Discord answers ``220001``):
there every incident becomes its own post (``thread_name``) and its updates go into that post
(``thread_id``), as MonitoRSS does. A webhook URL with ``?thread_id=`` posts into that thread.

**Pacing and duplicates are per webhook**, not per subscription channel name: several names may
route to one webhook, and the deliverer paces by name. So the target spaces sends to one webhook
by its ``rate_hint`` (answering :class:`~bot.delivery.base.RateLimited` with the wait, which the
deliverer honours without counting an attempt), and an incident, update or digest already posted
through a webhook under another name is not posted again: the first post's ref is returned.

A **deleted webhook** (``10015``) raises :class:`~bot.delivery.base.ChannelUnavailable`: the
deliverer disables the subscriptions that route to it, with that reason.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import aiohttp
import discord

from adapters.discord.delivery import delivery_error
from adapters.discord.endpoints import current_endpoints
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

__all__ = ["DiscordWebhookTarget", "WebhookAddress", "parse_webhook_url"]

log = logging.getLogger(__name__)

#: "Webhooks posted to forum channels must have a thread_name or thread_id".
FORUM_NEEDS_THREAD = 220001
#: What a payload is, for "already carried": its kind first, then what makes it the same payload.
Identity = tuple[Hashable, ...]
#: How many posted payloads per target are remembered to avoid posting one twice through one webhook.
CARRIED_MAX = 5000

_DISCORD_WEBHOOK = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
    r"(?P<id>\d{15,21})/(?P<token>[A-Za-z0-9_.-]{20,120})/?$"
)
_ANY_WEBHOOK = re.compile(
    r"^(?P<root>https?://[^/]+(?:/[^?#]*?)?)(?:/v\d+)?/webhooks/(?P<id>\d+)/(?P<token>[A-Za-z0-9_.-]+)/?$"
)


@dataclass(frozen=True)
class WebhookAddress:
    """A parsed webhook URL. ``str()`` and ``repr()`` never show the token."""

    id: int
    token: str = field(repr=False)
    thread_id: int | None = None

    def __str__(self) -> str:
        return f"discord webhook {self.id}" + (f" (thread {self.thread_id})" if self.thread_id else "")


def parse_webhook_url(url: str, *, allow_any_host: bool = False) -> WebhookAddress:
    """The id, token and thread of a Discord webhook URL; ValueError (without the token) for anything else."""
    parts = urlsplit((url or "").strip())
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    match = _DISCORD_WEBHOOK.match(base)
    if match is None and allow_any_host:
        loose = _ANY_WEBHOOK.match(base)
        root = current_endpoints().api_root
        if loose is not None and loose["root"].rstrip("/") != root:
            raise ValueError(
                f"webhook URL on {parts.netloc} is not on the Discord API threatbot is pointed at ({root})"
            )
        match = loose
    if match is None:
        raise ValueError(
            "not a Discord webhook URL (expected https://discord.com/api/webhooks/<id>/<token>, "
            f"got one for host {parts.netloc or '?'!r})"
        )
    thread = parse_qs(parts.query).get("thread_id", [""])[0]
    if thread and not thread.isdigit():
        raise ValueError("the webhook URL's thread_id must be a numeric id")
    return WebhookAddress(int(match["id"]), match["token"], int(thread) if thread else None)


class _RedactTokens(logging.Filter):
    """Removes webhook tokens from log records (discord.py logs webhook URLs at debug level)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.tokens:
            return True
        message = record.getMessage()
        redacted = message
        for token in self.tokens:
            redacted = redacted.replace(token, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _RedactTokens()


def _scrub(text: str) -> str:
    for token in _REDACTOR.tokens:
        text = text.replace(token, "[redacted]")
    return text


for _name in ("discord.webhook.async_", "discord.webhook.sync", "discord.http"):
    logging.getLogger(_name).addFilter(_REDACTOR)


class DiscordWebhookTarget(DeliveryTarget):
    """Delivers ``discord-webhook`` subscriptions to channel webhooks, chosen by the subscription's channel name."""

    platform = "discord-webhook"
    channel_format = "a name: THREATBOT_DISCORD_WEBHOOKS maps names to webhook URLs (one URL serves any name)"
    #: Discord allows a webhook about 30 messages a minute in one channel.
    rate_hint = RateHint(0.5)

    def __init__(
        self,
        webhooks: Mapping[str, str] | str,
        *,
        allow_any_host: bool = False,
        platforms: tuple[str, ...] = (),
        username: str | None = None,
        timeout: float = 120.0,
        pace: float | None = None,
    ) -> None:
        super().__init__(platforms=platforms)
        urls = {"*": webhooks} if isinstance(webhooks, str) else dict(webhooks)
        if not urls:
            raise ValueError("DiscordWebhookTarget needs at least one webhook URL")
        self._addresses: dict[str, WebhookAddress] = {}
        for name, url in urls.items():
            try:
                self._addresses[name] = parse_webhook_url(url, allow_any_host=allow_any_host)
            except ValueError as error:
                raise ValueError(f"webhook {name!r}: {error}") from None
        _REDACTOR.tokens.update(a.token for a in self._addresses.values())
        self.username = username
        self._timeout = timeout
        self._loop = LoopThread("discord-webhook")
        self._session: aiohttp.ClientSession | None = None
        self._jump_roots: dict[int, str | None] = {}
        #: Seconds between two sends to one webhook (default: the rate hint's interval).
        self.pace = self.rate_hint.interval if pace is None else pace
        self._last_send: dict[WebhookAddress, float] = {}
        #: What each webhook already carries: payload identity → the ref of its message (bounded).
        self._carried: OrderedDict[tuple[WebhookAddress, Identity], PostRef] = OrderedDict()
        #: Webhooks whose channel is a forum or media channel (met a 220001): every incident is a post.
        self._forum_hooks: set[WebhookAddress] = set()
        self._state = threading.Lock()

    def __repr__(self) -> str:
        return f"DiscordWebhookTarget({', '.join(f'{n}: {a}' for n, a in self._addresses.items())})"

    # -- the three verbs ----------------------------------------------------------------------------

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        address = self._address(channel)
        identity = ("post", post.cluster_id)
        if (known := self._already(address, identity, post.platform, channel)) is not None:
            return known
        outgoing = render_incident(post)
        message, url = self._run(self._send(address, outgoing, thread_name(post.record.title)), address, "post")
        return self._remember(address, identity, self._ref(post.platform, channel, address, message, url))

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        address = self._address(channel)
        identity = ("digest", frozenset(item.cluster_id for item in digest.items))
        if (known := self._already(address, identity, digest.platform, channel)) is not None:
            return known
        outgoing = render_digest(digest, threads=False)
        name = thread_name(outgoing.embeds[0].title or "New incidents") if outgoing.embeds else "New incidents"
        message, url = self._run(self._send(address, outgoing, name), address, "digest")
        return self._remember(address, identity, self._ref(digest.platform, channel, address, message, url))

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        address = self._address(channel)
        identity = (
            "update",
            update.cluster_id,
            update.record.id,
            tuple((c.field, str(c.after)) for c in update.changes),
        )
        if self._already(address, identity, ref.platform, channel) is not None:
            return ref
        outgoing = render_update(update)
        # In a forum post (or a thread the URL names) the update goes into the incident's thread.
        into = int(ref.thread_id) if ref.thread_id and ref.thread_id.isdigit() else None
        if ref.url and outgoing.embeds and into is None:
            outgoing.embeds[0].add_field(name="Original post", value=ref.url, inline=False)
        self._run(self._send(address, outgoing, None, thread=into), address, "update")
        self._remember(address, identity, ref)
        return ref

    def close(self) -> None:
        if self._session is not None:
            try:
                self._loop.run(self._session.close(), timeout=5)
            except Exception:  # closing is best effort
                log.debug("closing the webhook session failed", exc_info=True)
        self._loop.close()

    # -- plumbing -----------------------------------------------------------------------------------

    def _address(self, channel: str) -> WebhookAddress:
        address = self._addresses.get(channel) or self._addresses.get("*")
        if address is None:
            raise DeliveryRejected(f"no Discord webhook configured for channel {channel!r}")
        return address

    def _webhook(self, address: WebhookAddress) -> discord.Webhook:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return discord.Webhook.partial(address.id, address.token, session=self._session)

    async def _send(
        self, address: WebhookAddress, outgoing: OutgoingMessage, post_name: str | None, *, thread: int | None = None
    ) -> tuple[discord.WebhookMessage, str | None]:
        """Execute the webhook; in a forum, ``post_name`` opens a new post (None: only into ``thread``)."""
        self._pace(address)
        webhook = self._webhook(address)
        into = thread or address.thread_id
        forum = address in self._forum_hooks and into is None
        try:
            message = await self._execute(webhook, outgoing, into, post_name if forum else None)
        except discord.HTTPException as error:
            if error.code != FORUM_NEEDS_THREAD or into is not None or not post_name:
                raise
            with self._state:
                self._forum_hooks.add(address)
            message = await self._execute(webhook, outgoing, None, post_name)
        return message, await self._jump_url(webhook, address, message)

    async def _execute(
        self, webhook: discord.Webhook, outgoing: OutgoingMessage, thread: int | None, post_name: str | None
    ) -> discord.WebhookMessage:
        return await webhook.send(
            content=outgoing.content or discord.utils.MISSING,
            embeds=outgoing.embeds,
            username=self.username or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions.none(),
            thread=discord.Object(thread) if thread else discord.utils.MISSING,
            thread_name=post_name or discord.utils.MISSING,
            wait=True,
        )

    def _pace(self, address: WebhookAddress) -> None:
        """Refuse (as a rate limit the deliverer waits out) a send sooner than ``pace`` after the last one."""
        with self._state:
            now = time.monotonic()
            wait = self._last_send.get(address, float("-inf")) + self.pace - now
            if wait > 0:
                raise RateLimited(f"{address}: paced, next send in {wait:.1f} s", wait)
            self._last_send[address] = now

    def _already(self, address: WebhookAddress, identity: Identity, platform: str, channel: str) -> PostRef | None:
        """The ref of this payload if the webhook already carried it (under another subscription name)."""
        with self._state:
            known = self._carried.get((address, identity))
        if known is None:
            return None
        log.info("%s already carries %s: not posting it again for %r", address, identity[0], channel)
        return PostRef(platform or self.platform, channel, known.message_id, known.thread_id, known.url)

    def _remember(self, address: WebhookAddress, identity: Identity, ref: PostRef) -> PostRef:
        with self._state:
            self._carried[(address, identity)] = ref
            while len(self._carried) > CARRIED_MAX:
                self._carried.popitem(last=False)
        return ref

    async def _jump_url(
        self, webhook: discord.Webhook, address: WebhookAddress, message: discord.Message
    ) -> str | None:
        """The post's link (needs the webhook's server id, fetched once); None when it cannot be known."""
        if address.id not in self._jump_roots:
            try:
                fetched = await webhook.fetch(prefer_auth=False)
                guild_id = fetched.guild_id
                self._jump_roots[address.id] = f"https://discord.com/channels/{guild_id}" if guild_id else None
            except discord.HTTPException:
                self._jump_roots[address.id] = None
        root = self._jump_roots[address.id]
        return f"{root}/{message.channel.id}/{message.id}" if root and message.channel else None

    def _run(self, coro, address: WebhookAddress, what: str):
        try:
            return self._loop.run(coro, timeout=self._timeout)
        except DeliveryError:
            raise
        except Exception as error:
            failure = delivery_error(error, f"{address} {what}")
            # Exception texts may quote the request URL, which holds the token: scrub, and do not chain.
            failure.args = (_scrub(str(failure)),)
            raise failure from None

    def _ref(
        self, platform: str, channel: str, address: WebhookAddress, message: discord.Message, url: str | None
    ) -> PostRef:
        thread = str(address.thread_id) if address.thread_id else None
        if thread is None and address in self._forum_hooks:
            thread = str(message.channel.id)  # a forum post: the thread the post opened
        return PostRef(platform or self.platform, channel, str(message.id), thread, url)
