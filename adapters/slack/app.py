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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
    action_of,
    entries,
    parse_value,
    render_reply,
)
from adapters.slack.store import Card, SlackStore
from adapters.slack.users import ManagerPolicy, SlackUser, UserDirectory
from bot.commands import Command, Verb, parse_command
from bot.conversation import Conversation
from bot.messages import IncomingMessage, Reply, ThreadKey
from retrieval.database import Database

__all__ = ["BOT_EVENTS", "BOT_SCOPES", "COMMAND", "PLATFORM", "SlackAdapter"]

PLATFORM = "slack"
COMMAND = "/threat"
#: The events the app subscribes to (manifest ``settings.event_subscriptions.bot_events``).
BOT_EVENTS = ("app_mention", "message.channels", "message.groups", "message.im", "message.mpim")
#: Every bot scope the code needs (manifest ``oauth_config.scopes.bot``), and what for.
BOT_SCOPES = {
    "app_mentions:read": "app_mention events",
    "channels:history": "thread follow-ups in public channels (message.channels), delivery look-ups",
    "groups:history": "thread follow-ups in private channels (message.groups), delivery look-ups",
    "im:history": "direct messages (message.im)",
    "mpim:history": "mentions and thread follow-ups in group DMs (message.mpim)",
    "chat:write": "answers, feed posts, thread replies, edits",
    "chat:write.public": "feed posts and shared answers in public channels the bot was not invited to",
    "channels:join": "joining a public channel it answers or posts in, so its threads' replies reach it",
    "channels:read": "whether the bot is in a public channel (conversations.info)",
    "groups:read": "whether the bot is in a private channel (conversations.info)",
    "im:read": "whether a DM is the bot's own, before subscribing it (conversations.info)",
    "mpim:read": "whether the bot is in a group DM, before subscribing it (conversations.info)",
    "commands": "/threat",
    "reactions:write": "the ⏳ reaction on a question that takes more than a moment",
    "users:read": "the asker's time zone and admin flags (users.info)",
}
NOT_IN_CHANNEL = "I can't post in this channel myself yet: invite me (`/invite @threatbot`) so feed posts reach it."
#: Under an answer posted where the bot is not a member (it cannot see replies there).
NO_FOLLOW_UPS = "I'm not in this channel, so I won't see replies in this thread: invite me (`/invite @threatbot`) to follow up here."
#: Slack errors meaning "the bot is not in that conversation" — the only ones an invitation fixes.
MEMBERSHIP_ERRORS = frozenset({"not_in_channel", "channel_not_found"})
#: Slack errors meaning the message itself was refused: sent again as plain text so the asker still gets it.
PAYLOAD_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
#: Seconds an answer may take before the asker sees a "working" signal (⏳ reaction or a short note).
WORKING_AFTER = 1.5
WORKING_REACTION = "hourglass_flowing_sand"
WORKING_NOTE = "⏳ Working on it…"
#: A DM's top-level messages form one conversation under this thread id.
DM_THREAD = "im"
#: Message subtypes that are people talking; every other subtype (edits, joins, bots) is ignored.
_SPOKEN_SUBTYPES = {None, "thread_broadcast", "file_share"}
_ACTION_ID = re.compile(r"^tb_")
#: Slack errors meaning "the bot cannot post there": fall back to the response_url.
_CANNOT_POST = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_dm_bot"}
#: Conversations where no invitation makes sense: a DM between people (``D…``) or a group DM (``mpdm-…``).
_DM_NAMES = ("directmessage", "privategroup-dm")


