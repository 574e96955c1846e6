"""A fake Discord on 127.0.0.1: REST v10 and a JSON gateway, so the real discord.py can be tested offline.

``FakeDiscord`` runs an aiohttp server in its own thread (usable from sync and async tests alike)
with one server ("guild"), two text channels, a bot, two members (an analyst, and a lead whose role
has Manage Channels) and DMs. It behaves like Discord where threatbot depends on it:

* **login and gateway** — ``GET /users/@me`` (checks the bot token: 401 otherwise),
  ``GET /oauth2/applications/@me``; the gateway sends HELLO, then READY and GUILD_CREATE as plain JSON
  text frames after IDENTIFY, answers heartbeats, and records the intents asked for;
* **message content** — a server message that does not mention the bot reaches it with empty
  content unless it identified with the Message Content intent (Discord's rule since 2022);
* **limits** — a message breaking Discord's limits (content 2000; 10 embeds; title 256, description
  4096, 25 fields, field name 256 / value 1024, footer 2048, author 256; 6000 across embeds) gets
  the same 400 ``Invalid Form Body`` (code 50035) Discord answers;
* **messages, threads, typing** — ``POST /channels/{id}/messages`` (honours ``nonce`` with
  ``enforce_nonce`` for the same author within :data:`NONCE_WINDOW` seconds — "the past few minutes";
  :meth:`FakeDiscord.advance` moves the clock), threads started from a message take its id
  (``160004`` when one exists, ``50024`` in a DM, thread or forum), THREAD_CREATE and MESSAGE_CREATE are
  dispatched like Discord does;
* **permissions** — the bot's permissions are computed per channel as Discord does (roles, then
  @everyone, role and member overwrites; no View Channel hides the channel; threads use their
  parent's): a channel it cannot see answers 403 ``50001`` Missing Access (also every channel once
  :meth:`FakeDiscord.remove_bot` kicked it), a missing Send Messages / Send Messages in Threads /
  Create Public Threads answers 403 ``50013`` Missing Permissions, a reply without Read Message History
  ``160002``; without Embed Links a bot's embeds are dropped silently, and an embed-only message is then
  refused as empty (``50006``). ``app_permissions`` in interactions is the same computation;
* **channel kinds** — forum and media channels (``add_channel(..., GUILD_FORUM)``) refuse plain messages
  (``50008``) and take posts through ``POST /channels/{id}/threads`` with a first message (Send Messages
  needed, Create Public Threads ignored); an unknown or deleted channel answers 404 ``10003``;
* **threads** — a message in an archived thread unarchives it; a locked thread refuses the bot (no
  Manage Threads): ``50083`` when it is also archived, ``160005`` otherwise; edits in an archived thread
  ``50083``;
* **interactions** — INTERACTION_CREATE from :meth:`FakeDiscord.slash`; callbacks, follow-ups (the first
  after a deferral replaces the "thinking" message and inherits its visibility), ``@original`` edits
  and deletes;
* **webhooks** — :meth:`FakeDiscord.add_webhook` gives a channel webhook (execute, fetch, ``thread_id``);
  a deleted one (:meth:`FakeDiscord.delete_webhook`, or its channel deleted) answers 404 ``10015``; in a
  forum or media channel it needs ``thread_name`` (a new post) or ``thread_id`` (``220001``), not both
  (``220002``), and ``thread_name`` elsewhere is ``220003``; a thread it posts in is unarchived;
* **rate limits** — :meth:`FakeDiscord.rate_limit` makes the next matching requests get a 429 with
  ``retry_after``, the ``X-RateLimit-*`` headers and ``Via`` (without ``Via`` discord.py takes a 429 for a
  Cloudflare ban and does not retry).

Every REST call is kept in :attr:`FakeDiscord.calls` for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["Call", "FakeDiscord", "InteractionRecord", "message_problems"]

BOT_TOKEN = "fake-bot-token.For-Tests.Only"
GUILD_ID = 1100000000000000001
BOT_ID = 1100000000000000002
APP_ID = BOT_ID
CHANNEL_ID = 1100000000000000010
OTHER_CHANNEL_ID = 1100000000000000011
ANALYST_ID = 1100000000000000100
LEAD_ID = 1100000000000000101
LEAD_ROLE_ID = 1100000000000000200
BOT_ROLE_ID = 1100000000000000201
OWNER_ID = 1100000000000000999

MESSAGE_CONTENT_INTENT = 1 << 15

# Permission bits (https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags).
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
#: View Channel, Send Messages, Read Message History, Embed Links, Use Application Commands, Create Public Threads, Send in Threads.
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | EMBED_LINKS
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
ALL_PERMISSIONS = (1 << 53) - 1
#: Permissions an interaction response can use in a DM with the bot (``app_permissions`` there).
DM_APP_PERMISSIONS = (1 << 15) | EMBED_LINKS | (1 << 17) | (1 << 18)

# Channel types.
GUILD_TEXT, DM, GUILD_VOICE, GUILD_CATEGORY = 0, 1, 2, 4
PUBLIC_THREAD, PRIVATE_THREAD = 11, 12
GUILD_FORUM, GUILD_MEDIA = 15, 16
THREAD_ONLY = (GUILD_FORUM, GUILD_MEDIA)
#: How long ``enforce_nonce`` remembers a nonce: "the past few minutes" in Discord's docs.
NONCE_WINDOW = 300.0


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses a body whose Content-Type is exactly "application/json".
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def _error(status: int, code: int, message: str, errors: Any = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return _json(body, status)


def message_problems(payload: dict[str, Any]) -> list[str]:
    """Where a message payload breaks Discord's limits (an independent check, not the adapter's)."""
    problems: list[str] = []
    content = payload.get("content") or ""
    embeds = payload.get("embeds") or []
    if len(content) > 2000:
        problems.append(f"content: {len(content)} > 2000")
    if len(embeds) > 10:
        problems.append(f"embeds: {len(embeds)} > 10")
    total = 0
    for n, embed in enumerate(embeds):
        sizes = {
            "title": (len(embed.get("title") or ""), 256),
            "description": (len(embed.get("description") or ""), 4096),
            "footer.text": (len((embed.get("footer") or {}).get("text") or ""), 2048),
            "author.name": (len((embed.get("author") or {}).get("name") or ""), 256),
            "fields": (len(embed.get("fields") or []), 25),
        }
        for what, (size, limit) in sizes.items():
            if size > limit:
                problems.append(f"embeds.{n}.{what}: {size} > {limit}")
        total += sum(size for what, (size, _) in sizes.items() if what != "fields")
        for f, item in enumerate(embed.get("fields") or []):
            name, value = item.get("name") or "", item.get("value") or ""
            if not name or not value:
                problems.append(f"embeds.{n}.fields.{f}: empty name or value")
            if len(name) > 256:
                problems.append(f"embeds.{n}.fields.{f}.name: {len(name)} > 256")
            if len(value) > 1024:
                problems.append(f"embeds.{n}.fields.{f}.value: {len(value)} > 1024")
            total += len(name) + len(value)
        url = embed.get("url")
        if url and not re.match(r"^https?://\S+$", url):
            problems.append(f"embeds.{n}.url: not a URL")
    if total > 6000:
        problems.append(f"embeds: {total} characters > 6000")
    if not content and not embeds:
        problems.append("empty message")
    return problems


@dataclass
class Call:
    """One REST request the fake received."""

    method: str
    path: str  # after /api/v10, e.g. /channels/1/messages
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float
    status: int = 0


@dataclass
class InteractionRecord:
    id: int
    token: str
    channel_id: int
    user_id: int
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    callback_at: float | None = None
    dispatched_at: float = 0.0
    #: The deferred ("thinking") or first response message; None until there is one.
    original_id: int | None = None
    original_ephemeral: bool = False
    original_pending: bool = False
    deleted_original: bool = False
    followups: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _RateLimit:
    method: str
    pattern: re.Pattern[str]
    retry_after: float
    remaining: int
    via: bool
    is_global: bool


class FakeDiscord:
    """Start with ``with FakeDiscord() as fake:``; point discord.py at ``fake.api_url`` / ``fake.gateway_url``."""

    def __init__(self, *, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.threads: dict[int, dict[str, Any]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or a guild id → synced commands
        self.limit_violations: list[tuple[str, list[str]]] = []
        #: (channel, author, nonce) → (message, when): what ``enforce_nonce`` looks up.
        self._nonces: dict[tuple[int, str, str], tuple[dict[str, Any], float]] = {}
        self._ids = itertools.count(1100000000000001000)
        self._seq = itertools.count(1)
        self._limits: list[_RateLimit] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._pending: set[asyncio.Future[None]] = set()
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.users = {
            BOT_ID: self._user(BOT_ID, "threatbot", bot=True),
            ANALYST_ID: self._user(ANALYST_ID, "ana"),
            LEAD_ID: self._user(LEAD_ID, "lee"),
        }
        self.roles = [
            self._role(GUILD_ID, "@everyone", EVERYONE_PERMISSIONS, 0),
            self._role(LEAD_ROLE_ID, "feed admins", MANAGE_CHANNELS, 1),
            {
                **self._role(BOT_ROLE_ID, "threatbot", EVERYONE_PERMISSIONS, 2, managed=True),
                "tags": {"bot_id": str(BOT_ID)},
            },
        ]
        self.member_roles = {BOT_ID: [BOT_ROLE_ID], ANALYST_ID: [], LEAD_ID: [LEAD_ROLE_ID]}
        #: People whose privacy settings refuse DMs from server members: the bot's DMs answer 50007.
        self.closed_dms: set[int] = set()
        #: (command, user) pairs a server admin allowed in Server Settings → Integrations.
        self.command_overrides: set[tuple[str, int]] = set()
        #: False once the bot was removed from the server: every call about it answers 50001 Missing Access.
        self.bot_in_guild = True
        #: Seconds added to the fake's clock (:meth:`advance`), for time-bound rules such as the nonce window.
        self.clock_offset = 0.0
        self.nonce_window = NONCE_WINDOW
        for channel_id, name in ((CHANNEL_ID, "threat-intel"), (OTHER_CHANNEL_ID, "general")):
            self.channels[channel_id] = self._channel(channel_id, name, GUILD_TEXT)

    # -- life cycle ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeDiscord:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_route("GET", "/gateway/", self._gateway)
            app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="fake-discord", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            for ws in list(self._sockets):
                await ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    # -- test controls ------------------------------------------------------------------------------

    def rate_limit(
        self, method: str, path_pattern: str, *, retry_after: float = 0.3, times: int = 1, via: bool = True
    ) -> None:
        """The next ``times`` requests matching ``method`` and ``path_pattern`` (a regex on the path) get a 429."""
        with self._lock:
            self._limits.append(_RateLimit(method.upper(), re.compile(path_pattern), retry_after, times, via, False))

    def add_webhook(self, channel_id: int = CHANNEL_ID) -> str:
        """Create a channel webhook; returns its URL in Discord's form (``https://discord.com/api/webhooks/…``)."""
        webhook_id = next(self._ids)
        token = secrets.token_urlsafe(51)[:68]
        with self._lock:
            self.webhooks[webhook_id] = {"id": webhook_id, "token": token, "channel_id": channel_id}
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, url_or_id: str | int) -> None:
        """Delete a webhook (channel settings → Integrations): executing it then answers 404 Unknown Webhook."""
        webhook_id = int(str(url_or_id).split("/webhooks/")[-1].split("/")[0])
        with self._lock:
            self.webhooks.pop(webhook_id, None)

    def add_channel(self, name: str, kind: int = GUILD_TEXT) -> int:
        """A new server channel of ``kind`` (``GUILD_TEXT``, ``GUILD_FORUM``, ``GUILD_MEDIA``, ``GUILD_VOICE``…)."""
        channel_id = next(self._ids)
        with self._lock:
            self.channels[channel_id] = self._channel(channel_id, name, kind)
        self.dispatch("CHANNEL_CREATE", self.channels[channel_id])
        return channel_id

    def add_thread(self, parent_id: int = CHANNEL_ID, name: str = "a thread", *, owner_id: int = ANALYST_ID) -> int:
        """A public thread a person started in ``parent_id`` (not on a message)."""
        thread_id = next(self._ids)
        thread = self._thread_payload(thread_id, parent_id, name, owner_id, 1440)
        with self._lock:
            self.threads[thread_id] = thread
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread_id

    def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread (as its inactivity timer does), and lock it (as a moderator can)."""
        with self._lock:
            meta = self.threads[thread_id]["thread_metadata"]
            meta.update(archived=True, locked=locked, archive_timestamp=_iso())
        self.dispatch("THREAD_UPDATE", self.threads[thread_id])

    def delete_channel(self, channel_id: int) -> None:
        """Delete a channel or thread; the channel's webhooks go with it (as on Discord)."""
        with self._lock:
            gone = self.channels.pop(channel_id, None) or self.threads.pop(channel_id, None)
            for webhook_id in [w for w, hook in self.webhooks.items() if hook["channel_id"] == channel_id]:
                del self.webhooks[webhook_id]
        if gone is not None:
            self.dispatch(
                "THREAD_DELETE" if gone["type"] in (PUBLIC_THREAD, PRIVATE_THREAD) else "CHANNEL_DELETE", gone
            )

    def set_overwrite(self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0) -> None:
        """A permission overwrite on a channel for a role (the server id is @everyone) or a member."""
        kind = 0 if any(int(r["id"]) == target_id for r in self.roles) else 1
        with self._lock:
            channel = self.channels[channel_id]
            overwrites = [o for o in channel["permission_overwrites"] if o["id"] != str(target_id)]
            overwrites.append({"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)})
            channel["permission_overwrites"] = overwrites
        self.dispatch("CHANNEL_UPDATE", self.channels[channel_id])

    def deny_bot(self, channel_id: int, permissions: int) -> None:
        """Deny the bot ``permissions`` in ``channel_id`` (added to its member overwrite, as a server admin would)."""
        with self._lock:
            mine = next((o for o in self.channels[channel_id]["permission_overwrites"] if o["id"] == str(BOT_ID)), None)
        allow = int(mine["allow"]) if mine else 0
        deny = int(mine["deny"]) if mine else 0
        self.set_overwrite(channel_id, BOT_ID, allow=allow & ~permissions, deny=deny | permissions)

    def remove_bot(self) -> None:
        """The bot is kicked from the server: its channels answer 403 Missing Access from now on."""
        with self._lock:
            self.bot_in_guild = False
        self.dispatch("GUILD_DELETE", {"id": str(GUILD_ID)})

    def now(self) -> float:
        """The fake's clock (monotonic seconds, moved on by :meth:`advance`)."""
        return time.monotonic() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for Discord's time-bound rules (the nonce window) without sleeping."""
        with self._lock:
            self.clock_offset += seconds

    def bot_permissions(self, channel_id: int) -> int:
        """The bot's computed permissions in a channel or thread (threads use their parent's)."""
        return self.permissions_in(channel_id, BOT_ID)

    def permissions_in(self, channel_id: int, user_id: int) -> int:
        """Discord's computation: base from roles, then @everyone, role and member overwrites; Administrator wins."""
        with self._lock:
            channel = self.channels.get(channel_id) or self.threads.get(channel_id)
            if channel is None:
                return 0
            if channel["type"] in (PUBLIC_THREAD, PRIVATE_THREAD):
                channel = self.channels.get(int(channel["parent_id"])) or {}
            if channel.get("type") == DM:
                return DM_APP_PERMISSIONS | VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY
            if user_id == BOT_ID and not self.bot_in_guild:
                return 0
            roles = self.member_roles.get(user_id, [])
            value = 0
            for role in self.roles:
                if int(role["id"]) == GUILD_ID or int(role["id"]) in roles:
                    value |= int(role["permissions"])
            if value & ADMINISTRATOR:
                return ALL_PERMISSIONS
            overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites", [])}
            if everyone := overwrites.get(GUILD_ID):
                value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
            allow = deny = 0
            for role_id in roles:
                if overwrite := overwrites.get(role_id):
                    allow |= int(overwrite["allow"])
                    deny |= int(overwrite["deny"])
            value = (value & ~deny) | allow
            if member := overwrites.get(user_id):
                value = (value & ~int(member["deny"])) | int(member["allow"])
            if not value & VIEW_CHANNEL:
                return 0  # implicit: no View Channel denies everything else in the channel
            return value

    def dm_channel(self, user_id: int = ANALYST_ID) -> int:
        """The DM channel between the bot and ``user_id`` (created on first use)."""
        with self._lock:
            for channel_id, data in self.channels.items():
                if data["type"] == 1 and data["recipients"][0]["id"] == str(user_id):
                    return channel_id
            channel_id = next(self._ids)
            self.channels[channel_id] = {
                "id": str(channel_id),
                "type": 1,
                "recipients": [self.users[user_id]],
                "last_message_id": None,
            }
            return channel_id

    def post_as_user(
        self,
        channel_id: int,
        text: str,
        *,
        user_id: int = ANALYST_ID,
        mention_bot: bool = False,
        mention_bot_role: bool = False,
        reply_to: dict[str, Any] | None = None,
        ping: bool = True,
    ) -> dict[str, Any]:
        """A person writes in a channel, thread or DM; the bot gets MESSAGE_CREATE (content per Discord's rules).

        ``mention_bot_role`` mentions the bot's managed role instead of its user (what the member list offers).
        ``reply_to`` makes it a reply to that message; with ``ping`` (Discord's default) the replied-to
        author is in ``mentions`` — so a reply to the bot mentions it, and its content reaches the bot.
        """
        content = f"<@{BOT_ID}> {text}" if mention_bot else f"<@&{BOT_ROLE_ID}> {text}" if mention_bot_role else text
        channel = self.channels.get(channel_id) or self.threads[channel_id]
        in_guild = channel["type"] != DM
        reference = {"message_id": reply_to["id"], "channel_id": str(channel_id)} if reply_to else None
        message = self._new_message(
            channel_id, content, self.users[user_id], {"message_reference": reference} if reference else {}
        )
        mentions = [self.users[BOT_ID]] if mention_bot else []
        if reply_to is not None:
            message["referenced_message"] = reply_to
            if ping and reply_to["author"]["id"] not in {m["id"] for m in mentions}:
                mentions.append(reply_to["author"])
        message["mentions"] = mentions
        message["mention_roles"] = [str(BOT_ROLE_ID)] if mention_bot_role else []
        mention_bot = any(m["id"] == str(BOT_ID) for m in mentions)
        with self._lock:
            self.messages.setdefault(channel_id, []).append(message)
        event = dict(message)
        if in_guild:
            event["guild_id"] = str(GUILD_ID)
            event["member"] = self._member(user_id, with_user=False)
            if not mention_bot and not self._has_content_intent():
                event["content"] = ""  # Discord's Message Content rule
        self.dispatch("MESSAGE_CREATE", event)
        return message

    def slash(
        self,
        sub: str,
        options: dict[str, Any] | None = None,
        *,
        channel_id: int = CHANNEL_ID,
        user_id: int = ANALYST_ID,
        command: str = "threat",
    ) -> InteractionRecord:
        """A person runs ``/<command> <sub> [options]`` in a channel, thread or DM; the bot gets INTERACTION_CREATE.

        Like Discord's client, it refuses (``PermissionError``) a server command whose
        ``default_member_permissions`` the person lacks in that channel: Discord would not offer it.
        """
        channel = self.channels.get(channel_id) or self.threads[channel_id]
        types = {bool: 5, int: 4, str: 3}
        option_list = [
            {"name": k, "type": types[type(v)], "value": v} for k, v in (options or {}).items() if v is not None
        ]
        with self._lock:
            synced = self.commands.get(str(GUILD_ID)) or self.commands.get("global") or []
        registered = next((c for c in synced if c["name"] == command), None)
        command_id = registered["id"] if registered else str(next(self._ids))
        needed = int((registered or {}).get("default_member_permissions") or 0)
        if needed and channel["type"] != DM and (command, user_id) not in self.command_overrides:
            granted = self.permissions_in(channel_id, user_id)
            if granted & needed != needed and not granted & ADMINISTRATOR:
                raise PermissionError(f"Discord does not offer /{command} to user {user_id} here")
        data: dict[str, Any] = {
            "id": command_id,
            "name": command,
            "type": 1,
            "options": [{"type": 1, "name": sub, "options": option_list}],
        }
        record = InteractionRecord(next(self._ids), secrets.token_urlsafe(40), channel_id, user_id)
        payload: dict[str, Any] = {
            "id": str(record.id),
            "application_id": str(APP_ID),
            "type": 2,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel,
            "token": record.token,
            "version": 1,
            "app_permissions": str(DM_APP_PERMISSIONS if channel["type"] == DM else self.bot_permissions(channel_id)),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if channel["type"] == 1:
            payload["user"] = self.users[user_id]
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": str(GUILD_ID)}
        else:
            if str(GUILD_ID) in self.commands:
                data["guild_id"] = str(GUILD_ID)
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "en-US"
            payload["member"] = {**self._member(user_id), "permissions": str(self.permissions_in(channel_id, user_id))}
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(GUILD_ID)}
        with self._lock:
            self.interactions[record.token] = record
        record.dispatched_at = time.monotonic()
        self.dispatch("INTERACTION_CREATE", payload)
        return record

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH to every connected client (from any thread)."""
        assert self._loop is not None

        async def send() -> None:
            frame = json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data})
            for ws in list(self._sockets):
                if not ws.closed:
                    await ws.send_str(frame)

        if self._in_loop():
            task = asyncio.ensure_future(send())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        else:
            asyncio.run_coroutine_threadsafe(send(), self._loop).result(5)

    # -- queries for assertions ---------------------------------------------------------------------

    def find(self, method: str | None = None, pattern: str = "") -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if (method is None or c.method == method) and re.search(pattern, c.path) is not None
            ]

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages.get(channel_id, []))

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.channel_messages(channel_id) if m["author"]["id"] in (str(BOT_ID), str(APP_ID))]

    async def until(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Await (without blocking the loop) until ``predicate()`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {predicate}")
            await asyncio.sleep(0.02)

    # -- payload builders ---------------------------------------------------------------------------

    @staticmethod
    def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    @staticmethod
    def _role(role_id: int, name: str, permissions: int, position: int, *, managed: bool = False) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "hoist": False,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }

    def _member(self, user_id: int, *, with_user: bool = True) -> dict[str, Any]:
        member = {
            "roles": [str(r) for r in self.member_roles.get(user_id, [])],
            "joined_at": _iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "pending": False,
            "avatar": None,
        }
        if with_user:
            member["user"] = self.users[user_id]
        return member

    def _channel(self, channel_id: int, name: str, kind: int) -> dict[str, Any]:
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(GUILD_ID),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if kind == GUILD_VOICE:
            channel.update(bitrate=64000, user_limit=0, rtc_region=None, video_quality_mode=1)
        if kind in THREAD_ONLY:
            channel.update(
                available_tags=[], default_reaction_emoji=None, default_sort_order=None, default_forum_layout=0
            )
        return channel

    def _thread_payload(
        self, thread_id: int, parent_id: int, name: str, owner_id: int, archive_minutes: int
    ) -> dict[str, Any]:
        return {
            "id": str(thread_id),
            "guild_id": str(GUILD_ID),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "name": name,
            "type": PUBLIC_THREAD,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive_minutes,
                "archive_timestamp": _iso(),
                "locked": False,
            },
        }

    def _guild(self) -> dict[str, Any]:
        with self._lock:
            channels = [c for c in self.channels.values() if c["type"] != DM]
            threads = list(self.threads.values())
        return {
            "id": str(GUILD_ID),
            "name": "Threat Lab",
            "icon": None,
            "owner_id": str(OWNER_ID),
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": threads,
            "members": [self._member(BOT_ID)],
            "member_count": 3,
            "large": False,
            "unavailable": False,
            "joined_at": _iso(),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_flags": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "afk_timeout": 300,
            "description": None,
        }

    def _new_message(
        self, channel_id: int, content: str, author: dict[str, Any], payload: dict[str, Any]
    ) -> dict[str, Any]:
        message = {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "type": 19 if payload.get("message_reference") else 0,
            "author": author,
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": payload.get("embeds") or [],
            "pinned": False,
            "flags": int(payload.get("flags") or 0),
            "components": [],
        }
        for key in ("nonce", "message_reference", "allowed_mentions"):
            if payload.get(key) is not None:
                message[key] = payload[key]
        return message

    def _has_content_intent(self) -> bool:
        with self._lock:
            return bool(self.identifies) and bool(self.identifies[-1].get("intents", 0) & MESSAGE_CONTENT_INTENT)

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    # -- gateway ------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op = message.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    await self._identify(ws, message["d"])
                elif op == 6:
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": next(self._seq), "d": {}}))
        finally:
            self._sockets.remove(ws)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        with self._lock:
            self.identifies.append(data)
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        ready = {
            "v": 10,
            "user": {**self.users[BOT_ID], "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": secrets.token_hex(16),
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": [0, 1],
        }
        await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._seq), "d": ready}))
        await ws.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": self._guild()}))

    # -- REST ---------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json" and raw:
                body = json.loads(raw)
            elif request.content_type.startswith("multipart/") and raw:
                body = {"multipart": True}
        call = Call(request.method, path, dict(request.query), body, dict(request.headers), time.monotonic())
        with self._lock:
            self.calls.append(call)
            limited = next(
                (r for r in self._limits if r.remaining > 0 and r.method == request.method and r.pattern.search(path)),
                None,
            )
            if limited is not None:
                limited.remaining -= 1
        if limited is not None:
            call.status = 429
            headers = {
                "Retry-After": str(max(1, round(limited.retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{limited.retry_after:.3f}",
                "X-RateLimit-Bucket": "fake-bucket",
                "X-RateLimit-Scope": "user",
            }
            if limited.via:
                headers["Via"] = "1.1 google"
            return _json(
                {"message": "You are being rate limited.", "retry_after": limited.retry_after, "global": False},
                429,
                headers,
            )
        response = await self._route(request, path, body)
        call.status = response.status
        return response

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _route(self, request: web.Request, path: str, body: Any) -> web.Response:
        method = request.method
        if path.startswith(("/webhooks/", "/interactions/")):
            return await self._webhook_route(request, method, path, body)
        if not self._authorised(request):
            return _error(401, 0, "401: Unauthorized")
        if method == "GET" and path == "/users/@me":
            return _json({**self.users[BOT_ID], "verified": True, "mfa_enabled": False, "flags": 0})
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "threatbot",
                    "icon": None,
                    "description": "",
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.users[LEAD_ID],
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "team": None,
                }
            )
        if method == "POST" and path == "/users/@me/channels":
            recipient = int((body or {}).get("recipient_id") or 0)
            if recipient not in self.users:
                return _error(400, 50035, "Invalid Form Body", {"recipient_id": {"_errors": [{"message": "?"}]}})
            return _json(self.channels[self.dm_channel(recipient)])
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.gateway_url.rstrip("/"), "shards": 1})
        if m := re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path):
            if method == "PUT":
                where = m[2] or "global"
                synced = [{**c, "id": str(next(self._ids)), "application_id": m[1], "version": "1"} for c in body or []]
                for command in synced:  # Discord answers the permission bitfield as a string
                    if command.get("default_member_permissions") is not None:
                        command["default_member_permissions"] = str(command["default_member_permissions"])
                if m[2]:
                    for command in synced:
                        command["guild_id"] = m[2]
                with self._lock:
                    self.commands[where] = synced
                return _json(synced)
            return _json(self.commands.get(m[2] or "global", []))
        if m := re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands/(\d+)", path):
            where = m[2] or "global"
            with self._lock:
                registered = self.commands.get(where, [])
                if not any(c["id"] == m[3] for c in registered):
                    return _error(404, 10063, "Unknown application command")
                if method == "DELETE":
                    self.commands[where] = [c for c in registered if c["id"] != m[3]]
                    return web.Response(status=204)
                return _json(next(c for c in registered if c["id"] == m[3]))
        if m := re.fullmatch(r"/guilds/(\d+)/threads/active", path):
            if not self.bot_in_guild:
                return _error(403, 50001, "Missing Access")
            with self._lock:
                active = [t for t in self.threads.values() if not t["thread_metadata"]["archived"]]
                visible = [t for t in active if self.bot_permissions(int(t["id"])) & VIEW_CHANNEL]
            return _json({"threads": visible, "members": []})
        if m := re.fullmatch(r"/channels/(\d+)", path):
            if refused := self._access(int(m[1])):
                return refused
            return _json(self.channels.get(int(m[1])) or self.threads[int(m[1])])
        if m := re.fullmatch(r"/channels/(\d+)/typing", path):
            return self._access(int(m[1])) or web.Response(status=204)
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            if method == "POST":
                return self._create_message(int(m[1]), body or {}, self.users[BOT_ID])
            if refused := self._access(int(m[1])):
                return refused
            if not self.bot_permissions(int(m[1])) & READ_MESSAGE_HISTORY:
                return _json([])  # Discord: no Read Message History, no messages
            return _json(self.channel_messages(int(m[1])))
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/threads", path)):
            return self._start_thread_without_message(int(m[1]), body or {})
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path):
            return self._start_thread(int(m[1]), int(m[2]), body or {})
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            if refused := self._access(int(m[1])):
                return refused
            return self._edit_message(int(m[1]), int(m[2]), body or {}, method)
        return _error(404, 0, f"404: Not Found ({method} {path})")

    # -- Discord's refusals -------------------------------------------------------------------------

    def _access(self, channel_id: int) -> web.Response | None:
        """404 Unknown Channel for a channel that does not exist; 403 Missing Access when the bot cannot see it."""
        with self._lock:
            channel = self.channels.get(channel_id) or self.threads.get(channel_id)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if channel["type"] == DM:
            return None
        if not self.bot_in_guild or not self.bot_permissions(channel_id) & VIEW_CHANNEL:
            return _error(403, 50001, "Missing Access")
        return None

    def _is_thread(self, channel_id: int) -> bool:
        return channel_id in self.threads

    def _thread_refusal(self, thread_id: int, permissions: int | None) -> web.Response | None:
        """Locked threads refuse whoever lacks Manage Threads; archived ones reopen on a message."""
        thread = self.threads[thread_id]
        meta = thread["thread_metadata"]
        if meta["locked"] and not (permissions or 0) & MANAGE_THREADS:
            if meta["archived"]:
                return _error(400, 50083, "Thread is archived")
            return _error(403, 160005, "Thread is locked")
        return None

    def _unarchive_on_message(self, thread_id: int) -> None:
        with self._lock:
            meta = self.threads[thread_id]["thread_metadata"]
            if not meta["archived"]:
                return
            meta.update(archived=False, archive_timestamp=_iso())
        self.dispatch("THREAD_UPDATE", self.threads[thread_id])

    def _send_refusal(self, channel_id: int, payload: dict[str, Any], *, as_bot: bool) -> web.Response | None:
        """What Discord refuses before creating a message (permissions apply to the bot, not to webhooks)."""
        with self._lock:
            channel = self.channels.get(channel_id) or self.threads.get(channel_id)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        if channel["type"] in (*THREAD_ONLY, GUILD_VOICE, GUILD_CATEGORY):
            return _error(400, 50008, "Cannot send messages in a non-text channel")
        if channel["type"] == DM:
            recipient = int(channel["recipients"][0]["id"])
            if as_bot and recipient in self.closed_dms:
                return _error(403, 50007, "Cannot send messages to this user")
            return None
        permissions = self.bot_permissions(channel_id) if as_bot else None
        if as_bot and (refused := self._access(channel_id)):
            return refused
        if self._is_thread(channel_id) and (refused := self._thread_refusal(channel_id, permissions)):
            return refused
        if permissions is not None:
            needed = SEND_MESSAGES_IN_THREADS if self._is_thread(channel_id) else SEND_MESSAGES
            if not permissions & needed:
                return _error(403, 50013, "Missing Permissions")
            if payload.get("message_reference") and not permissions & READ_MESSAGE_HISTORY:
                return _error(400, 160002, "Cannot reply without permission to read message history")
        return None

    def _strip_embeds(self, channel_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Without Embed Links a bot's embeds are dropped silently (a message left empty is then refused)."""
        if payload.get("embeds") and not self.bot_permissions(channel_id) & EMBED_LINKS:
            return {**payload, "embeds": []}
        return payload

    def _create_message(
        self, channel_id: int, payload: dict[str, Any], author: dict[str, Any], *, webhook_id: int | None = None
    ) -> web.Response:
        as_bot = webhook_id is None and author["id"] == str(BOT_ID)
        if refused := self._send_refusal(channel_id, payload, as_bot=as_bot):
            return refused
        problems = message_problems(payload)
        if problems:
            with self._lock:
                self.limit_violations.append((str(channel_id), problems))
            return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
        nonce = payload.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return _error(400, 50035, "Invalid Form Body", {"nonce": {"_errors": [{"message": "max 25 chars"}]}})
        if as_bot:
            payload = self._strip_embeds(channel_id, payload)
            if not payload.get("content") and not payload.get("embeds"):
                return _error(400, 50006, "Cannot send an empty message")
        with self._lock:
            if nonce is not None and payload.get("enforce_nonce"):
                seen = self._nonces.get((channel_id, author["id"], str(nonce)))
                if seen is not None and self.now() - seen[1] <= self.nonce_window:
                    return _json(seen[0])
            message = self._new_message(channel_id, payload.get("content") or "", author, payload)
            if webhook_id is not None:
                message["webhook_id"] = str(webhook_id)
            self.messages.setdefault(channel_id, []).append(message)
            if nonce is not None:
                self._nonces[(channel_id, author["id"], str(nonce))] = (message, self.now())
        if self._is_thread(channel_id):
            self._unarchive_on_message(channel_id)
        event = dict(message)
        if channel_id not in self.channels or self.channels[channel_id]["type"] != DM:
            event["guild_id"] = str(GUILD_ID)
        self.dispatch("MESSAGE_CREATE", event)
        return _json(message)

    def _edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any], method: str) -> web.Response:
        if method == "GET":
            with self._lock:
                found = next((m for m in self.messages.get(channel_id, []) if m["id"] == str(message_id)), None)
            return _json(found) if found is not None else _error(404, 10008, "Unknown Message")
        if (
            method in ("PATCH", "DELETE")
            and self._is_thread(channel_id)
            and (refused := self._thread_refusal(channel_id, self.bot_permissions(channel_id)))
        ):
            return refused
        if (
            method == "PATCH"
            and self._is_thread(channel_id)
            and self.threads[channel_id]["thread_metadata"]["archived"]
        ):
            return _error(400, 50083, "Thread is archived")  # only deleting is allowed in an archived thread
        with self._lock:
            found = next((m for m in self.messages.get(channel_id, []) if m["id"] == str(message_id)), None)
            if found is None:
                return _error(404, 10008, "Unknown Message")
            if method == "GET":
                return _json(found)
            if method == "DELETE":
                self.messages[channel_id].remove(found)
                return web.Response(status=204)
            if found["author"]["id"] not in (str(BOT_ID), str(APP_ID)):
                return _error(403, 50005, "Cannot edit a message authored by another user")
            merged = {**found, **{k: v for k, v in payload.items() if k in ("content", "embeds", "flags")}}
            problems = message_problems(merged)
            if problems:
                self.limit_violations.append((str(channel_id), problems))
                return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
            found.update(merged, edited_timestamp=_iso())
            return _json(found)

    def _thread_name_problem(self, payload: dict[str, Any]) -> web.Response | None:
        name = payload.get("name") or ""
        if not 1 <= len(name) <= 100:
            return _error(400, 50035, "Invalid Form Body", {"name": {"_errors": [{"message": "1-100 chars"}]}})
        return None

    def _start_thread(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> web.Response:
        if refused := self._access(channel_id):
            return refused
        channel = self.channels.get(channel_id)
        if channel is None or channel["type"] != GUILD_TEXT:
            return _error(400, 50024, "Cannot execute action on this channel type")
        if not self.bot_permissions(channel_id) & CREATE_PUBLIC_THREADS:
            return _error(403, 50013, "Missing Permissions")
        with self._lock:
            if not any(m["id"] == str(message_id) for m in self.messages.get(channel_id, [])):
                return _error(404, 10008, "Unknown Message")
            if message_id in self.threads:
                return _error(400, 160004, "A thread has already been created for this message")
            if refused := self._thread_name_problem(payload):
                return refused
            thread = self._thread_payload(
                message_id, channel_id, payload["name"], BOT_ID, int(payload.get("auto_archive_duration") or 1440)
            )
            self.threads[message_id] = thread
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    def _start_thread_without_message(self, channel_id: int, payload: dict[str, Any]) -> web.Response:
        """``POST /channels/{id}/threads``: a forum or media post (thread + first message), or a bare thread."""
        if refused := self._access(channel_id):
            return refused
        channel = self.channels.get(channel_id)
        if channel is None or channel["type"] not in (GUILD_TEXT, *THREAD_ONLY):
            return _error(400, 50024, "Cannot execute action on this channel type")
        if refused := self._thread_name_problem(payload):
            return refused
        permissions = self.bot_permissions(channel_id)
        minutes = int(payload.get("auto_archive_duration") or 1440)
        if channel["type"] == GUILD_TEXT:
            kind = int(payload.get("type") or PRIVATE_THREAD)
            if not permissions & (CREATE_PUBLIC_THREADS if kind == PUBLIC_THREAD else 1 << 36):
                return _error(403, 50013, "Missing Permissions")
            thread_id = next(self._ids)
            thread = {**self._thread_payload(thread_id, channel_id, payload["name"], BOT_ID, minutes), "type": kind}
            with self._lock:
                self.threads[thread_id] = thread
            self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
            return _json(thread, 201)
        # A forum/media post: Send Messages is what counts (Create Public Threads is ignored).
        if not permissions & SEND_MESSAGES:
            return _error(403, 50013, "Missing Permissions")
        first = self._strip_embeds(channel_id, dict(payload.get("message") or {}))
        if not first.get("content") and not first.get("embeds"):
            return _error(400, 50006, "Cannot send an empty message")
        problems = message_problems(first)
        if problems:
            with self._lock:
                self.limit_violations.append((str(channel_id), problems))
            return _error(400, 50035, "Invalid Form Body", {"message": {"_errors": [{"message": p} for p in problems]}})
        return self._forum_post(channel_id, payload["name"], first, self.users[BOT_ID], minutes)

    def _forum_post(
        self,
        forum_id: int,
        name: str,
        first: dict[str, Any],
        author: dict[str, Any],
        minutes: int,
        *,
        webhook_id: int | None = None,
        with_thread: bool = True,
    ) -> web.Response:
        """A thread in a forum or media channel whose first message has the thread's id."""
        thread_id = next(self._ids)
        thread = self._thread_payload(thread_id, forum_id, name, int(author["id"]), minutes)
        message = self._new_message(thread_id, first.get("content") or "", author, first)
        message["id"] = str(thread_id)
        if webhook_id is not None:
            message["webhook_id"] = str(webhook_id)
        with self._lock:
            self.threads[thread_id] = thread
            self.messages.setdefault(thread_id, []).append(message)
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        self.dispatch("MESSAGE_CREATE", {**message, "guild_id": str(GUILD_ID)})
        return _json({**thread, "message": message} if with_thread else message, 201 if with_thread else 200)

    # -- webhooks and interactions ------------------------------------------------------------------

    async def _webhook_route(self, request: web.Request, method: str, path: str, body: Any) -> web.Response:
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            record = self.interactions.get(m[2])
            if record is None or str(record.id) != m[1]:
                return _error(404, 10062, "Unknown interaction")
            if record.callbacks:
                return _error(400, 40060, "Interaction has already been acknowledged.")
            record.callbacks.append(body or {})
            record.callback_at = time.monotonic()
            kind = (body or {}).get("type")
            flags = int(((body or {}).get("data") or {}).get("flags") or 0)
            record.original_ephemeral = bool(flags & 64)
            original = self._new_message(record.channel_id, "", self.users[BOT_ID], (body or {}).get("data") or {})
            record.original_id = int(original["id"])
            record.original_pending = kind == 5
            if kind == 4 and not record.original_ephemeral:
                original["content"] = ((body or {}).get("data") or {}).get("content") or ""
                with self._lock:
                    self.messages.setdefault(record.channel_id, []).append(original)
            return _json(
                {
                    "interaction": {
                        "id": str(record.id),
                        "type": 2,
                        "response_message_id": original["id"],
                        "response_message_loading": kind == 5,
                        "response_message_ephemeral": record.original_ephemeral,
                    },
                    "resource": {"type": kind},
                }
            )
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)", path):
            webhook_id, token = int(m[1]), m[2]
            if token in self.interactions and webhook_id == APP_ID:
                if method != "POST":
                    return _error(405, 0, "405: Method Not Allowed")
                return self._follow_up(self.interactions[token], body or {})
            hook = self.webhooks.get(webhook_id)
            if hook is None or hook["token"] != token:
                return _error(404, 10015, "Unknown Webhook")
            if method == "GET":
                return _json(
                    {
                        "id": str(webhook_id),
                        "type": 1,
                        "guild_id": str(GUILD_ID),
                        "channel_id": str(hook["channel_id"]),
                        "name": "threatbot feed",
                        "avatar": None,
                        "token": token,
                        "application_id": None,
                    }
                )
            return self._execute_webhook(webhook_id, hook, request.query.get("thread_id"), body or {})
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/(@original|\d+)", path):
            record = self.interactions.get(m[2])
            if record is None:
                return _error(404, 10015, "Unknown Webhook")
            if m[3] == "@original" and method == "DELETE":
                record.deleted_original = True
                with self._lock:
                    for message in self.messages.get(record.channel_id, []):
                        if message["id"] == str(record.original_id):
                            self.messages[record.channel_id].remove(message)
                            break
                return web.Response(status=204)
            target = record.original_id if m[3] == "@original" else int(m[3])
            return self._edit_message(record.channel_id, target or 0, body or {}, method)
        return _error(404, 0, f"404: Not Found ({method} {path})")

    def _execute_webhook(
        self, webhook_id: int, hook: dict[str, Any], thread: str | None, payload: dict[str, Any]
    ) -> web.Response:
        """Execute Webhook: into its channel, a thread of it (``thread_id``), or a new forum post (``thread_name``)."""
        author = {**self._user(webhook_id, payload.get("username") or "threatbot feed", bot=True)}
        channel = self.channels.get(hook["channel_id"])
        if channel is None:  # pragma: no cover - deleting a channel deletes its webhooks
            return _error(404, 10015, "Unknown Webhook")
        thread_name = payload.get("thread_name")
        if thread and thread_name:
            return _error(400, 220002, "Webhooks posted to forum channels cannot have both a thread_name and thread_id")
        if thread:
            thread_id = int(thread)
            known = self.threads.get(thread_id)
            if known is None or int(known["parent_id"]) != hook["channel_id"]:
                return _error(404, 10003, "Unknown Channel")
            return self._create_message(thread_id, payload, author, webhook_id=webhook_id)
        if channel["type"] in THREAD_ONLY:
            if not thread_name:
                return _error(400, 220001, "Webhooks posted to forum channels must have a thread_name or thread_id")
            if not 1 <= len(thread_name) <= 100:
                return _error(400, 50035, "Invalid Form Body", {"thread_name": {"_errors": [{"message": "1-100"}]}})
            problems = message_problems(payload)
            if problems:
                with self._lock:
                    self.limit_violations.append((str(hook["channel_id"]), problems))
                return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
            return self._forum_post(
                hook["channel_id"], thread_name, payload, author, 4320, webhook_id=webhook_id, with_thread=False
            )
        if thread_name:
            return _error(400, 220003, "Webhooks can only create threads in forum channels")
        return self._create_message(hook["channel_id"], payload, author, webhook_id=webhook_id)

    def _follow_up(self, record: InteractionRecord, payload: dict[str, Any]) -> web.Response:
        if not record.callbacks:
            return _error(404, 10015, "Unknown Webhook")  # no follow-ups before the interaction is acknowledged
        # Interaction responses need no Send Messages, but Embed Links counts (it is in ``app_permissions``).
        channel = self.channels.get(record.channel_id) or self.threads.get(record.channel_id) or {}
        if channel.get("type") != DM:
            payload = self._strip_embeds(record.channel_id, payload)
            if not payload.get("content") and not payload.get("embeds"):
                return _error(400, 50006, "Cannot send an empty message")
        problems = message_problems(payload)
        if problems:
            with self._lock:
                self.limit_violations.append((f"interaction {record.id}", problems))
            return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
        replaces_original = record.original_pending and not record.deleted_original
        ephemeral = record.original_ephemeral if replaces_original else bool(int(payload.get("flags") or 0) & 64)
        message = self._new_message(record.channel_id, payload.get("content") or "", self.users[BOT_ID], payload)
        message["webhook_id"] = str(APP_ID)
        message["flags"] = 64 if ephemeral else 0
        message["interaction_metadata"] = {
            "id": str(record.id),
            "type": 2,
            "user": self.users[record.user_id],
            "authorizing_integration_owners": {},
        }
        if replaces_original:
            message["id"] = str(record.original_id)
            record.original_pending = False
        record.followups.append(message)
        if not ephemeral:
            with self._lock:
                self.messages.setdefault(record.channel_id, []).append(message)
        return _json(message)


@contextlib.contextmanager
def serving_discord() -> Iterator[FakeDiscord]:
    """A running fake with discord.py pointed at it, pointed back wherever it was afterwards."""
    from adapters.discord.endpoints import point_discord_at

    with FakeDiscord() as server:
        previous = point_discord_at(server.api_url, server.gateway_url)
        try:
            yield server
        finally:
            point_discord_at(previous.api_url, previous.gateway_url)
