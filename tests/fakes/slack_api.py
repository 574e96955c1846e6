"""A fake Slack on 127.0.0.1: the Web API, response URLs, and a Socket Mode WebSocket, for tests and benchmarks.

Point the code under test at it with ``THREATBOT_SLACK_API_URL=fake.api_url`` (or
``WebClient(base_url=fake.api_url)``)::

    with FakeSlack(token="xoxb-test") as slack:
        slack.users["U1"] = {"tz": "Europe/Berlin", "is_admin": True}
        ... drive the app ...
        post = slack.wait_for("chat.postMessage")

Every request is recorded as a :class:`Call` (method, params — form, query or JSON merged, with
``blocks``/``metadata`` decoded — headers, arrival time). Answers:

* ``auth.test``, ``users.info`` (from :attr:`FakeSlack.users`), ``apps.connections.open``;
* ``chat.postMessage`` / ``chat.update`` / ``chat.postEphemeral`` — stored per channel (threads too)
  so ``conversations.history`` / ``conversations.replies`` (with ``metadata``) answer from them;
* ``POST /response/<id>`` — a slash command's or button's ``response_url`` (:meth:`response_url`).

Trouble on demand: :meth:`fail_next` answers the next N calls of a method with any status, headers
and body (e.g. HTTP 429 with ``Retry-After``); a wrong bearer token gets ``invalid_auth``.

**Slack's documented refusals, enforced** (so a test fails where real Slack would):

* Block Kit (https://docs.slack.dev/reference/block-kit/blocks and the element pages): at most 50
  blocks; ``block_id`` unique in a message and ≤ 255; ``action_id`` unique within its block and ≤ 255;
  section text ≤ 3000, ≤ 10 fields of ≤ 2000; header ≤ 150; ≤ 10 context elements; ≤ 25 elements in an
  actions block; button text ≤ 75, value ≤ 2000; overflow 2–5 options, option text ≤ 75, value ≤ 150.
  A violation is ``invalid_blocks`` (with Slack's ``/blocks/N/…`` pointer in ``errors``) on
  ``chat.postMessage``/``chat.update``/``chat.postEphemeral``, HTTP 400 on a ``response_url``. Message
  ``text`` over 40,000 characters is ``msg_too_long``.
* Conversations (:meth:`FakeSlack.add_channel`; an undeclared id is a public channel the bot is in):
  posting to a public channel the bot is not in works only with ``chat:write.public`` (else
  ``not_in_channel``); a private channel, DM or group DM it is not in is ``channel_not_found``; an
  archived one is ``is_archived``. ``conversations.history``/``replies``, ``chat.postEphemeral`` and
  ``reactions.add`` need membership. ``conversations.join`` needs ``channels:join`` and works only on
  public channels (``method_not_supported_for_channel_type``).
* Events: :meth:`FakeSlack.delivers_events_from` says whether Slack would send the bot a channel's
  message events at all (only from conversations it is a member of); test rigs check it.
* A ``response_url`` answers 5 times within 30 minutes (:attr:`FakeSlack.response_url_uses`,
  ``response_url_ttl``); after that, HTTP 404 ``used_url`` / ``expired_url``.

Socket Mode: :attr:`FakeSlack.socket` is a minimal WebSocket server (RFC 6455 text frames, ping/pong);
``apps.connections.open`` hands out its ``ws://`` URL, :meth:`FakeSocketMode.send_envelope` pushes an
envelope and :meth:`FakeSocketMode.wait_ack` returns the app's acknowledgement.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Call", "FakeChannel", "FakeSlack", "FakeSocketMode", "block_errors", "message_error"]

_JSON_PARAMS = ("blocks", "metadata", "attachments")

# Slack's documented limits (Block Kit reference pages; chat.postMessage for the text).
MAX_BLOCKS = 50
MAX_ID = 255
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
OPTION_TEXT = 75
OPTION_VALUE = 150
OVERFLOW_OPTIONS = (2, 5)
MESSAGE_TEXT = 40_000
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
DEFAULT_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "channels:join",
        "channels:read",
        "groups:history",
        "groups:read",
        "im:history",
        "mpim:history",
        "im:read",
        "mpim:read",
        "chat:write",
        "chat:write.public",
        "commands",
        "reactions:write",
        "users:read",
    }
)


def block_errors(blocks: Any) -> list[str]:
    """Slack's ``invalid_blocks`` complaints about ``blocks`` (empty when Slack would accept them)."""
    if blocks in (None, ""):
        return []
    if not isinstance(blocks, list):
        return ["/blocks: must be an array"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"/blocks: must contain at most {MAX_BLOCKS} items")
    block_ids: set[str] = set()
    for n, block in enumerate(blocks):
        where = f"/blocks/{n}"
        if not isinstance(block, Mapping):
            errors.append(f"{where}: must be an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_ID:
                errors.append(f"{where}/block_id: must be at most {MAX_ID} characters")
            if block_id in block_ids:
                errors.append(f"{where}/block_id: '{block_id}' already exists")
            block_ids.add(block_id)
        kind = block.get("type")
        elements: list[Any] = []
        if kind == "section":
            text = (block.get("text") or {}).get("text")
            if text is not None and len(text) > SECTION_TEXT:
                errors.append(f"{where}/text: must be at most {SECTION_TEXT} characters")
            fields = block.get("fields") or []
            if len(fields) > SECTION_FIELDS:
                errors.append(f"{where}/fields: must contain at most {SECTION_FIELDS} items")
            for f, item in enumerate(fields):
                if len(str((item or {}).get("text") or "")) > FIELD_TEXT:
                    errors.append(f"{where}/fields/{f}/text: must be at most {FIELD_TEXT} characters")
            if text is None and not fields:
                errors.append(f"{where}: must have text or fields")
            if block.get("accessory"):
                elements = [block["accessory"]]
        elif kind == "header":
            text = str((block.get("text") or {}).get("text") or "")
            if len(text) > HEADER_TEXT:
                errors.append(f"{where}/text: must be at most {HEADER_TEXT} characters")
        elif kind == "context":
            items = block.get("elements") or []
            if not items or len(items) > CONTEXT_ELEMENTS:
                errors.append(f"{where}/elements: must contain 1 to {CONTEXT_ELEMENTS} items")
        elif kind == "actions":
            elements = list(block.get("elements") or [])
            if not elements or len(elements) > ACTIONS_ELEMENTS:
                errors.append(f"{where}/elements: must contain 1 to {ACTIONS_ELEMENTS} items")
        action_ids: set[str] = set()
        for e, element in enumerate(elements):
            path = f"{where}/elements/{e}" if kind == "actions" else f"{where}/accessory"
            errors += _element_errors(element, path, action_ids)
    return errors


def _element_errors(element: Any, path: str, action_ids: set[str]) -> list[str]:
    if not isinstance(element, Mapping):
        return [f"{path}: must be an object"]
    errors: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None:
        if len(str(action_id)) > MAX_ID:
            errors.append(f"{path}/action_id: must be at most {MAX_ID} characters")
        if action_id in action_ids:
            errors.append(f"{path}/action_id: '{action_id}' already exists")
        action_ids.add(action_id)
    if element.get("type") == "button":
        if len(str((element.get("text") or {}).get("text") or "")) > BUTTON_TEXT:
            errors.append(f"{path}/text: must be at most {BUTTON_TEXT} characters")
        if len(str(element.get("value") or "")) > BUTTON_VALUE:
            errors.append(f"{path}/value: must be at most {BUTTON_VALUE} characters")
    if element.get("type") == "overflow":
        options = element.get("options") or []
        low, high = OVERFLOW_OPTIONS
        if not low <= len(options) <= high:
            errors.append(f"{path}/options: must contain {low} to {high} items")
        for o, option in enumerate(options):
            if len(str((option.get("text") or {}).get("text") or "")) > OPTION_TEXT:
                errors.append(f"{path}/options/{o}/text: must be at most {OPTION_TEXT} characters")
            if len(str(option.get("value") or "")) > OPTION_VALUE:
                errors.append(f"{path}/options/{o}/value: must be at most {OPTION_VALUE} characters")
    return errors


def message_error(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Slack's answer to a message whose blocks or text break the rules; None when it is acceptable."""
    problems = block_errors(params.get("blocks"))
    if problems:
        return {"ok": False, "error": "invalid_blocks", "errors": problems, "response_metadata": {"messages": problems}}
    if len(str(params.get("text") or "")) > MESSAGE_TEXT:
        return {"ok": False, "error": "msg_too_long"}
    return None


@dataclass
class FakeChannel:
    """A channel as the fake knows it: its kind and whether the bot is in it."""

    id: str
    kind: str = "channel"  # "channel" (public), "group" (private), "im", "mpim"
    member: bool = True
    archived: bool = False

    @property
    def private(self) -> bool:
        return self.kind != "channel"

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_channel": self.kind == "channel",
            "is_group": self.kind == "group",
            "is_im": self.kind == "im",
            "is_mpim": self.kind == "mpim",
            "is_private": self.private,
            "is_archived": self.archived,
            "is_member": self.member,
        }


@dataclass
class Call:
    """One request the fake received."""

    method: str  # Web API method ("chat.postMessage") or "response_url"
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    path: str = ""

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.params.get("blocks") or [])

    def all_text(self) -> str:
        """The message's text and every string inside its blocks, for "does it say X" assertions."""
        parts = [self.text]

        def walk(value: Any) -> None:
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, Mapping):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.blocks)
        return "\n".join(parts)


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a burst of clients must not wait on TCP retries


