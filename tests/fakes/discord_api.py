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
  ``enforce_nonce``: a repeat returns the first message), threads started from a message take its id
  (``160004`` when one exists, ``50024`` in a DM or thread), THREAD_CREATE and MESSAGE_CREATE are
  dispatched like Discord does;
* **interactions** — INTERACTION_CREATE from :meth:`FakeDiscord.slash`; callbacks, follow-ups (the first
  after a deferral replaces the "thinking" message and inherits its visibility), ``@original`` edits
  and deletes;
* **webhooks** — :meth:`FakeDiscord.add_webhook` gives a channel webhook (execute, fetch, ``thread_id``);
* **rate limits** — :meth:`FakeDiscord.rate_limit` makes the next matching requests get a 429 with
  ``retry_after``, the ``X-RateLimit-*`` headers and ``Via`` (without ``Via`` discord.py takes a 429 for a
  Cloudflare ban and does not retry).

Every REST call is kept in :attr:`FakeDiscord.calls` for assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
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
#: View Channel, Send Messages, Read Message History, Embed Links, Use Application Commands, Create Public Threads, Send in Threads.
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 14) | (1 << 31) | (1 << 35) | (1 << 38)
MANAGE_CHANNELS = 1 << 4
ALL_PERMISSIONS = (1 << 53) - 1


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
        for channel_id, name in ((CHANNEL_ID, "threat-intel"), (OTHER_CHANNEL_ID, "general")):
            self.channels[channel_id] = {
                "id": str(channel_id),
                "type": 0,
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
    ) -> dict[str, Any]:
        """A person writes in a channel, thread or DM; the bot gets MESSAGE_CREATE (content per Discord's rules).

        ``mention_bot_role`` mentions the bot's managed role instead of its user (what the member list offers).
        """
        content = f"<@{BOT_ID}> {text}" if mention_bot else f"<@&{BOT_ROLE_ID}> {text}" if mention_bot_role else text
        channel = self.channels.get(channel_id) or self.threads[channel_id]
        in_guild = channel["type"] != 1
        message = self._new_message(channel_id, content, self.users[user_id], {})
        message["mentions"] = [self.users[BOT_ID]] if mention_bot else []
        message["mention_roles"] = [str(BOT_ROLE_ID)] if mention_bot_role else []
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
    ) -> InteractionRecord:
        """A person runs ``/threat <sub> [options]`` in a channel, thread or DM; the bot gets INTERACTION_CREATE."""
        channel = self.channels.get(channel_id) or self.threads[channel_id]
        types = {bool: 5, int: 4, str: 3}
        option_list = [
            {"name": k, "type": types[type(v)], "value": v} for k, v in (options or {}).items() if v is not None
        ]
        with self._lock:
            synced = self.commands.get(str(GUILD_ID)) or self.commands.get("global") or []
        command_id = next((c["id"] for c in synced if c["name"] == "threat"), str(next(self._ids)))
        data: dict[str, Any] = {
            "id": command_id,
            "name": "threat",
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
            "app_permissions": str(EVERYONE_PERMISSIONS),
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
            payload["member"] = {**self._member(user_id), "permissions": str(self._permissions(user_id))}
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

    def _permissions(self, user_id: int) -> int:
        value = EVERYONE_PERMISSIONS
        for role in self.roles:
            if int(role["id"]) in self.member_roles.get(user_id, []):
                value |= int(role["permissions"])
        return ALL_PERMISSIONS if value & (1 << 3) else value

    def _guild(self) -> dict[str, Any]:
        with self._lock:
            channels = [c for c in self.channels.values() if c["type"] == 0]
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
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.gateway_url.rstrip("/"), "shards": 1})
        if m := re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path):
            if method == "PUT":
                where = m[2] or "global"
                synced = [{**c, "id": str(next(self._ids)), "application_id": m[1], "version": "1"} for c in body or []]
                if m[2]:
                    for command in synced:
                        command["guild_id"] = m[2]
                with self._lock:
                    self.commands[where] = synced
                return _json(synced)
            return _json(self.commands.get(m[2] or "global", []))
        if m := re.fullmatch(r"/channels/(\d+)", path):
            channel = self.channels.get(int(m[1])) or self.threads.get(int(m[1]))
            return _json(channel) if channel else _error(404, 10003, "Unknown Channel")
        if m := re.fullmatch(r"/channels/(\d+)/typing", path):
            return web.Response(status=204)
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            if method == "POST":
                return self._create_message(int(m[1]), body or {}, self.users[BOT_ID])
            return _json(self.channel_messages(int(m[1])))
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path):
            return self._start_thread(int(m[1]), int(m[2]), body or {})
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            return self._edit_message(int(m[1]), int(m[2]), body or {}, method)
        return _error(404, 0, f"404: Not Found ({method} {path})")

    def _create_message(
        self, channel_id: int, payload: dict[str, Any], author: dict[str, Any], *, webhook_id: int | None = None
    ) -> web.Response:
        if channel_id not in self.channels and channel_id not in self.threads:
            return _error(404, 10003, "Unknown Channel")
        problems = message_problems(payload)
        if problems:
            with self._lock:
                self.limit_violations.append((str(channel_id), problems))
            return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
        nonce = payload.get("nonce")
        with self._lock:
            if nonce is not None and payload.get("enforce_nonce"):
                for existing in self.messages.get(channel_id, []):
                    if existing.get("nonce") == nonce:
                        return _json(existing)
            message = self._new_message(channel_id, payload.get("content") or "", author, payload)
            if webhook_id is not None:
                message["webhook_id"] = str(webhook_id)
            self.messages.setdefault(channel_id, []).append(message)
        event = dict(message)
        if channel_id not in self.channels or self.channels[channel_id]["type"] != 1:
            event["guild_id"] = str(GUILD_ID)
        self.dispatch("MESSAGE_CREATE", event)
        return _json(message)

    def _edit_message(self, channel_id: int, message_id: int, payload: dict[str, Any], method: str) -> web.Response:
        with self._lock:
            found = next((m for m in self.messages.get(channel_id, []) if m["id"] == str(message_id)), None)
            if found is None:
                return _error(404, 10008, "Unknown Message")
            if method == "DELETE":
                self.messages[channel_id].remove(found)
                return web.Response(status=204)
            merged = {**found, **{k: v for k, v in payload.items() if k in ("content", "embeds", "flags")}}
            problems = message_problems(merged)
            if problems:
                self.limit_violations.append((str(channel_id), problems))
                return _error(400, 50035, "Invalid Form Body", {"_errors": [{"message": p} for p in problems]})
            found.update(merged, edited_timestamp=_iso())
            return _json(found)

    def _start_thread(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> web.Response:
        channel = self.channels.get(channel_id)
        if channel is None:
            if channel_id in self.threads:
                return _error(400, 50024, "Cannot execute action on this channel type")
            return _error(404, 10003, "Unknown Channel")
        if channel["type"] != 0:
            return _error(400, 50024, "Cannot execute action on this channel type")
        with self._lock:
            if not any(m["id"] == str(message_id) for m in self.messages.get(channel_id, [])):
                return _error(404, 10008, "Unknown Message")
            if message_id in self.threads:
                return _error(400, 160004, "A thread has already been created for this message")
            name = payload.get("name") or ""
            if not 1 <= len(name) <= 100:
                return _error(400, 50035, "Invalid Form Body", {"name": {"_errors": [{"message": "1-100 chars"}]}})
            thread = {
                "id": str(message_id),
                "guild_id": str(GUILD_ID),
                "parent_id": str(channel_id),
                "owner_id": str(BOT_ID),
                "name": name,
                "type": 11,
                "last_message_id": None,
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
                "total_message_sent": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": int(payload.get("auto_archive_duration") or 1440),
                    "archive_timestamp": _iso(),
                    "locked": False,
                },
            }
            self.threads[message_id] = thread
        self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

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
            channel_id = int(request.query.get("thread_id") or hook["channel_id"])
            author = {**self._user(webhook_id, "threatbot feed", bot=True)}
            return self._create_message(channel_id, body or {}, author, webhook_id=webhook_id)
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

    def _follow_up(self, record: InteractionRecord, payload: dict[str, Any]) -> web.Response:
        if not record.callbacks:
            return _error(404, 10015, "Unknown Webhook")  # no follow-ups before the interaction is acknowledged
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
