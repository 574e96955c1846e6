"""The contracts between the conversation core and the feed side (subscriptions, sources).

The chat commands ``subscribe``, ``unsubscribe``, ``subscriptions`` and ``sources`` are
answered by the conversation core but kept by the delivery side. These protocols are the seam:
the core depends on them, ``bot.subscriptions`` and ``bot.sources`` implement them, and tests
can pass in-memory versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Subscription:
    """A channel's standing query: new records that match it are posted there."""

    id: str
    platform: str
    channel: str
    query: str
    created_by: str
    created_at: datetime
    #: The channel's delivery health (``bot.health``): "ok", "failing" or "disabled".
    status: str = "ok"
    #: Why it is failing or disabled ("the bot is not in the channel (3 failures in a row)").
    problem: str | None = None


@dataclass(frozen=True)
class SourceStatus:
    """A feed source and its health, as ``sources`` shows it."""

    name: str
    url: str
    kind: str
    enabled: bool
    health: str  # "ok", "failing", "disabled", "new"
    interval_seconds: int
    full_articles: bool = False
    last_success: datetime | None = None
    last_error: str | None = None
    disabled_reason: str | None = None


class SubscriptionBook(Protocol):
    def subscribe(self, *, platform: str, channel: str, query: str, created_by: str) -> Subscription: ...

    def unsubscribe(self, *, platform: str, channel: str, subscription_id: str) -> bool: ...

    def subscriptions(self, *, platform: str, channel: str) -> list[Subscription]: ...

    # Optional (the core checks for it): ``resume(platform=…, channel=…) -> int`` re-enables a channel
    # whose posts were disabled; the number of messages re-queued, or -1 when it was not disabled.


class SourceRegistry(Protocol):
    def list_sources(self) -> list[SourceStatus]: ...

    def add_source(self, url: str, *, added_by: str, name: str | None = None) -> SourceStatus: ...