class FakeSlack:
    """The fake Web API server. Use as a context manager, or :meth:`start`/:meth:`stop`."""

    def __init__(self, *, token: str = "xoxb-fake-token", team_id: str = "T0FAKE", bot_user_id: str = "UBOT") -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "BBOT"
        #: users.info answers, by user id: fields of Slack's ``user`` object (``tz``, ``is_admin``, …).
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        #: Every call Slack refused (an ``ok: false`` or an HTTP error), with the answer: tests assert none
        #: happened where the app should have got it right, and inspect the ones that should have.
        self.refusals: list[tuple[Call, dict[str, Any]]] = []
        #: Messages per channel, oldest first: dicts with ts, text, blocks, metadata, thread_ts.
        self.channels: dict[str, list[dict[str, Any]]] = {}
        #: Channels where chat.postMessage answers ``not_in_channel`` (a public channel without chat:write.public).
        self.closed_channels: set[str] = set()
        #: Declared conversations (:meth:`add_channel`); any other id is a public channel the bot is in.
        self.conversations: dict[str, FakeChannel] = {}
        #: The bot token's scopes: a method needing one it lacks answers ``missing_scope``.
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        #: Reactions added, as (channel, ts, name).
        self.reactions: list[tuple[str, str, str]] = []
        #: Ephemeral messages shown, as (channel, user, params).
        self.ephemerals: list[tuple[str, str, dict[str, Any]]] = []
        #: Per response_url path: the moments it was used (Slack allows 5 uses within 30 minutes).
        self.response_url_uses: dict[str, list[float]] = {}
        self.response_url_ttl = RESPONSE_URL_TTL
        self._issued: dict[str, float] = {}
        #: Seconds each method waits before answering (a slow Slack).
        self.delays: dict[str, float] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._response_ids = itertools.count(1)
        self.socket = FakeSocketMode()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str | None = None) -> str:
        """A new response_url; its 30 minutes run from now (as from the command or click Slack sent)."""
        path = f"/response/{name or next(self._response_ids)}"
        with self._lock:
            self._issued[path] = time.monotonic()
        return f"{self.url}{path}"

    def start(self) -> FakeSlack:
        self._thread.start()
        self.socket.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket.stop()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conversations -------------------------------------------------------------------------------

    def add_channel(
        self, channel: str, *, kind: str = "channel", member: bool = True, archived: bool = False
    ) -> FakeChannel:
        """Declare a conversation: ``kind`` "channel" (public), "group" (private), "im" or "mpim"."""
        if kind not in ("channel", "group", "im", "mpim"):
            raise ValueError(f"unknown conversation kind {kind!r}")
        with self._lock:
            self.conversations[channel] = FakeChannel(channel, kind, member, archived)
            return self.conversations[channel]

    def conversation(self, channel: str) -> FakeChannel:
        with self._lock:
            return self.conversations.get(channel) or FakeChannel(channel)

    def is_member(self, channel: str) -> bool:
        return self.conversation(channel).member

    def delivers_events_from(self, channel: str) -> bool:
        """Whether Slack sends the bot this conversation's message events: only where it is a member."""
        return self.is_member(channel)

    def _post_refusal(self, channel: str) -> dict[str, Any] | None:
        """Why ``chat.postMessage`` to ``channel`` fails, per Slack's docs; None when it may post."""
        if channel in self.closed_channels:
            return {"ok": False, "error": "not_in_channel"}
        conv = self.conversation(channel)
        if conv.member or (not conv.private and "chat:write.public" in self.scopes):
            return {"ok": False, "error": "is_archived"} if conv.archived else None
        if conv.private:
            return {"ok": False, "error": "channel_not_found"}
        if conv.archived:
            return {"ok": False, "error": "is_archived"}
        return {"ok": False, "error": "not_in_channel"}

    def _read_refusal(self, channel: str) -> dict[str, Any] | None:
        """Why reading ``channel`` (history, replies) fails: the bot must be a member."""
        conv = self.conversation(channel)
        if conv.member:
            return None
        return {"ok": False, "error": "channel_not_found" if conv.private else "not_in_channel"}

    # -- inspection --------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self,
        method: str | tuple[str, ...],
        *,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[Call], bool] | None = None,
    ) -> Call:
        """Block until ``count`` calls of ``method`` (or any of several) matching ``where`` arrived; the last of them."""
        methods = (method,) if isinstance(method, str) else method
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                matching = [c for c in self.calls if c.method in methods and (where is None or where(c))]
                if len(matching) >= count:
                    return matching[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise TimeoutError(f"{count} × {method} not received within {timeout}s (saw {seen})")
                self._lock.wait(remaining)

    def quiet(self, seconds: float = 0.3) -> None:
        """Wait until no request has arrived for ``seconds`` (to assert that nothing more happens)."""
        while True:
            with self._lock:
                last = self.calls[-1].at if self.calls else 0.0
            idle = time.monotonic() - last
            if idle >= seconds:
                return
            time.sleep(seconds - idle)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str = "internal_error",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` and ``{"ok": false, "error": error}``."""
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(status, {"ok": False, "error": error}, dict(headers or {}), times)
            )

    # -- serving -----------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        content_type = request.headers.get("Content-Type", "")
        if raw and "json" in content_type:
            params.update(json.loads(raw.decode("utf-8")))
        elif raw:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        for key in _JSON_PARAMS:
            if isinstance(params.get(key), str) and params[key][:1] in "[{":
                params[key] = json.loads(params[key])
        headers = {k.lower(): v for k, v in request.headers.items()}
        if parts.path.startswith("/response/"):
            method = "response_url"
        elif parts.path.startswith("/api/"):
            method = parts.path[len("/api/") :]
        else:
            self._send(request, 404, {"ok": False, "error": "unknown_path"})
            return
        call = Call(method, params, headers, path=parts.path)
        delay = self.delays.get(method, 0.0)
        if delay:
            time.sleep(delay)
        with self._lock:
            self.calls.append(call)
            failure = self._take_failure(method)
            self._lock.notify_all()
        if failure is not None:
            self._send(request, failure.status, failure.body, failure.headers)
            return
        if method == "response_url":
            status, body = self._respond_url(parts.path, params)
            if status != 200:
                self._refused(call, body)
            self._send(request, status, body)
            return
        token = headers.get("authorization", "").removeprefix("Bearer ").strip() or str(params.get("token") or "")
        if method == "apps.connections.open":
            ok = token.startswith("xapp-")
            self._send(
                request, 200, {"ok": True, "url": self.socket.url} if ok else {"ok": False, "error": "invalid_auth"}
            )
            return
        if token != self.token:
            self._send(request, 200, {"ok": False, "error": "invalid_auth"})
            return
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            self._send(request, 200, {"ok": False, "error": "unknown_method"})
            return
        answer = handler(params)
        if not answer.get("ok"):
            self._refused(call, answer)
        self._send(request, 200, answer)

    def _refused(self, call: Call, answer: dict[str, Any]) -> None:
        with self._lock:
            self.refusals.append((call, answer))

    def refused(self, error: str | None = None) -> list[tuple[Call, dict[str, Any]]]:
        """Refusals so far (of one ``error`` code, when given)."""
        with self._lock:
            return [(c, a) for c, a in self.refusals if error is None or a.get("error") == error]

    def _respond_url(self, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        """A response_url: 5 uses within 30 minutes of the first; bad blocks are HTTP 400."""
        now = time.monotonic()
        with self._lock:
            uses = self.response_url_uses.setdefault(path, [])
            issued = self._issued.get(path, uses[0] if uses else now)
            if now - issued > self.response_url_ttl:
                return 404, {"ok": False, "error": "expired_url"}
            if len(uses) >= RESPONSE_URL_USES:
                return 404, {"ok": False, "error": "used_url"}
            uses.append(now)
        refusal = message_error(params)
        if refusal is not None:
            return 400, refusal
        return 200, None

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = b"ok" if body is None else json.dumps(body).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "text/plain" if body is None else "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- Web API methods ---------------------------------------------------------------------------

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Team",
            "user": "threatbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        user = {"id": user_id, "name": user_id.lower(), "tz": "UTC", "is_admin": False, "is_owner": False}
        user.update(self.users[user_id])
        return {"ok": True, "user": user}

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        refusal = self._post_refusal(channel) or message_error(params)
        if refusal is not None:
            return refusal
        ts = self._next_ts()
        message = {
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": params.get("blocks") or [],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        with self._lock:
            self.channels.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        refusal = self._read_refusal(channel) or self._post_refusal(channel) or message_error(params)
        if refusal is not None:
            return refusal
        with self._lock:
            self.ephemerals.append((channel, str(params.get("user") or ""), dict(params)))
        return {"ok": True, "message_ts": self._next_ts()}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel") or ""), str(params.get("ts") or "")
        refusal = message_error(params)
        if refusal is not None:
            return refusal
        if self.conversation(channel).archived:
            return {"ok": False, "error": "is_archived"}
        with self._lock:
            for message in self.channels.get(channel, []):
                if message["ts"] == ts:
                    message.update(text=params.get("text", ""), blocks=params.get("blocks") or [])
                    return {"ok": True, "channel": channel, "ts": ts}
        return {"ok": False, "error": "message_not_found"}

    def _history(self, channel: str, oldest: float, thread: str | None) -> list[dict[str, Any]]:
        with self._lock:
            messages = list(self.channels.get(channel, []))
        if thread is None:
            chosen = [m for m in messages if "thread_ts" not in m]
        else:
            chosen = [m for m in messages if m["ts"] == thread or m.get("thread_ts") == thread]
        return [m for m in chosen if float(m["ts"]) > oldest]

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        refusal = self._read_refusal(str(params.get("channel")))
        if refusal is not None:
            return refusal
        found = self._history(str(params.get("channel")), float(params.get("oldest") or 0), None)
        return {"ok": True, "messages": list(reversed(found)), "has_more": False}

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        refusal = self._read_refusal(str(params.get("channel")))
        if refusal is not None:
            return refusal
        found = self._history(str(params.get("channel")), float(params.get("oldest") or 0), str(params.get("ts")))
        return {"ok": True, "messages": found, "has_more": False}

    def _api_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        conv = self.conversation(str(params.get("channel") or ""))
        if conv.private and not conv.member:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": conv.info()}

    def _api_conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        if "channels:join" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:join"}
        channel = str(params.get("channel") or "")
        conv = self.conversation(channel)
        if conv.private:
            if not conv.member:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        if conv.archived:
            return {"ok": False, "error": "is_archived"}
        with self._lock:
            conv.member = True
            self.conversations[channel] = conv
        return {"ok": True, "channel": conv.info()}

    def _api_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        if "reactions:write" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "reactions:write"}
        channel = str(params.get("channel") or "")
        refusal = self._read_refusal(channel)
        if refusal is not None:
            return refusal
        entry = (channel, str(params.get("timestamp") or ""), str(params.get("name") or ""))
        with self._lock:
            if entry in self.reactions:
                return {"ok": False, "error": "already_reacted"}
            self.reactions.append(entry)
        return {"ok": True}

    def _api_reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = (str(params.get("channel") or ""), str(params.get("timestamp") or ""), str(params.get("name") or ""))
        with self._lock:
            if entry not in self.reactions:
                return {"ok": False, "error": "no_reaction"}
            self.reactions.remove(entry)
        return {"ok": True}


# -- Socket Mode -------------------------------------------------------------------------------------

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeSocketMode:
    """A minimal Socket Mode server: accepts the app's WebSocket, says hello, pushes envelopes, collects acks."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._connections: list[socket.socket] = []
        self._send_lock = threading.Lock()
        self.acks: dict[str, dict[str, Any]] = {}
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=fake"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.close()
        self._listener.close()

    def wait_connected(self, timeout: float = 5.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._connections), timeout):
                raise TimeoutError("no Socket Mode connection")

    def send_envelope(self, kind: str, payload: dict[str, Any], **extra: Any) -> str:
        """Push an envelope (``events_api``, ``slash_commands``, ``interactive``) to the newest connection."""
        envelope_id = uuid.uuid4().hex
        document = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            **extra,
        }
        with self._cond:
            conn = self._connections[-1]
        self._send(conn, 0x1, json.dumps(document).encode("utf-8"))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            return self.acks[envelope_id]

    # -- the wire ------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            headers = {}
            for line in request.decode("latin-1").split("\r\n")[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + _WS_GUID).encode()).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "AFAKE"}}
            self._send(conn, 0x1, json.dumps(hello).encode())
            with self._cond:
                self._connections.append(conn)
                self._cond.notify_all()
            while not self._stopping.is_set():
                frame = self._read_frame(conn)
                if frame is None:
                    return
                opcode, payload = frame
                if opcode == 0x9:
                    self._send(conn, 0xA, payload)
                elif opcode == 0x8:
                    return
                elif opcode == 0x1:
                    message = json.loads(payload.decode("utf-8"))
                    with self._cond:
                        self.received.append(message)
                        if message.get("envelope_id"):
                            self.acks[message["envelope_id"]] = message
                        self._cond.notify_all()
        except OSError:
            return
        finally:
            with self._cond:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()

    def _send(self, conn: socket.socket, opcode: int, payload: bytes) -> None:
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        with self._send_lock:
            conn.sendall(header + payload)

    @staticmethod
    def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _read_frame(self, conn: socket.socket) -> tuple[int, bytes] | None:
        head = self._recv_exact(conn, 2)
        if head is None:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        masked = head[1] & 0x80
        if length == 126:
            extended = self._recv_exact(conn, 2)
            if extended is None:
                return None
            length = struct.unpack("!H", extended)[0]
        elif length == 127:
            extended = self._recv_exact(conn, 8)
            if extended is None:
                return None
            length = struct.unpack("!Q", extended)[0]
        mask = self._recv_exact(conn, 4) if masked else b"\0\0\0\0"
        payload = self._recv_exact(conn, length) if length else b""
        if mask is None or payload is None:
            return None
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
