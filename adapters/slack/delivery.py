"""Feed posts in Slack: the outbox's :class:`~bot.delivery.base.DeliveryTarget` for ``platform = "slack"``.

* ``post`` — a new incident as a top-level message in the subscribed channel (Block Kit from
  ``adapters.slack.render``), its delivery key in the message's ``metadata``.
* ``update`` — a reply in the incident's thread saying what changed; when a headline fact changed
  (severity, exploitation) the original post is also edited (``chat.update``) to show the incident
  as it is now. Updates to a digest go to the digest's thread.
* ``post_digest`` — many new incidents as one message, a line each.

Pacing is the deliverer's (``rate_hint``: one message per second per channel). Slack's HTTP 429 is
honoured: a short ``Retry-After`` is waited out in place by slack_sdk's retry handler, a long one
becomes :class:`~bot.delivery.base.RateLimited` with Slack's delay so the deliverer reschedules.
Refusals that retrying cannot fix (unknown channel, not allowed, bad token, invalid blocks) are
:class:`~bot.delivery.base.DeliveryRejected`.

Channels that cannot receive (the bot is not in a private channel, the channel is archived or
gone, posting is restricted) raise :class:`~bot.delivery.base.ChannelUnavailable` with a reason a
person can act on; the deliverer counts them and disables the channel's subscriptions after a few
(``bot.health``). :meth:`SlackTarget.notify_unavailable` then DMs whoever subscribed.

Membership: Slack sends the bot a thread's replies only from conversations it is in, and reading a
channel's history needs membership too, while ``chat:write.public`` lets it post in public channels
it never joined. So before its first post in a channel the target joins it when it is public
(``channels:join``); it is a member from then on, so questions in a feed post's thread reach it.

Idempotency: the ledger (``adapters.slack.store``) remembers each delivery key's message. A repeat
of a sent key returns the first message; a key left ``sending`` by a process that died mid-send is
looked up in the channel's recent messages (their ``metadata``) before anything is posted again.
If that lookup answers ``not_in_channel`` (a channel posted to through ``chat:write.public`` before
joining), the target joins and looks again; only when it cannot join does it post again (at least
once, rather than never) and log that the message may repeat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.client import guarded_logger, retry_after, web_client
from adapters.slack.render import (
    SlackMessage,
    digest_reply,
    headline_changed,
    incident_reply,
    render_digest,
    render_health_notice,
    render_incident,
    render_update,
    update_reply,
)
from adapters.slack.store import SlackStore
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
from bot.outbox import crash_point
from retrieval.database import Database

__all__ = ["CHANNEL_ERRORS", "METADATA_EVENT", "SlackTarget"]

_MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

METADATA_EVENT = "threatbot_delivery"
#: Errors after which the same message can never succeed.
_FINAL_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "restricted_action",
    "restricted_action_read_only_channel",
    "restricted_action_thread_only_channel",
    "restricted_action_non_threadable_channel",
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "too_many_attachments",
    "invalid_metadata_format",
    "invalid_metadata_schema",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "ekm_access_denied",
    "team_access_not_granted",
}
#: Errors that say the *channel* cannot receive (not this message): counted toward disabling it, with a reason.
CHANNEL_ERRORS = {
    "not_in_channel": "the bot is not in the channel: invite it (`/invite @threatbot`)",
    "channel_not_found": "the channel is gone, or private and the bot is not in it: invite it (`/invite @threatbot`)",
    "is_archived": "the channel is archived",
    "restricted_action": "the workspace does not let the bot post there",
    "restricted_action_read_only_channel": "the channel is read-only",
    "restricted_action_thread_only_channel": "the channel takes thread replies only",
    "restricted_action_non_threadable_channel": "the channel does not allow threads",
    "team_access_not_granted": "the channel's workspace has not granted the app access",
    "ekm_access_denied": "the workspace's encryption keys deny access",
}
#: How far back (seconds before the interrupted attempt) to look for an already-posted message.
_LOOKBACK = 120.0


class SlackTarget(DeliveryTarget):
    """Posts incidents, updates and digests to Slack channels (ids like ``C0123ABCD``)."""

    platform = "slack"
    channel_format = "a Slack channel id such as C0123ABCD (channel details → copy channel ID), not #name"
    rate_hint = RateHint(1.0)

    def __init__(
        self,
        client: WebClient,
        store: SlackStore,
        *,
        owned_db: Database | None = None,
        clock: Callable[[], datetime] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.store = store
        self._owned_db = owned_db
        self.clock = clock or (lambda: datetime.now(UTC))
        self.log = logger or logging.getLogger(__name__)
        #: Channels the bot is known to be in, or cannot join (checked once per process).
        self._membership: dict[str, bool] = {}

    @classmethod
    def open(cls, bot_token: str, database_path, *, api_url: str | None = None) -> SlackTarget:
        """A target with its own connection to the database at ``database_path`` (``settings.database_path``)."""
        log = guarded_logger("adapters.slack.delivery", [bot_token])
        client = web_client(bot_token, base_url=api_url, logger=guarded_logger("adapters.slack.api", [bot_token]))
        db = Database(database_path)
        return cls(client, SlackStore(db), owned_db=db, logger=log)

    def close(self) -> None:
        if self._owned_db is not None:
            self._owned_db.close()
            self._owned_db = None

    # -- the three verbs ----------------------------------------------------------------------------

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        def prepare() -> tuple[SlackMessage, str]:
            reply = incident_reply(post, channel)
            card = self.store.save_card(
                reply, origin="feed", channel=channel, thread="", query=_queries(post.subscriptions)
            )
            return render_incident(post, card=card, now=self.clock()), card

        ts = self._deliver(post.key, "post", channel, prepare, headline_id=post.record.id)
        return PostRef(self.platform, channel, ts)

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        def prepare() -> tuple[SlackMessage, str]:
            reply = digest_reply(digest, channel)
            card = self.store.save_card(
                reply, origin="feed", channel=channel, thread="", query=_queries(digest.subscriptions)
            )
            return render_digest(digest, card=card, now=self.clock()), card

        ts = self._deliver(digest.key, "digest", channel, prepare, headline_id=None)
        return PostRef(self.platform, channel, ts)

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        parent_ts = ref.thread_id or ref.message_id

        def prepare() -> tuple[SlackMessage, str]:
            reply = update_reply(update, channel, parent_ts)
            card = self.store.save_card(reply, origin="feed", channel=channel, thread=parent_ts)
            return render_update(update, card=card, now=self.clock()), card

        self._deliver(update.key, "update", channel, prepare, headline_id=update.record.id, thread_ts=parent_ts)
        if headline_changed(update):
            self._edit_post(channel, ref, update)
        return ref

    # -- sending ------------------------------------------------------------------------------------

    def _deliver(
        self,
        key: str,
        kind: str,
        channel: str,
        prepare: Callable[[], tuple[SlackMessage, str]],
        *,
        headline_id: str | None,
        thread_ts: str | None = None,
    ) -> str:
        """Post once per key: the ts of the message carrying ``key`` (found, or newly posted)."""
        known = self.store.delivery(key)
        if known is not None and known.state == "sent" and known.ts:
            return known.ts
        if known is not None and known.state == "sending":
            found = self._find_posted(channel, key, since=known.started_at - _LOOKBACK, thread_ts=thread_ts)
            if found is not None:
                self.store.finish_delivery(key, found)
                return found
        message, card = prepare()
        self.ensure_member(channel)
        self.store.begin_delivery(key, kind=kind, channel=channel, headline_id=headline_id, card_id=card)
        try:
            data = self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
                unfurl_links=False,
                unfurl_media=False,
                **message.kwargs(),
            ).data
        except SlackApiError as error:
            # Slack answered: nothing was posted, so a later attempt need not look for it.
            self.store.abandon_delivery(key)
            raise _delivery_error(error, f"chat.postMessage to {channel}") from None
        except (SlackClientError, OSError) as error:  # no answer: it may or may not have been posted
            raise DeliveryError(f"chat.postMessage to {channel}: {type(error).__name__}") from None
        crash_point("slack.after_post")  # Slack has the message; the ledger does not know yet
        ts = str(data.get("ts") or "") if isinstance(data, dict) else ""
        if not ts:
            self.store.abandon_delivery(key)
            raise DeliveryError(f"chat.postMessage to {channel} answered without a ts")
        self.store.finish_delivery(key, ts)
        return ts

    def ensure_member(self, channel: str) -> bool:
        """Join ``channel`` if it is public and the bot is not in it; whether the bot is in it now.

        Never raises: posting may still work without it (``chat:write.public``), and the post's own
        error is what counts.
        """
        known = self._membership.get(channel)
        if known is not None:
            return known
        try:
            info = self.client.conversations_info(channel=channel).get("channel") or {}
            member = bool(info.get("is_member") or info.get("is_im") or info.get("is_mpim"))
            if not member and not info.get("is_private") and not info.get("is_archived"):
                self.client.conversations_join(channel=channel)
                self.log.info("joined %s so replies in its feed posts' threads reach the bot", channel)
                member = True
        except SlackApiError as error:
            self.log.info("not joining %s: %s", channel, _error_code(error))
            member = False
        except (SlackClientError, OSError) as error:
            self.log.info("not joining %s: %s", channel, type(error).__name__)
            return False  # not remembered: a network blip says nothing about the channel
        self._membership[channel] = member
        return member

    def _find_posted(self, channel: str, key: str, *, since: float, thread_ts: str | None) -> str | None:
        """The ts of a message in ``channel`` (or the thread) carrying delivery ``key``, posted after ``since``.

        Reading needs membership; ``chat:write.public`` posts do not. A channel the bot cannot read is
        joined first; one it cannot join either gets the message again (at least once, never lost).
        """
        try:
            return self._look_for(channel, key, since=since, thread_ts=thread_ts)
        except SlackApiError as error:
            if _error_code(error) not in ("not_in_channel", "channel_not_found"):
                raise _delivery_error(error, f"looking for delivery {key} in {channel}") from None
        self._membership.pop(channel, None)
        if self.ensure_member(channel):
            try:
                return self._look_for(channel, key, since=since, thread_ts=thread_ts)
            except SlackApiError as error:
                raise _delivery_error(error, f"looking for delivery {key} in {channel}") from None
        self.log.warning(
            "cannot read %s to check whether delivery %s was posted before a crash; posting it (it may repeat)",
            channel,
            key,
        )
        return None

    def _look_for(self, channel: str, key: str, *, since: float, thread_ts: str | None) -> str | None:
        try:
            if thread_ts:
                response = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=f"{since:.6f}", include_all_metadata=True, limit=200
                )
            else:
                response = self.client.conversations_history(
                    channel=channel, oldest=f"{since:.6f}", include_all_metadata=True, limit=200
                )
        except SlackApiError:
            raise
        except (SlackClientError, OSError) as error:
            raise DeliveryError(f"looking for delivery {key} in {channel}: {type(error).__name__}") from None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == METADATA_EVENT and (metadata.get("event_payload") or {}).get("key") == key:
                return str(message.get("ts"))
        return None

    def notify_unavailable(self, channel: str, notice: ChannelNotice) -> bool:
        """DM each subscriber (a Slack member id) once: which subscriptions stopped, why, and how to resume."""
        message = render_health_notice(notice)
        told = False
        for user in notice.subscribers:
            if not _MEMBER_ID.match(user):
                continue  # subscribed from the CLI ("cli:alice"): the log and `threatbot subscriptions` say it
            try:
                self.client.chat_postMessage(channel=user, unfurl_links=False, **message.kwargs())
                told = True
            except SlackApiError as error:
                self.log.warning("could not DM %s about %s: %s", user, channel, _error_code(error))
            except (SlackClientError, OSError) as error:
                self.log.warning("could not DM %s about %s: %s", user, channel, type(error).__name__)
        return told

    def _edit_post(self, channel: str, ref: PostRef, update: IncidentUpdate) -> None:
        """Re-render the original post with the incident as it is now (``chat.update``)."""
        original = self.store.delivery_at(channel, ref.message_id)
        if original is None or original.kind != "post":
            return  # a digest (or a post from before this ledger): the thread reply says it
        headline = next((m for m in update.members if m.id == original.headline_id), None) or update.record
        # The card is gone once past its lifetime; the post is still edited, just without a "more" query.
        card = self.store.card(original.card_id) if original.card_id else None
        queries = card.query if card is not None else ""
        post = IncidentPost(
            key=original.key,
            cluster_id=update.cluster_id,
            record=headline,
            members=update.members,
            subscriptions=tuple(q for q in queries.split("\n") if q),
            platform=self.platform,
        )
        message = render_incident(post, card=original.card_id or "-", now=self.clock())
        try:
            self.client.chat_update(channel=channel, ts=ref.message_id, **message.kwargs())
        except SlackApiError as error:
            # The thread reply is out; an edit that fails is logged, not retried (it would repost the reply).
            self.log.warning("chat.update of %s in %s failed: %s", ref.message_id, channel, _error_code(error))
        except (SlackClientError, OSError) as error:
            self.log.warning("chat.update of %s in %s failed: %s", ref.message_id, channel, type(error).__name__)


def _queries(queries: tuple[str, ...]) -> str:
    return "\n".join(queries)


def _error_code(error: SlackApiError) -> str:
    data: Any = getattr(error.response, "data", None)
    if isinstance(data, Mapping) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(error.response, 'status_code', '?')}"


def _delivery_error(error: SlackApiError, what: str) -> DeliveryError:
    status = getattr(error.response, "status_code", None)
    code = _error_code(error)
    if status == 429 or code == "ratelimited":
        wait = retry_after(getattr(error.response, "headers", None))
        return RateLimited(f"{what}: rate limited", wait)
    if code in CHANNEL_ERRORS:
        return ChannelUnavailable(f"{what}: {code}", reason=CHANNEL_ERRORS[code], code=code)
    if code in _FINAL_ERRORS or (status is not None and 400 <= status < 500 and status != 408):
        return DeliveryRejected(f"{what}: {code}")
    return DeliveryError(f"{what}: {code}")
