"""The deliverer: outbox rows to delivery targets, at a pace each platform tolerates.

For each due row: build the platform-neutral payload from the store as it is *now* (so a post that
waited shows every source that joined meanwhile), mark the row ``sending`` (committed), call the
target, mark it ``sent`` with the platform's message id (committed). See ``bot.outbox`` for why a
crash anywhere in that sequence neither loses a message nor posts it twice.

Pacing: messages to one channel are spaced by the target's rate hint (Slack about one per second
per channel), overridable per platform. A channel waiting for its turn does not hold up the others.
Failures: ``RateLimited`` waits as told; ``ChannelUnavailable`` counts against the channel's health
(``bot.health``: failing, retried with back-off, then disabled with the reason and its subscribers
told once); any other ``DeliveryRejected`` is final; anything else is retried with exponential
back-off and given up after ``max_attempts``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.delivery.base import (
    ChannelNotice,
    ChannelUnavailable,
    DeliveryRejected,
    DeliveryTarget,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateLimited,
)
from bot.health import ChannelHealth, ChannelState, ChannelStatus
from bot.outbox import Outbox, OutboxRow, RowKind, crash_point
from bot.services import Subscription
from retrieval.records import ThreatRecord
from retrieval.stack.matching import stack_mark
from retrieval.stack.model import DEFAULT_SCOPE
from retrieval.stack.service import StackService
from retrieval.store import RecordStore

__all__ = ["Deliverer", "DeliveryPolicy", "DeliveryRound"]


class SubscriptionLister(Protocol):
    def subscriptions(self, *, platform: str, channel: str) -> list[Subscription]: ...


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retries and pacing."""

    max_attempts: int = 8
    base_backoff: float = 15.0
    max_backoff: float = 3600.0
    #: Messages per second per channel, by platform; overrides the target's rate hint.
    rate_limits: Mapping[str, float] = field(default_factory=dict)
    #: Consecutive "channel cannot receive" failures after which its subscriptions are disabled.
    disable_channel_after: int = 3


