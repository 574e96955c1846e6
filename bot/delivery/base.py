"""The contract between the deliverer and a platform: what a delivery target is and what it is given.

Shaped like httpx's transports: one small base class, :class:`DeliveryTarget`, with three verbs
(``post``, ``update``, ``post_digest``); one module per implementation (console, webhook, memory for
tests; Slack and Discord live with their adapters). The deliverer owns durability, retries, rate
limiting and ordering; a target only renders and sends.

Payloads are platform-neutral and carry everything needed to render without asking the store:
the headline record, every member of the incident's cluster (its sources), the subscriptions that
matched, and for updates exactly what changed.

**Platform message ids.** ``post`` and ``post_digest`` return a :class:`PostRef` naming the message
the platform created — Slack: ``message_id`` is the message ``ts`` and ``channel`` the conversation id
(``C0123ABCD``); Discord: ``message_id`` the snowflake message id and ``channel`` the channel id. The
deliverer stores the ref and hands it back to ``update`` when the incident changes, so a target
can reply in the thread (Slack ``thread_ts``; Discord a reply or a thread) or edit the message instead
of posting anew. ``update`` returns the ref later updates should use — usually the one it was given.

**Idempotency.** Delivery is at-least-once: after a crash between a send and its commit the same
payload is sent again with the same :attr:`IncidentPost.key`. Targets must make the repeat
harmless — pass the key where the platform dedupes (an ``Idempotency-Key`` header, Discord's
``nonce`` with ``enforce_nonce``), or look for it before posting (Slack message ``metadata``).

**Errors.** Raise :class:`RateLimited` when the platform says "slow down" (with its Retry-After),
:class:`DeliveryRejected` when retrying cannot help (unknown channel, bad token, payload refused),
and :class:`DeliveryError` for anything worth retrying. Any other exception is treated as retryable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from bot.errors import ThreatbotError
from bot.incidents import IncidentFacts, incident_facts, other_reports
from retrieval.records import ThreatRecord

__all__ = [
    "ChannelNotice",
    "ChannelUnavailable",
    "DeliveryError",
    "DeliveryRejected",
    "DeliveryTarget",
    "Digest",
    "FieldChange",
    "IncidentPost",
    "IncidentUpdate",
    "PostRef",
    "RateHint",
    "RateLimited",
]


# -- errors ----------------------------------------------------------------------------------------


class DeliveryError(ThreatbotError):
    """Sending failed in a way that may succeed later (network, 5xx): the deliverer retries with back-off."""


class RateLimited(DeliveryError):
    """The platform asked us to wait; ``retry_after`` seconds (None: use the target's rate hint)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryRejected(DeliveryError):
    """The platform refused the message for good (no such channel, forbidden, invalid payload): not retried."""


class ChannelUnavailable(DeliveryRejected):
    """The channel cannot receive at all: the bot was removed, the channel archived or deleted, a permission
    is missing, the webhook deleted. Unlike a refused payload, this says something about the *channel*:
    the deliverer counts consecutive ones per channel and disables its subscriptions with ``reason``.

    ``reason`` is a short, user-facing phrase ("the bot is not in the channel", "Missing Permissions:
    Send Messages"); ``code`` is the platform's own error code (``not_in_channel``, ``50013``) for logs.
    """

    def __init__(self, message: str, *, reason: str, code: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


# -- payloads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostRef:
    """Where a message landed on the platform; stored by the deliverer and handed back for updates."""

    platform: str
    channel: str
    #: The platform's own id for the message: Slack ``ts``, Discord message id, a webhook receiver's id.
    message_id: str
    #: Where replies go when it differs from the message (a Discord thread id); None: reply to the message.
    thread_id: str | None = None
    #: A permalink, when the platform gives one.
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PostRef:
        return cls(
            platform=str(data["platform"]),
            channel=str(data["channel"]),
            message_id=str(data["message_id"]),
            thread_id=data.get("thread_id"),
            url=data.get("url"),
        )


@dataclass(frozen=True)
class IncidentPost:
    """A new incident for one channel: the top-level message."""

    #: The idempotency key: the same incident for the same channel always has the same key.
    key: str
    cluster_id: str
    #: The record that best matched the channel's subscription(s): the headline.
    record: ThreatRecord
    #: Every record of the incident's cluster (the headline included), oldest first: its sources.
    members: tuple[ThreatRecord, ...]
    #: The standing queries of this channel that matched.
    subscriptions: tuple[str, ...] = ()
    #: The subscription's platform, for targets that serve several (a webhook bridge).
    platform: str = ""
    #: Ids of the members that are news to this channel (matched its subscriptions); the rest is context.
    matched: tuple[str, ...] = ()
    #: "⚠ affects your stack: …" when the incident touches the channel's workspace stack. The headline's
    #: summary already leads with it, so every platform's rendering shows it without knowing about stacks.
    stack: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.source for m in self.members if m.source))

    @property
    def facts(self) -> IncidentFacts:
        """The incident's severity and exploitation, by the one rule every platform shows (``bot.incidents``)."""
        return incident_facts((self.record, *self.members))

    @property
    def others(self) -> list[ThreatRecord]:
        """The incident's other reports (its members but the headline)."""
        return other_reports(self.record, self.members)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cluster_id": self.cluster_id,
            "record": self.record.to_json_dict(),
            "members": [m.to_json_dict() for m in self.members],
            "sources": list(self.sources),
            "subscriptions": list(self.subscriptions),
            "platform": self.platform,
            "matched": list(self.matched),
            "stack": self.stack,
        }