@dataclass(frozen=True)
class Posted:
    """What ``chat.postMessage`` did: the new message's ts, or Slack's error code (``http_error``, ``network``)."""

    ts: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.ts is not None

    @property
    def membership(self) -> bool:
        """The bot is not in the conversation: an invitation (or joining) would fix it."""
        return self.error in MEMBERSHIP_ERRORS


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
        self.store = store or SlackStore(Database(conversation.database_path))
        self.users = UserDirectory(self.client)
        self.managers = managers or ManagerPolicy("admins")
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-answer")
        self.events_seen = SeenSet()
        self.messages_seen = SeenSet()
        #: Channels the bot is known to be in (joined or seen), so membership is checked once per channel.
        self._member_of: set[str] = set()
        self._teams: dict[str, str] = {}  # channel -> Slack team id (the workspace whose stack applies)
        self.working_after = WORKING_AFTER
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
        """Let the core open its lazily built parts before answers run in parallel (``Conversation.warm_up``)."""
        self.conversation.warm_up()

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
        event.setdefault("team", body.get("team_id") or "")  # the workspace: it selects the stack answers check
        if event.get("user") and not event.get("bot_id"):
            self._submit(self._answer_message, event, context.get("bot_user_id"))

    def _on_message(self, ack: Callable[..., None], body: dict[str, Any], context: Mapping[str, Any]) -> None:
        ack()
        event = dict(body.get("event") or {})
        event.setdefault("team", body.get("team_id") or "")  # the workspace: it selects the stack answers check
        if event.get("subtype") not in _SPOKEN_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        channel_type = event.get("channel_type")
        if channel_type == "im":
            self._submit(self._answer_message, event, context.get("bot_user_id"))
            return
        if channel_type not in ("channel", "group", "mpim"):
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
        workspace = fields.pop("workspace", "") or self._teams.get(channel, "")
        if workspace:
            self._teams[channel] = workspace  # buttons carry no team id in every payload shape; their channel does
        return IncomingMessage(
            workspace=workspace,
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
        in_dm = str(body.get("channel_name") or "") in _DM_NAMES or str(body.get("channel_name") or "").startswith(
            "mpdm-"
        )
        refusal = self._cannot_feed(channel, text, in_dm=in_dm)
        if refusal is not None:
            self._tell(response_url, channel, user.id, SlackMessage(refusal))
            return
        try:
            with self._working(response_url=response_url):
                reply = self.conversation.handle(
                    self._message(user, text, channel, "", workspace=body.get("team_id") or "")
                )
        except Exception:
            self.log.exception("answering /threat failed")
            self._tell(
                response_url, channel, user.id, SlackMessage("Sorry — that failed on our side; please try again.")
            )
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
            self._tell(response_url, channel, user.id, message)
            return
        card = self._card(reply, channel=channel, thread=reply.thread_key.thread, user=user.id, query=text)
        message = render_reply(reply, card=card, viewer=Viewer(now), asked_by=user.id, asked=f"{COMMAND} {text}")
        posted = self._post_in_channel(channel, message, in_dm=in_dm)
        if posted.ok:
            assert posted.ts is not None
            self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, posted.ts), now=self._now())
            return
        if posted.membership and not in_dm:
            _add_note(message, NOT_IN_CHANNEL)  # the bot is not in this channel: say how to fix that
        if not self._respond(response_url, message, response_type="in_channel"):
            note = f"I couldn't post that here (Slack said `{posted.error}`)."
            self._tell(response_url, channel, user.id, SlackMessage(note))

    def _cannot_feed(self, channel: str, text: str, *, in_dm: bool) -> str | None:
        """Before ``subscribe``/``resume``: can feed posts reach this channel? Why not, in words, or None.

        The adapter-side half of the subscribe-time check (the core decides who may subscribe): a public
        channel is joined (``channels:join``), a private one needs an invitation, and a DM between people
        or a group DM the bot is not in cannot take feed posts at all.
        """
        if parse_command(text).verb not in (Verb.SUBSCRIBE, Verb.RESUME):
            return None
        if self.ensure_member(channel) is not False:
            return None
        if in_dm:
            return "I can't post feeds into this conversation. Subscribe a channel instead, or DM me to ask questions."
        return (
            "I can't post in this channel yet: it is private (or I couldn't join it). Invite me first "
            "(`/invite @threatbot`), then run this again."
        )

    def _answer_followup(self, event: dict[str, Any], bot_user_id: str | None) -> None:
        """A message in a channel thread: answered when the bot has a conversation in that thread."""
        channel, thread = event["channel"], event["thread_ts"]
        if not self.conversation.knows_thread(ThreadKey(PLATFORM, channel, thread), now=self._now()):
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
        self._member_of.add(channel)  # Slack sends message events only from conversations the bot is in
        # A first question in a feed post's thread starts from that post's incident: the core knows feed posts.
        with self._working(channel=channel, ts=ts):
            reply = self.conversation.handle(
                self._message(user, text, channel, thread, workspace=event.get("team") or "")
            )
        self._post_reply(reply, user, channel, thread, query=text, private_view=is_dm)

    def _post_reply(
        self, reply: Reply, user: SlackUser, channel: str, thread: str, *, query: str, private_view: bool
    ) -> str | None:
        """Post a reply in ``thread`` (a DM's running conversation: top level). Returns the new message's ts."""
        now = self._now()
        viewer = Viewer(now, _zone(user.tz)) if private_view or reply.ephemeral else Viewer(now)
        card = self._card(reply, channel=channel, thread=thread, user=user.id, query=query)
        message = render_reply(reply, card=card, viewer=viewer)
        thread_ts = None if thread == DM_THREAD else thread
        # An ephemeral Slack would not show to them alone (e.g. they left) goes to the thread instead.
        if reply.ephemeral and not private_view and self._ephemeral(channel, user.id, message, thread_ts=thread_ts):
            return None
        posted = self._post(channel, message, thread_ts=thread_ts)
        if not posted.ok:
            note = f"I couldn't post my answer here (Slack said `{posted.error}`)."
            if posted.membership:
                note += " Invite me (`/invite @threatbot`) and ask again."
            if not self._ephemeral(channel, user.id, SlackMessage(note), thread_ts=thread_ts):
                self.log.error("could not answer %s in %s: %s, and could not tell them", user.id, channel, posted.error)
            return None
        if thread == DM_THREAD:
            # A reply in a thread under this answer continues the DM's conversation from here.
            assert posted.ts is not None
            self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, posted.ts), now=self._now())
        return posted.ts

    # -- buttons -----------------------------------------------------------------------------------

    def _act(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        action_id: Action | str | None = action_of(action.get("action_id", ""))
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
            self._tell(
                response_url,
                (body.get("channel") or {}).get("id") or "",
                (body.get("user") or {}).get("id", ""),
                SlackMessage("This message is too old for its buttons; ask again with /threat."),
            )
            return
        container = body.get("container") or {}
        posted = body.get("message") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or card.channel
        self._teams.setdefault(channel, str((body.get("team") or {}).get("id") or ""))
        ephemeral = bool(container.get("is_ephemeral"))
        thread = (
            container.get("thread_ts") or posted.get("thread_ts") or container.get("message_ts") or posted.get("ts")
        )
        user = self.users.get((body.get("user") or {}).get("id", ""))
        in_dm = str((body.get("channel") or {}).get("name") or "") in _DM_NAMES or str(
            (body.get("channel") or {}).get("name") or ""
        ).startswith("mpdm-")
        stories = entries(card.reply)
        if action_id in (Action.DETAILS, Action.SHARE_ITEM, Action.VOTE_UP, Action.VOTE_DOWN) and not (
            0 <= index < len(stories)
        ):
            self.log.warning("button %s points past its card (%d of %d)", action_id, index, len(stories))
            return
        if action_id == Action.DETAILS:
            self._details(card, index, user, channel, thread, ephemeral, response_url)
        elif action_id == Action.SHARE:
            self._share(card, user, channel, response_url, in_dm=in_dm)
        elif action_id == Action.SHARE_ITEM:
            self._share_story(card, stories[index].record.id, user, channel, response_url, in_dm=in_dm)
        elif action_id in (Action.VOTE_UP, Action.VOTE_DOWN):
            vote = 1 if action_id == Action.VOTE_UP else -1
            record = stories[index].record
            self.store.record_vote(card, record.id, user.id, vote)
            thanks = f"Thanks — noted {'👍' if vote > 0 else '👎'} for “{escaped_clip(record.title, 200)}”."
            self._tell(response_url, channel, user.id, SlackMessage(thanks), replace_original=False)
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

    def _share(self, card: Card, user: SlackUser, channel: str, response_url: str, *, in_dm: bool = False) -> None:
        message = render_reply(card.reply, card=card.id, viewer=Viewer(self._now()), shared_by=user.id)
        posted = self._post_in_channel(channel, message, in_dm=in_dm)
        if not posted.ok:
            self._shared_through_response_url(response_url, message, posted, in_dm=in_dm, channel=channel, user=user.id)
            return
        assert posted.ts is not None
        self.conversation.rebind_thread(card.reply.thread_key, ThreadKey(PLATFORM, channel, posted.ts), now=self._now())
        self._respond(response_url, None, delete_original=True)

    def _share_story(
        self, card: Card, record_id: str, user: SlackUser, channel: str, response_url: str, *, in_dm: bool = False
    ) -> None:
        reply = self.conversation.handle(
            self._message(user, f"show {record_id}", channel, "", command=_show(record_id))
        )
        new_card = self._card(reply, channel=channel, thread=reply.thread_key.thread, user=user.id, query=card.query)
        message = render_reply(reply, card=new_card, viewer=Viewer(self._now()), shared_by=user.id)
        posted = self._post_in_channel(channel, message, in_dm=in_dm)
        if not posted.ok:
            self._shared_through_response_url(response_url, message, posted, in_dm=in_dm, channel=channel, user=user.id)
            return
        assert posted.ts is not None
        self.conversation.rebind_thread(reply.thread_key, ThreadKey(PLATFORM, channel, posted.ts), now=self._now())
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
            self._tell(response_url, channel, user.id, message, replace_original=False)
            return
        reply = self.conversation.handle(self._message(user, suggestion, channel, thread))
        self._post_reply(reply, user, channel, thread, query=suggestion, private_view=False)

    def _shared_through_response_url(
        self, response_url: str, message: SlackMessage, posted: Posted, *, in_dm: bool, channel: str, user: str
    ) -> None:
        """The bot cannot post there itself: the response_url posts it on the sharer's behalf."""
        if posted.membership and not in_dm:
            _add_note(message, NOT_IN_CHANNEL)
        if not self._respond(response_url, message, response_type="in_channel", replace_original=False):
            self._tell(
                response_url,
                channel,
                user,
                SlackMessage(f"I couldn't share that here (Slack said `{posted.error}`)."),
                replace_original=False,
            )

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

    def _post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None) -> Posted:
        """``chat.postMessage``. A message Slack refuses as such (blocks, size) goes again as plain text."""
        data = self._call(
            "chat_postMessage",
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message.kwargs(),
        )
        if data and data.get("error") in PAYLOAD_ERRORS and message.blocks:
            self.log.error("Slack refused a message to %s as %s; sending it as plain text", channel, data["error"])
            data = self._call(
                "chat_postMessage",
                channel=channel,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **_plain(message).kwargs(),
            )
        if data and data.get("ok"):
            return Posted(str(data.get("ts")))
        error = str(data.get("error")) if data else "network"
        if error not in _CANNOT_POST:
            self.log.warning("could not post to %s: %s", channel, error)
        return Posted(None, error)

    def _post_in_channel(self, channel: str, message: SlackMessage, *, in_dm: bool = False) -> Posted:
        """A top-level answer for the whole channel, whose thread should take follow-ups.

        Slack sends the bot a thread's replies only from conversations it is in; ``chat:write.public``
        lets it post in a public channel it has not joined, where follow-ups would then go unheard.
        So it joins public channels first (``channels:join``); where it cannot, the answer says so.
        """
        member = in_dm or self.ensure_member(channel)
        if member is False and not _has_note(message, NO_FOLLOW_UPS):
            _add_note(message, NO_FOLLOW_UPS)
        return self._post(channel, message)

    def ensure_member(self, channel: str) -> bool | None:
        """Whether the bot is in ``channel`` after trying to join it: True, False, or None (Slack did not say)."""
        if channel in self._member_of:
            return True
        info = self._call("conversations_info", channel=channel)
        if info is None or not info.get("ok"):
            return None if info is None or info.get("error") not in MEMBERSHIP_ERRORS else False
        conv = info.get("channel") or {}
        if conv.get("is_member") or conv.get("is_im"):
            self._member_of.add(channel)
            return True
        if conv.get("is_private") or conv.get("is_archived"):
            return False
        joined = self._call("conversations_join", channel=channel)
        if joined and joined.get("ok"):
            self.log.info("joined %s so replies in the threads of answers there reach the bot", channel)
            self._member_of.add(channel)
            return True
        return False

    def _tell(self, response_url: str, channel: str, user: str, message: SlackMessage, **options: Any) -> bool:
        """Show ``message`` to ``user`` alone: through the response_url (5 uses in 30 minutes), else
        ``chat.postEphemeral``. Logged as an error when neither reaches them."""
        if self._respond(response_url, message, response_type="ephemeral", **options):
            return True
        if self._ephemeral(channel, user, message):
            return True
        self.log.error(
            "could not tell %s in %s anything: response_url and chat.postEphemeral both failed", user, channel
        )
        return False

    def _ephemeral(self, channel: str, user: str, message: SlackMessage, *, thread_ts: str | None = None) -> bool:
        """``chat.postEphemeral``; plain text again if the blocks were refused. True when Slack took it."""
        data = self._call("chat_postEphemeral", channel=channel, user=user, thread_ts=thread_ts, **message.kwargs())
        if data and data.get("error") in PAYLOAD_ERRORS and message.blocks:
            self.log.error("Slack refused an ephemeral message as %s; sending it as plain text", data["error"])
            data = self._call(
                "chat_postEphemeral", channel=channel, user=user, thread_ts=thread_ts, **_plain(message).kwargs()
            )
        return bool(data and data.get("ok"))

    @contextmanager
    def _working(self, *, channel: str = "", ts: str = "", response_url: str = "") -> Iterator[None]:
        """A visible "working" signal when an answer takes longer than a moment.

        On a message: a ⏳ reaction, removed when the answer is out. On a slash command: a short
        ephemeral note through its response_url (one of its five uses).
        """
        shown = threading.Event()

        def show() -> None:
            if channel and ts:
                data = self._call("reactions_add", channel=channel, timestamp=ts, name=WORKING_REACTION)
                if data and data.get("ok"):
                    shown.set()
            elif response_url:
                self._respond(response_url, SlackMessage(WORKING_NOTE), response_type="ephemeral")

        timer = threading.Timer(self.working_after, show)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join(5)  # a signal being shown right now finishes first
            if shown.is_set():
                self._call("reactions_remove", channel=channel, timestamp=ts, name=WORKING_REACTION)

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
        if response.status_code == 400 and message is not None and message.blocks:
            self.log.error("response_url refused the blocks (%s); sending plain text", str(response.body)[:200])
            return self._respond(
                url,
                _plain(message),
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
            )
        if response.status_code != 200:
            self.log.warning("response_url answered HTTP %s: %s", response.status_code, str(response.body)[:200])
            return False
        return True


def _plain(message: SlackMessage) -> SlackMessage:
    """The message as text only: what is left when Slack refuses its blocks."""
    return SlackMessage(escaped_clip(message.text or "(no text)", 3000))


def _add_note(message: SlackMessage, note: str) -> None:
    if len(message.blocks) < MAX_BLOCKS:
        message.blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    else:
        message.text = f"{message.text}\n{note}"


def _has_note(message: SlackMessage, note: str) -> bool:
    return any(e.get("text") == note for b in message.blocks for e in b.get("elements", []) if isinstance(e, dict))


def _show(record_id: str) -> Command:
    return Command(Verb.SHOW, target=record_id)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except Exception:
        return ZoneInfo("UTC")
