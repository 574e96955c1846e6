"""The Slack chat adapter: ``/threat``, mentions, DMs, thread follow-ups and buttons, over slack-bolt.

It only translates: a Slack payload becomes an :class:`~bot.messages.IncomingMessage` for
:meth:`bot.conversation.Conversation.handle`, and the :class:`~bot.messages.Reply` becomes Block Kit
(``adapters.slack.render``) posted back. Meaning, memory and search are the core's.

**Acknowledging in time, whatever the load.** The Bolt app runs with ``process_before_response``:
each listener acknowledges and hands the work to the adapter's own worker pool, then returns, so
Slack's 3-second ack never waits behind answers being computed (Bolt's default would queue the ack
itself on the same executor as the work). Answers go back through the command's ``response_url``
or ``chat.postMessage``.

**Where answers go.**

* ``/threat …`` — content (search results, a record, a field, "nothing found") is ephemeral, with a
  "Share to channel" button; help and refusals are ephemeral too; confirmations (subscribed, the
  channel's subscriptions, sources) are posted to the channel. A posted reply's thread gets the
  conversation's context (:meth:`~bot.conversation.Conversation.rebind_thread`), so follow-ups there work.
* An @mention in a channel is answered in its thread; later messages in a thread the bot answered
  need no mention (unless they mention someone else). A mention in the thread of a feed post
  starts from that post's incident.
* In a DM every message is for the bot; top-level messages are one running conversation.
* Buttons: "Details" expands an ephemeral card in place, or answers in the thread of a channel
  message; "Share to channel"; 👍/👎 (stored with the question); follow-up suggestions.

**Once only.** Event retries (``X-Slack-Retry-Num``) and repeated event ids are dropped by a global
middleware; a message that arrives as both ``app_mention`` and ``message`` is answered once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from adapters.slack.client import guarded_logger, web_client, webhook_client
from adapters.slack.dedupe import SeenSet
from adapters.slack.mrkdwn import escaped_clip, mentions, to_plain
from adapters.slack.render import (
    CONTENT_KINDS,
    MAX_BLOCKS,
    MENU_VERBS,
    Action,
    SlackMessage,
    Viewer,
    entries,
    parse_value,
    render_reply,
)
from adapters.slack.store import Card, SlackStore
from adapters.slack.users import ManagerPolicy, SlackUser, UserDirectory
from bot.commands import Command, Verb
from bot.conversation import Conversation
from bot.messages import IncomingMessage, Reply, ThreadKey

__all__ = ["BOT_EVENTS", "BOT_SCOPES", "COMMAND", "PLATFORM", "SlackAdapter"]

PLATFORM = "slack"
COMMAND = "/threat"
#: The events the app subscribes to (manifest ``settings.event_subscriptions.bot_events``).
BOT_EVENTS = ("app_mention", "message.channels", "message.groups", "message.im")
#: Every bot scope the code needs (manifest ``oauth_config.scopes.bot``), and what for.
BOT_SCOPES = {
    "app_mentions:read": "app_mention events",
    "channels:history": "thread follow-ups in public channels (message.channels), delivery look-ups",
    "groups:history": "thread follow-ups in private channels (message.groups), delivery look-ups",
    "im:history": "direct messages (message.im)",
    "chat:write": "answers, feed posts, thread replies, edits",
    "chat:write.public": "feed posts and shared answers in public channels the bot was not invited to",
    "commands": "/threat",
    "users:read": "the asker's time zone and admin flags (users.info)",
}
NOT_IN_CHANNEL = "I can't post in this channel myself yet: invite me (`/invite @threatbot`) so feed posts reach it."
#: A DM's top-level messages form one conversation under this thread id.
DM_THREAD = "im"
#: Message subtypes that are people talking; every other subtype (edits, joins, bots) is ignored.
_SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
_ACTION_ID = re.compile(r"^tb_")
#: Slack errors meaning "the bot cannot post there": fall back to the response_url.
_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_dm_bot"}


class SlackAdapter:
    """A Bolt app wired to a :class:`~bot.conversation.Conversation`. Serve it with :mod:`adapters.slack.component`."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        bot_token: str,
        signing_secret: str = "",
        api_url: str | None = None,
        managers: ManagerPolicy | None = None,
        workers: int = 8,
        store: SlackStore | None = None,
        client: WebClient | None = None,
        clock: Callable[[], datetime] | None = None,
        secrets: tuple[str, ...] = (),
        token_verification: bool = True,
    ) -> None:
        hidden = [bot_token, signing_secret, *secrets]
        self.log = guarded_logger("adapters.slack", hidden)
        self.conversation = conversation
        self.client = client or web_client(
            bot_token, base_url=api_url, logger=guarded_logger("adapters.slack.api", hidden)
        )
        self.store = store or SlackStore(conversation.store.db)
        self.users = UserDirectory(self.client)
        self.managers = managers or ManagerPolicy("admins")
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-answer")
        self.events_seen = SeenSet()
        self.messages_seen = SeenSet()
        self._pending: set[Future] = set()
        self._pending_lock = threading.Lock()
        self.app = App(
            signing_secret=signing_secret or None,
            client=self.client,
            process_before_response=True,
            token_verification_enabled=token_verification,
            logger=guarded_logger("adapters.slack.bolt", hidden),
        )
        self.app.use(self._once_per_event)
        self.app.command(COMMAND)(self._on_command)
        listeners = {"app_mention": self._on_mention, "message": self._on_message}
        for event_type in dict.fromkeys(e.split(".")[0] for e in BOT_EVENTS):
            self.app.event(event_type)(listeners[event_type])
        self.app.action(_ACTION_ID)(self._on_action)

    # -- serving ---------------------------------------------------------------------------------

    def wsgi(self, path: str = "/slack/events") -> SlackRequestHandler:
        """The WSGI application for HTTP mode (all of commands, events and interactivity post to ``path``)."""
        return SlackRequestHandler(self.app, path=path)

    def warm_up(self) -> None:
        """Open the store's lazily built parts (vector index, embedding model) before answers run in parallel.

        ``RecordStore`` creates them on first use without a lock; several workers using it at once on a
        cold start can race in Chroma's client set-up. Done once, here, they are shared safely after.
        """
        store = self.conversation.store
        for part in ("index", "embedder"):
            try:
                getattr(store, part)
            except Exception as error:  # the first answer will report it properly
                self.log.warning("warming up the store's %s failed: %s", part, type(error).__name__)

    def close(self, *, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=not wait)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no answer is being worked on (tests, shutdown). True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._pending_lock:
                if not self._pending:
                    return True
            time.sleep(0.01)
        return False

    # -- listeners: acknowledge, then hand over (they run in the request thread) -----------------

    def _once_per_event(
        self, body: Mapping[str, Any], response: BoltResponse, next: Callable[[], None]
    ) -> BoltResponse:
        """Global middleware: an event id already seen is acknowledged and dropped (retries, repeats)."""
        event_id = body.get("event_id") if isinstance(body, Mapping) else None
        if event_id and body.get("type") == "event_callback" and not self.events_seen.first(str(event_id)):
            self.log.debug("dropping repeated event %s", event_id)
            return BoltResponse(status=200, body="")
        next()
        return response

    def _on_command(self, ack: Callable[..., None], body: dict[str, Any]) -> None:
        ack()
        self._submit(self._answer_command, dict(body))

    def _on_mention(self, ack: Callable[..., None], body: dict[str, Any], context: Mapping[str, Any]) -> None:
        ack()
        event = dict(body.get("event") or {})
        if event.get("user") and not event.get("bot_id"):
            self._submit(self._answer_message, event, context.get("bot_user_id"))

    def _on_message(self, ack: Callable[..., None], body: dict[str, Any], context: Mapping[str, Any]) -> None:
        ack()
        event = dict(body.get("event") or {})
        if event.get("subtype") not in _SPOKEN_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        channel_type = event.get("channel_type")
        if channel_type == "im":
            self._submit(self._answer_message, event, context.get("bot_user_id"))
            return
        if channel_type not in ("channel", "group"):
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            return  # a top-level channel message without a mention is not for the bot
        named = mentions(event.get("text") or "")
        if named:
            return  # mentions the bot (app_mention answers it) or someone else (not for the bot)
        self._submit(self._answer_followup, event, context.get("bot_user_id"))

    def _on_action(self, ack: Callable[..., None], body: dict[str, Any]) -> None:
        ack()
        self._submit(self._act, dict(body))

    def _submit(self, function: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            try:
                function(*args)
            except Exception:
                self.log.exception("Slack %s failed", function.__name__.strip("_"))

        future = self.pool.submit(run)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    # -- answering ---------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    def _message(self, user: SlackUser, text: str, channel: str, thread: str, **fields: Any) -> IncomingMessage:
        return IncomingMessage(
            text=text,
            platform=PLATFORM,
            channel=channel,
            thread_id=thread,
            user_id=user.id,
            user_name=user.name,
            tz=user.tz,
            can_manage=self.managers.allows(user),
            now=self.clock() if self.clock else None,
            **fields,
        )

    def _answer_command(self, body: dict[str, Any]) -> None:
        channel, response_url = body.get("channel_id", ""), body.get("response_url", "")
        user = self.users.get(body.get("user_id", ""))
        if body.get("user_name") and not user.known:
            user = SlackUser(user.id, name=body["user_name"], known=False)
        text = to_plain(body.get("text") or "")
        try:
            reply = self.conversation.handle(self._message(user, text, channel, ""))
        except Exception:
            self.log.exception("answering /threat failed")
            self._respond(response_url, SlackMessage("Sorry — that failed on our side; please try again."))
            return
        now = self._now()
        if reply.ephemeral or reply.kind in CONTENT_KINDS:
            card = self._card(reply, channel=channel, thread=reply.thread_key.thread, user=user.id, query=text)
            message = render_reply(
                reply,
                card=card,
                viewer=Viewer(now, _zone(user.tz)),
                shareable=not reply.ephemeral and reply.kind in CONTENT_KINDS,
            )
            self._respond(response_url, message, response_type="ephemeral")
            return
        card = self._card(reply, channel=channel, thread=reply.thread_key.thread, user=user.id, query=text)
        message = render_reply(reply, card=card, viewer=Viewer(now), asked_by=user.id, asked=f"{COMMAND} {text}")
        ts = self._post(channel, message)
        if ts is not None:
            self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, ts), now=self._now())
            return
        if len(message.blocks) < MAX_BLOCKS:  # the bot is not in this channel: say how to fix that
            message.blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": NOT_IN_CHANNEL}]})
        self._respond(response_url, message, response_type="in_channel")

    def _answer_followup(self, event: dict[str, Any], bot_user_id: str | None) -> None:
        """A message in a channel thread: answered when the bot has a conversation in that thread."""
        channel, thread = event["channel"], event["thread_ts"]
        if self.conversation.threads.load(ThreadKey(PLATFORM, channel, thread), self._now()) is None:
            return
        self._answer_message(event, bot_user_id)

    def _answer_message(self, event: dict[str, Any], bot_user_id: str | None) -> None:
        """A mention, a DM, or a follow-up in a known thread: answered once per message, in its thread."""
        channel, ts = event.get("channel", ""), event.get("ts", "")
        if not channel or not ts or not self.messages_seen.first(f"{channel}:{ts}"):
            return
        is_dm = event.get("channel_type") == "im"
        thread = event.get("thread_ts") or (DM_THREAD if is_dm else ts)
        user = self.users.get(event.get("user", ""))
        text = to_plain(event.get("text") or "", bot_user_id=bot_user_id)
        if not is_dm and thread != ts:
            self._start_from_feed_post(user, channel, thread)
        reply = self.conversation.handle(self._message(user, text, channel, thread))
        self._post_reply(reply, user, channel, thread, query=text, private_view=is_dm)

    def _start_from_feed_post(self, user: SlackUser, channel: str, thread: str) -> None:
        """A first question in a feed post's thread: the thread's context is that post's incident."""
        if self.conversation.threads.load(ThreadKey(PLATFORM, channel, thread), self._now()) is not None:
            return
        delivery = self.store.delivery_at(channel, thread)
        if delivery is None or not delivery.headline_id:
            return
        self.conversation.handle(
            self._message(user, f"show {delivery.headline_id}", channel, thread, command=_show(delivery.headline_id))
        )

    def _post_reply(
        self, reply: Reply, user: SlackUser, channel: str, thread: str, *, query: str, private_view: bool
    ) -> str | None:
        """Post a reply in ``thread`` (a DM's running conversation: top level). Returns the new message's ts."""
        now = self._now()
        viewer = Viewer(now, _zone(user.tz)) if private_view or reply.ephemeral else Viewer(now)
        card = self._card(reply, channel=channel, thread=thread, user=user.id, query=query)
        message = render_reply(reply, card=card, viewer=viewer)
        thread_ts = None if thread == DM_THREAD else thread
        if reply.ephemeral and not private_view:
            self._call("chat_postEphemeral", channel=channel, user=user.id, thread_ts=thread_ts, **message.kwargs())
            return None
        ts = self._post(channel, message, thread_ts=thread_ts)
        if ts is not None and thread == DM_THREAD:
            # A reply in a thread under this answer continues the DM's conversation from here.
            self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, ts), now=self._now())
        return ts

    # -- buttons -----------------------------------------------------------------------------------

    def _act(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        action_id = action.get("action_id", "")
        value = action.get("value") or ""
        if action_id == Action.ITEM_MENU:
            verb, _, value = ((action.get("selected_option") or {}).get("value") or "").partition("|")
            action_id = MENU_VERBS.get(verb, "")
        response_url = body.get("response_url", "")
        try:
            card_id, index = parse_value(value)
        except ValueError:
            self.log.warning("ignoring a button with value %r", value[:80])
            return
        card = self.store.card(card_id)
        if card is None:
            self._respond(
                response_url, SlackMessage("This message is too old for its buttons; ask again with /threat.")
            )
            return
        container = body.get("container") or {}
        posted = body.get("message") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or card.channel
        ephemeral = bool(container.get("is_ephemeral"))
        thread = (
            container.get("thread_ts") or posted.get("thread_ts") or container.get("message_ts") or posted.get("ts")
        )
        user = self.users.get((body.get("user") or {}).get("id", ""))
        stories = entries(card.reply)
        if action_id in (Action.DETAILS, Action.SHARE_ITEM, Action.VOTE_UP, Action.VOTE_DOWN) and not (
            0 <= index < len(stories)
        ):
            self.log.warning("button %s points past its card (%d of %d)", action_id, index, len(stories))
            return
        if action_id == Action.DETAILS:
            self._details(card, index, user, channel, thread, ephemeral, response_url)
        elif action_id == Action.SHARE:
            self._share(card, user, channel, response_url)
        elif action_id == Action.SHARE_ITEM:
            self._share_story(card, stories[index].record.id, user, channel, response_url)
        elif action_id in (Action.VOTE_UP, Action.VOTE_DOWN):
            vote = 1 if action_id == Action.VOTE_UP else -1
            record = stories[index].record
            self.store.record_vote(card, record.id, user.id, vote)
            thanks = f"Thanks — noted {'👍' if vote > 0 else '👎'} for “{escaped_clip(record.title, 200)}”."
            self._respond(response_url, SlackMessage(thanks), response_type="ephemeral", replace_original=False)
        elif action_id == Action.SUGGEST and 0 <= index < len(card.reply.suggestions):
            self._suggest(card, card.reply.suggestions[index], user, channel, thread, ephemeral, response_url)

    def _details(
        self,
        card: Card,
        index: int,
        user: SlackUser,
        channel: str,
        thread: str | None,
        ephemeral: bool,
        response_url: str,
    ) -> None:
        if ephemeral or not thread:
            message = render_reply(
                card.reply,
                card=card.id,
                viewer=Viewer(self._now(), _zone(user.tz)),
                shareable=card.reply.kind in CONTENT_KINDS and not card.reply.ephemeral,
                expanded=index,
            )
            self._respond(response_url, message, replace_original=True)
            return
        record_id = entries(card.reply)[index].record.id
        reply = self.conversation.handle(
            self._message(user, f"show {record_id}", channel, thread, command=_show(record_id))
        )
        self._post_reply(reply, user, channel, thread, query=f"show {record_id}", private_view=False)

    def _share(self, card: Card, user: SlackUser, channel: str, response_url: str) -> None:
        message = render_reply(card.reply, card=card.id, viewer=Viewer(self._now()), shared_by=user.id)
        ts = self._post(channel, message)
        if ts is None:
            self._respond(response_url, message, response_type="in_channel", replace_original=False)
            return
        self.conversation.rebind_thread(card.reply.thread_key, ThreadKey(PLATFORM, channel, ts), now=self._now())
        self._respond(response_url, None, delete_original=True)

    def _share_story(self, card: Card, record_id: str, user: SlackUser, channel: str, response_url: str) -> None:
        reply = self.conversation.handle(
            self._message(user, f"show {record_id}", channel, "", command=_show(record_id))
        )
        new_card = self._card(reply, channel=channel, thread=reply.thread_key.thread, user=user.id, query=card.query)
        message = render_reply(reply, card=new_card, viewer=Viewer(self._now()), shared_by=user.id)
        ts = self._post(channel, message)
        if ts is None:
            self._respond(response_url, message, response_type="in_channel", replace_original=False)
            return
        self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, ts), now=self._now())
        self._respond(
            response_url, SlackMessage("Shared to the channel."), response_type="ephemeral", replace_original=False
        )

    def _suggest(
        self,
        card: Card,
        suggestion: str,
        user: SlackUser,
        channel: str,
        thread: str | None,
        ephemeral: bool,
        response_url: str,
    ) -> None:
        if ephemeral or not thread:
            reply = self.conversation.handle(self._message(user, suggestion, channel, card.thread))
            new_card = self._card(reply, channel=channel, thread=card.thread, user=user.id, query=suggestion)
            message = render_reply(
                reply,
                card=new_card,
                viewer=Viewer(self._now(), _zone(user.tz)),
                shareable=not reply.ephemeral and reply.kind in CONTENT_KINDS,
            )
            self._respond(response_url, message, response_type="ephemeral", replace_original=False)
            return
        reply = self.conversation.handle(self._message(user, suggestion, channel, thread))
        self._post_reply(reply, user, channel, thread, query=suggestion, private_view=False)

    # -- Slack calls -------------------------------------------------------------------------------

    def _card(self, reply: Reply, *, channel: str, thread: str, user: str, query: str) -> str:
        """A card for the reply's buttons, when it has any."""
        if not (reply.items or reply.latest_before or reply.suggestions or reply.kind in CONTENT_KINDS):
            return "-"
        return self.store.save_card(reply, origin="reply", channel=channel, thread=thread, user_id=user, query=query)

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return getattr(self.client, method)(**{k: v for k, v in kwargs.items() if v is not None}).data
        except SlackApiError as error:
            code = (error.response.data or {}).get("error") if isinstance(error.response.data, dict) else None
            self.log.warning("Slack %s failed: %s", method.replace("_", "."), code or error.response.status_code)
            return {"ok": False, "error": code or "http_error"}
        except Exception as error:
            self.log.warning("Slack %s failed: %s", method.replace("_", "."), type(error).__name__)
            return None

    def _post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        """``chat.postMessage``; the new message's ts, or None when the bot cannot post there."""
        data = self._call(
            "chat_postMessage",
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message.kwargs(),
        )
        if data and data.get("ok"):
            return str(data.get("ts"))
        if data and data.get("error") not in _CANNOT_POST:
            self.log.warning("could not post to %s: %s", channel, data.get("error"))
        return None

    def _respond(
        self,
        url: str,
        message: SlackMessage | None,
        *,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
    ) -> bool:
        """Answer through a ``response_url`` (slash commands and buttons: up to 5 times in 30 minutes)."""
        if not url:
            return False
        try:
            response = webhook_client(url, logger=self.log).send(
                text=message.text if message else None,
                blocks=message.blocks if message and message.blocks else None,
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
            )
        except Exception as error:
            self.log.warning("response_url failed: %s", type(error).__name__)
            return False
        if response.status_code != 200:
            self.log.warning("response_url answered HTTP %s: %s", response.status_code, str(response.body)[:200])
            return False
        return True


def _show(record_id: str) -> Command:
    return Command(Verb.SHOW, target=record_id)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except Exception:
        return ZoneInfo("UTC")