@dataclass(frozen=True)
class FieldChange:
    """One thing about an incident that changed: ``severity`` high→critical, ``exploited`` False→True, …"""

    field: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class IncidentUpdate:
    """Something new about an incident already posted to the channel: a reply or an edit, never a new post."""

    key: str
    cluster_id: str
    #: The record that joined the cluster or whose facts changed.
    record: ThreatRecord
    members: tuple[ThreatRecord, ...]
    changes: tuple[FieldChange, ...] = ()
    #: True when ``record`` is a new source for the incident (e.g. the KEV entry for a CVE in the news).
    new_source: bool = False
    platform: str = ""

    @property
    def facts(self) -> IncidentFacts:
        """The incident's severity and exploitation now, by the rule in ``bot.incidents``."""
        return incident_facts((self.record, *self.members))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cluster_id": self.cluster_id,
            "record": self.record.to_json_dict(),
            "members": [m.to_json_dict() for m in self.members],
            "changes": [c.to_json() for c in self.changes],
            "new_source": self.new_source,
            "platform": self.platform,
        }


@dataclass(frozen=True)
class Digest:
    """Many new incidents for one channel from one poll, sent as one message instead of a flood."""

    key: str
    items: tuple[IncidentPost, ...]
    subscriptions: tuple[str, ...] = ()
    platform: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "items": [item.to_json() for item in self.items],
            "subscriptions": list(self.subscriptions),
            "platform": self.platform,
        }


@dataclass(frozen=True)
class ChannelNotice:
    """A channel's subscriptions were disabled: what its subscribers are told, once (``bot.health``)."""

    platform: str
    channel: str
    reason: str
    failures: int
    #: (subscription id, query, created_by) of every subscription in the channel.
    subscriptions: tuple[tuple[str, str, str], ...] = ()

    @property
    def subscribers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(who for _, _, who in self.subscriptions if who))

    def text(self, channel_label: str | None = None) -> str:
        """The notice in plain words; ``channel_label`` is how the platform names the channel (``<#C1>``)."""
        where = channel_label or self.channel
        queries = ", ".join(f"“{query}”" for _, query, _ in self.subscriptions) or "its subscriptions"
        return (
            f"I've stopped posting {queries} to {where}: {self.reason} "
            f"({self.failures} failed attempts in a row). Fix that, then say `resume` there "
            f"(or run `threatbot resume --platform {self.platform} --channel {self.channel}`); "
            "what was waiting will be posted then."
        )


# -- the target --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateHint:
    """How fast a platform lets us post to one channel; the deliverer spaces messages by this (configurable)."""

    messages_per_second: float = 1.0

    @property
    def interval(self) -> float:
        return 0.0 if self.messages_per_second <= 0 else 1.0 / self.messages_per_second


class DeliveryTarget:
    """Sends delivery payloads to one platform. Subclass it and implement the three verbs.

    Class attributes describe the platform for operators and the deliverer:

    * ``platform`` — the name subscriptions use (``"slack"``, ``"discord"``, ``"webhook"``, …);
    * ``channel_format`` — what a channel id looks like there, shown in help and errors;
    * ``rate_hint`` — messages per second per channel the platform tolerates (Slack: about 1).

    ``platforms`` narrows or widens which subscriptions' platforms this target serves: by default only
    its own; ``("*",)`` serves every platform that has no target of its own (a console for trying
    things locally, a webhook bridging to another system).
    """

    platform: ClassVar[str] = ""
    channel_format: ClassVar[str] = "any string"
    rate_hint: ClassVar[RateHint] = RateHint(1.0)

    def __init__(self, *, platforms: tuple[str, ...] = ()) -> None:
        self.platforms = tuple(platforms)

    def handles(self, platform: str) -> bool:
        served = self.platforms or (self.platform,)
        return platform in served or "*" in served

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        """Post a new incident as a top-level message; return where it landed."""
        raise NotImplementedError

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        """Tell the channel about a change to the incident posted at ``ref`` (thread reply or edit)."""
        raise NotImplementedError

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        """Post several new incidents as one message; updates to any of them go to this message."""
        raise NotImplementedError

    def notify_unavailable(self, channel: str, notice: ChannelNotice) -> bool:
        """Tell the channel's subscribers its posts were disabled (e.g. a DM); False where the platform cannot."""
        return False

    def close(self) -> None:
        """Release connections; the deliverer calls it on shutdown."""