@dataclass
class DeliveryRound:
    """What one pass over the due rows did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    #: Rows left for later because their channel was still within its rate limit.
    paced: int = 0
    #: Rows whose platform has no target in this process.
    no_target: int = 0
    #: Channels disabled in this pass (their subscriptions stop until ``resume``).
    disabled: list[str] = field(default_factory=list)
    #: Earliest moment a paced channel may send again (None: nothing paced).
    resume_at: float | None = None


class Deliverer:
    """Sends due outbox rows through the first target that serves each row's platform."""

    def __init__(
        self,
        outbox: Outbox,
        store: RecordStore,
        targets: Sequence[DeliveryTarget],
        *,
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        health: ChannelHealth | None = None,
        subscriptions: SubscriptionLister | None = None,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.targets = list(targets)
        self.policy = policy or DeliveryPolicy()
        self.clock = clock
        self.health = health or ChannelHealth(outbox.db, disable_after=self.policy.disable_channel_after, clock=clock)
        #: Who subscribed where, for the notice when a channel is disabled (optional).
        self.subscriptions = subscriptions
        self._free_at: dict[tuple[str, str], float] = {}
        self._warned: set[str] = set()
        self._troubled: set[tuple[str, str]] = set()
        self._stack: StackService | None = None

    def target_for(self, platform: str) -> DeliveryTarget | None:
        exact = next((t for t in self.targets if t.platform == platform and t.handles(platform)), None)
        return exact or next((t for t in self.targets if t.handles(platform)), None)

    def close(self) -> None:
        for target in self.targets:
            try:
                target.close()
            except Exception:  # closing is best effort
                log.exception("closing %s failed", type(target).__name__)

    # -- loops ------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Call once at start: rows a dead process left mid-send are queued again (same idempotency key)."""
        count = self.outbox.recover()
        if count:
            log.warning("re-queued %d delivery row(s) left mid-send by a previous run", count)
        return count

    def deliver_due(self, *, stop: threading.Event | None = None, limit: int = 500) -> DeliveryRound:
        """One pass over the rows due now; returns early (after the row in flight) when ``stop`` is set."""
        result = DeliveryRound()
        now = self.clock()
        # Read every pass: ``threatbot resume`` in another process may have re-enabled a channel.
        troubled = self.health.troubled()
        self._troubled = {(s.platform, s.channel) for s in troubled}
        disabled = {(s.platform, s.channel): s for s in troubled if s.state is ChannelState.DISABLED}
        ended: set[tuple[str, str]] = set()
        for row in self.outbox.due(now, limit=limit):
            if stop is not None and stop.is_set():
                break
            target = self.target_for(row.platform)
            if target is None:
                result.no_target += 1
                if row.platform not in self._warned:
                    self._warned.add(row.platform)
                    log.warning("no delivery target for platform %r; its rows stay queued", row.platform)
                continue
            lane = (row.platform, row.channel)
            if lane in disabled:  # queued before the channel was disabled: ends with it (resume re-queues)
                if lane not in ended:
                    ended.add(lane)
                    result.dead += self.health.end_pending(*lane, disabled[lane].reason or "cannot post")
                continue
            free_at = self._free_at.get(lane, 0.0)
            now = self.clock()
            if free_at > now:
                result.paced += 1
                result.resume_at = free_at if result.resume_at is None else min(result.resume_at, free_at)
                continue
            outcome = self._deliver(row, target)
            # Space the next message; a platform's own Retry-After (set in _deliver) may ask for longer.
            self._free_at[lane] = max(self._free_at.get(lane, 0.0), self.clock() + self._interval(row.platform, target))
            if outcome == "sent":
                result.sent += 1
            elif outcome == "disabled":
                result.dead += 1
                result.disabled.append(f"{row.platform}:{row.channel}")
                disabled[lane] = self.health.get(row.platform, row.channel)
                ended.add(lane)  # _unavailable already ended the channel's queue
            elif outcome == "dead":
                result.dead += 1
            else:
                result.retried += 1
        return result

    def drain(self, *, stop: threading.Event | None = None, max_wait: float = 5.0) -> DeliveryRound:
        """Deliver until nothing is due, waiting out rate limits (not back-offs longer than ``max_wait``)."""
        total = DeliveryRound()
        while not (stop is not None and stop.is_set()):
            result = self.deliver_due(stop=stop)
            total.sent += result.sent
            total.retried += result.retried
            total.dead += result.dead
            total.disabled += result.disabled
            total.no_target = result.no_target
            total.paced = result.paced
            if result.resume_at is not None:
                wait = result.resume_at - self.clock()
                if wait > max_wait:
                    break
                if wait > 0:
                    if stop is not None:
                        stop.wait(wait)
                    else:
                        time.sleep(wait)
                continue
            upcoming = self.outbox.next_attempt_at()
            if result.sent or result.retried or result.dead:
                continue
            if upcoming is None or upcoming - self.clock() > max_wait or result.no_target:
                break
            time.sleep(max(0.0, upcoming - self.clock()))
        return total

    # -- one row ----------------------------------------------------------------------------------

    def _deliver(self, row: OutboxRow, target: DeliveryTarget) -> str:
        try:
            payload = self._payload(row)
        except LookupError as error:  # its records were deleted: nothing to say any more
            self.outbox.mark_dead(row, f"cannot build the message: {error}")
            return "dead"
        self.outbox.mark_sending(row.id)
        crash_point("deliver.before_send")
        try:
            ref = self._send(target, row, payload)
        except ChannelUnavailable as error:
            return self._unavailable(row, target, error)
        except DeliveryRejected as error:
            log.warning("delivery %s rejected: %s", row.key, error)
            self.outbox.mark_dead(row, f"rejected: {error}")
            return "dead"
        except RateLimited as error:
            wait = (
                error.retry_after if error.retry_after is not None else max(1.0, self._interval(row.platform, target))
            )
            self._free_at[(row.platform, row.channel)] = self.clock() + wait
            self.outbox.mark_retry(row.id, f"rate limited: {error}", self.clock() + wait)
            return "retry"
        except Exception as error:  # a target bug or an outage: retried, then given up
            attempts = row.attempts + 1
            message = f"{type(error).__name__}: {error}"
            if attempts >= self.policy.max_attempts:
                log.warning("delivery %s failed %d times, giving up: %s", row.key, attempts, message)
                self.outbox.mark_dead(row, message)
                return "dead"
            delay = min(self.policy.base_backoff * 2 ** (attempts - 1), self.policy.max_backoff)
            self.outbox.mark_retry(row.id, message, self.clock() + delay)
            return "retry"
        crash_point("deliver.after_send")
        self.outbox.mark_sent(row, ref)
        if (row.platform, row.channel) in self._troubled:
            self.health.record_success(row.platform, row.channel)
            self._troubled.discard((row.platform, row.channel))
            log.info("%s:%s takes posts again", row.platform, row.channel)
        return "sent"

    def _unavailable(self, row: OutboxRow, target: DeliveryTarget, error: ChannelUnavailable) -> str:
        """The channel cannot receive: count it; retry with back-off, or disable the channel at the threshold."""
        status = self.health.record_failure(row.platform, row.channel, reason=error.reason, code=error.code)
        lane = (row.platform, row.channel)
        self._troubled.add(lane)
        if status.state is ChannelState.DISABLED:
            ended = self.health.end_pending(row.platform, row.channel, status.reason or error.reason)
            log.warning(
                "%s:%s disabled after %d failures: %s (%d queued message(s) held until `resume`)",
                row.platform,
                row.channel,
                status.failures,
                status.reason,
                ended,
            )
            self._notify(target, status)
            return "disabled"
        delay = min(self.policy.base_backoff * 2 ** (status.failures - 1), self.policy.max_backoff)
        self._free_at[lane] = self.clock() + delay  # the whole channel waits, not just this row
        self.outbox.mark_retry(row.id, f"channel unavailable: {error}", self.clock() + delay)
        log.warning("%s:%s cannot receive (%s): %s; retrying in %.0fs", *lane, status.describe(), error, delay)
        return "retry"

    def _notify(self, target: DeliveryTarget, status: ChannelStatus) -> None:
        """Tell the subscribers once, where the platform allows; the log and ``subscriptions`` say it anyway."""
        if status.notified_at is not None:
            return
        subs = (
            self.subscriptions.subscriptions(platform=status.platform, channel=status.channel)
            if self.subscriptions is not None
            else []
        )
        notice = ChannelNotice(
            status.platform,
            status.channel,
            status.reason or "cannot post",
            status.failures,
            tuple((s.id, s.query, s.created_by) for s in subs),
        )
        try:
            told = target.notify_unavailable(status.channel, notice)
        except Exception:  # telling is best effort; the state is recorded either way
            log.exception("telling the subscribers of %s:%s failed", status.platform, status.channel)
            told = False
        if not told:
            log.warning(
                "could not tell the subscribers of %s:%s; `threatbot subscriptions` shows it",
                status.platform,
                status.channel,
            )
        self.health.mark_notified(status.platform, status.channel)

    @staticmethod
    def _send(target: DeliveryTarget, row: OutboxRow, payload: IncidentPost | IncidentUpdate | Digest) -> PostRef:
        if isinstance(payload, IncidentUpdate):
            assert row.parent is not None  # due() only yields updates whose post has a ref
            return target.update(row.channel, row.parent, payload)
        if isinstance(payload, Digest):
            return target.post_digest(row.channel, payload)
        return target.post(row.channel, payload)

    def _interval(self, platform: str, target: DeliveryTarget) -> float:
        rate = self.policy.rate_limits.get(platform)
        if rate is None:
            return target.rate_hint.interval
        return 0.0 if rate <= 0 else 1.0 / rate

    # -- payloads ---------------------------------------------------------------------------------

    def _payload(self, row: OutboxRow) -> IncidentPost | IncidentUpdate | Digest:
        data = row.payload
        if row.kind is RowKind.POST:
            post = self._incident(row.key, data["cluster_id"], data["record_ids"], data["subscriptions"], row.platform)
            return self._with_stack(post, row.channel)
        if row.kind is RowKind.DIGEST:
            items = tuple(
                self._with_stack(
                    self._incident(
                        f"{row.key}#{item['cluster_id']}", item["cluster_id"], item["record_ids"], (), row.platform
                    ),
                    row.channel,
                )
                for item in data["items"]
            )
            return Digest(row.key, items, tuple(data.get("subscriptions", ())), row.platform)
        assert row.cluster_id is not None
        members = self._members(row.cluster_id)
        record = next((m for m in members if m.id == data["record_id"]), None) or self.store.get(data["record_id"])
        if record is None:
            raise LookupError(f"record {data['record_id']} is gone")
        changes = tuple(FieldChange(c["field"], c["before"], c["after"]) for c in data.get("changes", ()))
        return IncidentUpdate(
            row.key, row.cluster_id, record, members, changes, bool(data.get("new_source")), row.platform
        )

    def _incident(
        self, key: str, cluster_id: str, record_ids: Sequence[str], queries: Sequence[str], platform: str
    ) -> IncidentPost:
        members = self._members(cluster_id)
        by_id = {m.id: m for m in members}
        headline = next((by_id[i] for i in record_ids if i in by_id), None)
        if headline is None:
            found = self.store.get_many(list(record_ids))
            headline = next((found[i] for i in record_ids if i in found), None)
        if headline is None:
            raise LookupError(f"no record of incident {cluster_id} is stored")
        matched = tuple(i for i in record_ids if i in by_id or i == headline.id)
        return IncidentPost(key, cluster_id, headline, members or (headline,), tuple(queries), platform, matched)

    def _with_stack(self, post: IncidentPost, channel: str) -> IncidentPost:
        """The post marked "⚠ affects your stack: …" when the incident touches the channel's workspace stack."""
        if self._stack is None:
            self._stack = StackService(self.store.db)
        scope = self._stack.book.scope_of(post.platform, channel)
        if scope is None and post.platform in ("console", "webhook"):
            scope = DEFAULT_SCOPE  # a local console or a bridge: the stack the CLI manages
        matcher = self._stack.matcher(scope) if scope else None
        if not matcher:
            return post
        mark = stack_mark(
            [v for record in {r.id: r for r in (post.record, *post.members)}.values() for v in matcher.match(record)]
        )
        if not mark:
            return post
        summary = f"{mark}\n{post.record.summary}" if post.record.summary else mark
        return dataclasses.replace(post, record=post.record.model_copy(update={"summary": summary}), stack=mark)

    def _members(self, cluster_id: str) -> tuple[ThreatRecord, ...]:
        return tuple(self.store.cluster_members(cluster_id))
