"""Delivery health per channel, as MonitoRSS keeps it per feed: ok, failing, then disabled with the reason.

A channel that cannot receive — the bot was removed, the channel archived or deleted, a permission is
missing, the webhook deleted — answers every post with the same refusal. Retrying forever would spin;
dropping the posts silently would leave a subscriber waiting for news that never comes. So:

* each :class:`~bot.delivery.base.ChannelUnavailable` from a target counts one consecutive failure for
  its (platform, channel); the channel shows as **failing**, and its row is retried with back-off;
* after ``disable_after`` in a row (default 3) the channel is **disabled** with the platform's reason:
  its pending rows end (``dead``, "channel disabled: …"), the planner queues nothing more for it, and
  whoever subscribed is told once where the platform can reach them;
* any successful send resets it to **ok**;
* ``resume`` (chat, in the channel) or ``threatbot resume`` (CLI) re-enables it and re-queues the rows
  the disabling ended, so nothing waiting at that moment is lost.

Every subscription in the channel shares its health (``Subscription.status``), which
``subscriptions`` (chat and CLI) and ``threatbot deliveries`` show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from retrieval.database import Database

__all__ = ["DISABLED_PREFIX", "ChannelHealth", "ChannelState", "ChannelStatus"]

#: ``last_error`` of the rows a channel's disabling ended: what ``resume`` re-queues.
DISABLED_PREFIX = "channel disabled: "


class ChannelState(StrEnum):
    OK = "ok"
    FAILING = "failing"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ChannelStatus:
    """One channel's delivery health."""

    platform: str
    channel: str
    state: ChannelState
    failures: int = 0
    reason: str | None = None
    code: str | None = None
    last_failure_at: float | None = None
    disabled_at: float | None = None
    notified_at: float | None = None

    def describe(self) -> str:
        """One line for people: "disabled: the bot is not in the channel (3 failures in a row)"."""
        if self.state is ChannelState.OK:
            return "ok"
        count = f"{self.failures} failure{'s' if self.failures != 1 else ''} in a row"
        return f"{self.state.value}: {self.reason or 'cannot post'} ({count})"


class ChannelHealth:
    """The ``delivery_channel_health`` table (created by ``bot.outbox``'s migrations)."""

    def __init__(self, db: Database, *, disable_after: int = 3, clock=time.time) -> None:
        from bot.outbox import ensure_schema

        self.db = db
        self.disable_after = max(1, disable_after)
        self.clock = clock
        ensure_schema(db)

    def get(self, platform: str, channel: str) -> ChannelStatus:
        rows = self.db.query(
            "SELECT * FROM delivery_channel_health WHERE platform = ? AND channel = ?", (platform, channel)
        )
        return _status(rows[0]) if rows else ChannelStatus(platform, channel, ChannelState.OK)

    def troubled(self) -> list[ChannelStatus]:
        """Every channel that is failing or disabled."""
        rows = self.db.query("SELECT * FROM delivery_channel_health WHERE state != 'ok' ORDER BY platform, channel")
        return [_status(r) for r in rows]

    def disabled(self) -> set[tuple[str, str]]:
        rows = self.db.query("SELECT platform, channel FROM delivery_channel_health WHERE state = 'disabled'")
        return {(r["platform"], r["channel"]) for r in rows}

    def record_failure(self, platform: str, channel: str, *, reason: str, code: str = "") -> ChannelStatus:
        """One more consecutive failure; the channel's status after it (disabled at the threshold)."""
        now = self.clock()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT failures, state FROM delivery_channel_health WHERE platform = ? AND channel = ?",
                (platform, channel),
            ).fetchone()
            failures = (row["failures"] if row else 0) + 1
            already = row is not None and row["state"] == ChannelState.DISABLED.value
            state = ChannelState.DISABLED if already or failures >= self.disable_after else ChannelState.FAILING
            conn.execute(
                "INSERT INTO delivery_channel_health (platform, channel, state, failures, reason, code, "
                "last_failure_at, disabled_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(platform, channel) DO UPDATE SET "
                "state = excluded.state, failures = excluded.failures, reason = excluded.reason, code = excluded.code, "
                "last_failure_at = excluded.last_failure_at, "
                "disabled_at = COALESCE(delivery_channel_health.disabled_at, excluded.disabled_at)",
                (
                    platform,
                    channel,
                    state.value,
                    failures,
                    reason[:300],
                    code[:100],
                    now,
                    now if state is ChannelState.DISABLED else None,
                ),
            )
        return self.get(platform, channel)

    def record_success(self, platform: str, channel: str) -> bool:
        """The channel took a message: back to ok. True when it had been failing."""
        with self.db.transaction() as conn:
            return (
                conn.execute(
                    "DELETE FROM delivery_channel_health WHERE platform = ? AND channel = ? AND state != 'disabled'",
                    (platform, channel),
                ).rowcount
                > 0
            )

    def mark_notified(self, platform: str, channel: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE delivery_channel_health SET notified_at = ? WHERE platform = ? AND channel = ?",
                (self.clock(), platform, channel),
            )

    def resume(self, platform: str, channel: str) -> int:
        """Re-enable the channel and re-queue the rows its disabling ended; returns how many. -1: it was fine."""
        now = self.clock()
        with self.db.transaction() as conn:
            cleared = conn.execute(
                "DELETE FROM delivery_channel_health WHERE platform = ? AND channel = ?", (platform, channel)
            ).rowcount
            requeued = conn.execute(
                "UPDATE delivery_outbox SET status = 'pending', attempts = 0, next_attempt = ?, last_error = NULL "
                "WHERE platform = ? AND channel = ? AND status = 'dead' AND last_error LIKE ?",
                (now, platform, channel, DISABLED_PREFIX + "%"),
            ).rowcount
        return requeued if cleared or requeued else -1

    def end_pending(self, platform: str, channel: str, reason: str) -> int:
        """A disabled channel's queued rows end, with the reason (``resume`` brings them back)."""
        with self.db.transaction() as conn:
            return conn.execute(
                "UPDATE delivery_outbox SET status = 'dead', last_error = ? WHERE platform = ? AND channel = ? "
                "AND status IN ('pending', 'sending')",
                ((DISABLED_PREFIX + reason)[:500], platform, channel),
            ).rowcount


def _status(row) -> ChannelStatus:
    return ChannelStatus(
        platform=row["platform"],
        channel=row["channel"],
        state=ChannelState(row["state"]),
        failures=row["failures"],
        reason=row["reason"],
        code=row["code"],
        last_failure_at=row["last_failure_at"],
        disabled_at=row["disabled_at"],
        notified_at=row["notified_at"],
    )
