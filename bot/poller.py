"""The feed poller: each source on its own schedule, into the store, and what changed into the outbox.

One cycle is two steps, each safe to die in:

1. **Poll** every due source through the :class:`~retrieval.ingest.Ingestor` (conditional GET, parse,
   enrich, store). Per source: a jittered interval; the server's ``Cache-Control: max-age`` as a
   floor; ``Retry-After`` honoured; exponential back-off on failure; after repeated failures the
   source shows as failing, then is disabled with the reason. A source's failure, whatever it is,
   is recorded against that source and the cycle goes on.
2. **Plan** (:class:`DeliveryPlanner`): every record whose state delivery has not seen yet — new, or
   with a new severity, exploited flag or cluster — is matched against the subscriptions, and the
   rows owed to channels are queued in the outbox in one transaction with the "seen" marks. Planning
   reads the store, not the poll's report, so records stored by a poll that died before planning (or
   by ``threatbot ingest``) are planned by the next cycle: nothing is lost between the two steps.

The poller only enqueues; ``bot.deliverer`` sends.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.health import ChannelHealth
from bot.outbox import Claim, Outbox, Planned, RowKind, RowStatus, SeenState, crash_point
from bot.services import Subscription
from bot.sources import SourceBook, SourceState
from bot.subscriptions import Match, StandingQueryMatcher, Subscriptions
from retrieval.fetch import (
    BlockedAddress,
    Fetcher,
    FetchError,
    FetchResult,
    FetchTimeout,
    HTTPStatusError,
    TooLarge,
    UnsupportedURL,
)
from retrieval.ingest import Ingestor, SourceReport
from retrieval.records import Severity, ThreatRecord
from retrieval.store import RecordStore, UpsertReport

__all__ = [
    "CycleReport",
    "DeliveryPlanner",
    "FeedPoller",
    "PlanReport",
    "PollOutcome",
    "PollPolicy",
    "cache_max_age",
    "classify_failure",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollPolicy:
    """How the poller paces and judges sources."""

    #: Each interval is stretched or shrunk by up to this fraction, so sources do not poll in lockstep.
    jitter: float = 0.1
    #: Longest wait after failures, and the cap on a server's max-age.
    max_backoff: float = 6 * 3600
    max_cache_interval: float = 24 * 3600
    #: Disable after this many failures in a row (network errors, 5xx, timeouts).
    disable_after: int = 10
    #: Disable sooner when retrying cannot help: bad format, too large, gone, forbidden, refused URL.
    disable_after_permanent: int = 3
    #: A source's first successful poll is its backlog: stored and searchable, not posted (a new KEV
    #: source must not post 1,250 old entries). Its records that join an incident a channel already
    #: has still update that post.
    first_poll_is_backlog: bool = True


@dataclass
class PollOutcome:
    """What polling one source did: the line ``threatbot poll`` prints for it."""

    source: str
    status: str  # "ok" | "not_modified" | "failed" | "disabled"
    new: int = 0
    updated: int = 0
    error: str | None = None
    next_due: float = 0.0
    #: New records taken as the source's backlog (its first poll): stored, not posted.
    backlog: int = 0

    def line(self) -> str:
        if self.status in {"failed", "disabled"}:
            return f"{self.source}: {self.status.upper()}: {self.error}"
        if self.status == "not_modified":
            return f"{self.source}: not modified"
        note = f" (first poll: {self.backlog} kept as backlog, not posted)" if self.backlog else ""
        return f"{self.source}: new {self.new}, updated {self.updated}{note}"


@dataclass
class PlanReport:
    """What one planning pass queued."""

    records: int = 0
    posts: int = 0
    updates: int = 0
    digests: int = 0

    def __iadd__(self, other: PlanReport) -> PlanReport:
        self.records += other.records
        self.posts += other.posts
        self.updates += other.updates
        self.digests += other.digests
        return self


@dataclass
class CycleReport:
    polled: list[PollOutcome] = field(default_factory=list)
    plan: PlanReport = field(default_factory=PlanReport)


# -- HTTP hints --------------------------------------------------------------------------------------

_MAX_AGE = re.compile(r"(?:^|[,\s])(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


def cache_max_age(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``Cache-Control: max-age=N`` (None when absent, or when the response says no-store)."""
    value = (headers or {}).get("cache-control") or ""
    if not value or "no-store" in value.lower():
        return None
    found = [int(m.group(1)) for m in _MAX_AGE.finditer(value)]
    return float(max(found)) if found else None


@dataclass(frozen=True)
class Failure:
    """A source's failure, judged: a short label for the disabled reason, and whether retrying can help."""

    label: str
    message: str
    permanent: bool
    retry_after: float | None = None


def classify_failure(message: str, error: BaseException | None) -> Failure:
    """Judge a failed poll from its exception: a fetch error, something else raised while ingesting, or
    None when the fetch went fine and the Ingestor reported the body unreadable."""
    if error is None:
        return Failure("bad format", message, permanent=True)
    if isinstance(error, TooLarge):
        return Failure("too large", message, permanent=True)
    if isinstance(error, UnsupportedURL | BlockedAddress):
        return Failure("refused URL", message, permanent=True)
    if isinstance(error, HTTPStatusError):
        if error.status in {404, 410}:
            return Failure(f"gone (HTTP {error.status})", message, permanent=True)
        if error.status in {401, 403}:
            return Failure(f"forbidden (HTTP {error.status})", message, permanent=True)
        return Failure(f"HTTP {error.status}", message, permanent=False, retry_after=error.retry_after)
    if isinstance(error, FetchTimeout):
        return Failure("timeout", message, permanent=False)
    if isinstance(error, FetchError):
        return Failure("network error", message, permanent=False)
    return Failure("internal error", message, permanent=False)  # our bug or a database fault, not the feed's


class _Tap:
    """Wraps the fetcher to keep each URL's response or error: the Ingestor reports text, the poller needs headers."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.results: dict[str, FetchResult] = {}
        self.errors: dict[str, FetchError] = {}

    def reset(self) -> None:
        self.results.clear()
        self.errors.clear()

    def fetch(self, url: str, **kwargs: object) -> FetchResult:
        try:
            result = self.fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
        except FetchError as error:
            self.errors[url] = error
            raise
        self.results[url] = result
        return result

    def close(self) -> None:
        self.fetcher.close()


# -- polling -----------------------------------------------------------------------------------------


class FeedPoller:
    """Polls due sources into the store, then plans deliveries for what changed."""

    def __init__(
        self,
        store: RecordStore,
        sources: SourceBook,
        planner: DeliveryPlanner,
        *,
        fetcher: Fetcher | None = None,
        policy: PollPolicy | None = None,
        clock=time.time,
        rng: random.Random | None = None,
        allow_private_urls: bool = False,
    ) -> None:
        self.store = store
        self.sources = sources
        self.planner = planner
        self.policy = policy or PollPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self._tap = _Tap(fetcher or Fetcher(allow_private=allow_private_urls))
        self.ingestor = Ingestor(store, self._tap)  # type: ignore[arg-type]  # duck-typed Fetcher

    def close(self) -> None:
        self._tap.close()

    def cycle(self, *, force: bool = False, stop: threading.Event | None = None) -> CycleReport:
        """Poll what is due (everything enabled with ``force``), then plan deliveries."""
        report = CycleReport(polled=self.poll_due(force=force, stop=stop))
        report.plan = self.planner.plan()
        crash_point("poll.after_enqueue")
        return report

    def poll_due(self, *, force: bool = False, stop: threading.Event | None = None) -> list[PollOutcome]:
        due = [s for s in self.sources.states() if s.source.enabled] if force else self.sources.due(self.clock())
        outcomes: list[PollOutcome] = []
        for state in due:
            if stop is not None and stop.is_set():
                break
            outcomes.append(self.poll_source(state))
        return outcomes

    def poll_source(self, state: SourceState) -> PollOutcome:
        """Poll one source and record its health; never raises."""
        source = state.source
        self._tap.reset()
        started = self.clock()
        first = state.last_success is None and self.policy.first_poll_is_backlog
        if first:
            # A first poll must see the whole feed, even if a poll that died before it got its validators
            # stored: a 304 would leave that poll's records unmarked, to be posted as news later.
            with self.store.db.transaction() as conn:
                conn.execute("DELETE FROM fetch_state WHERE url = ?", (source.url,))
        crash: Exception | None = None
        try:
            report = self.ingestor.ingest(source.url, source_name=source.name, full_articles=source.full_articles)
        except Exception as error:  # a bug or a database fault in one source must not stop the others
            log.exception("polling %s failed", source.name)
            crash = error
            report = SourceReport(source.url, error=f"{type(error).__name__}: {error}")
        if report.error:
            return self._failed(state, report.error, crash or self._tap.errors.get(source.url), started)
        crash_point("poll.after_ingest")
        backlog = self._keep_as_backlog(report.upsert) if first and report.upsert is not None else 0
        response = self._tap.results.get(source.url)
        max_age = cache_max_age(response.headers if response else None)
        if max_age is not None:
            max_age = min(max_age, self.policy.max_cache_interval)
        base = source.interval_seconds * (1 + self.rng.uniform(-self.policy.jitter, self.policy.jitter))
        next_due = started + max(base, max_age or 0.0)
        self.sources.record_success(source.name, next_due=next_due, min_interval=max_age, at=started)
        return PollOutcome(
            source.name,
            "not_modified" if report.not_modified else "ok",
            new=report.new,
            updated=report.updated,
            next_due=next_due,
            backlog=backlog,
        )

    def _keep_as_backlog(self, upsert: UpsertReport) -> int:
        return self.planner.absorb_backlog([c.record for c in upsert.changes])

    def _failed(self, state: SourceState, message: str, error: Exception | None, at: float) -> PollOutcome:
        failure = classify_failure(message, error)
        count = state.failures + 1
        limit = self.policy.disable_after_permanent if failure.permanent else self.policy.disable_after
        reason = None
        if count >= limit:
            label = failure.label if failure.permanent else f"repeated errors, last {failure.label}"
            reason = f"{label}: {message} ({count} failures in a row)"
        interval = max(state.source.interval_seconds, 60)
        delay = min(interval * 2 ** (count - 1), self.policy.max_backoff)
        delay *= 1 + self.rng.uniform(0, self.policy.jitter)
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, self.policy.max_cache_interval))
        next_due = at + delay
        self.sources.record_failure(state.name, error=message, next_due=next_due, at=at, disable_reason=reason)
        if reason:
            log.warning("source %s disabled: %s", state.name, reason)
        return PollOutcome(state.name, "disabled" if reason else "failed", error=reason or message, next_due=next_due)


# -- planning ----------------------------------------------------------------------------------------


class DeliveryPlanner:
    """From records delivery has not seen to outbox rows: posts, digests and updates, per channel."""

    def __init__(
        self,
        store: RecordStore,
        subscriptions: Subscriptions,
        outbox: Outbox,
        *,
        digest_threshold: int = 5,
        batch: int = 5000,
    ) -> None:
        self.store = store
        self.subscriptions = subscriptions
        self.outbox = outbox
        self.matcher = StandingQueryMatcher(store)
        self.digest_threshold = digest_threshold
        self.batch = batch

    def plan(self) -> PlanReport:
        total = PlanReport()
        while True:
            unseen = self.outbox.unseen(limit=self.batch)
            if not unseen:
                return total
            total += self._plan_batch(unseen)
            if len(unseen) < self.batch:
                return total

    def _plan_batch(self, unseen: list[tuple[SeenState, SeenState | None]]) -> PlanReport:
        report = PlanReport(records=len(unseen))
        seen = [current for current, _ in unseen]
        claims: dict[str, list[Claim]] = {}
        for claim in self.outbox.claims(s.cluster_id for s in seen):
            claims.setdefault(claim.cluster_id, []).append(claim)
        # A disabled channel (bot.health) gets nothing queued until it is resumed.
        disabled = ChannelHealth(self.outbox.db).disabled()
        planned = [
            p
            for p in self._updates(unseen, claims, self.outbox.cluster_states(claims))
            if (p.platform, p.channel) not in disabled
        ]
        report.updates = len(planned)

        subscriptions = [s for s in self.subscriptions.all() if (s.platform, s.channel) not in disabled]
        if not subscriptions:  # nothing can be news to anyone; the updates above still go out
            self.outbox.commit_plan(planned, seen)
            return report
        records = self.store.get_many([s.record_id for s in seen])
        arrived: dict[str, float] = {}
        candidates = []
        for current, previous in unseen:
            record = records.get(current.record_id)
            if record is None:
                continue
            stamp = record.fetched_at if previous is None else (record.updated_at or record.fetched_at)
            arrived[record.id] = stamp.timestamp() if stamp else self.outbox.clock()
            if previous is None or _news_to_new_channels(previous, current):
                candidates.append(record)
        matches = self.matcher.match(subscriptions, candidates, arrived=arrived)
        planned += self._new_incidents(matches, claims, report)
        self.outbox.commit_plan(planned, seen)
        return report

    def absorb_backlog(self, records: Sequence[ThreatRecord]) -> int:
        """Take ``records`` (a source's first poll) as seen without posting them anywhere; returns how many.

        Only records delivery has not seen yet count: a first poll that re-reads what another source
        (or a poll that died) already stored absorbs those too, rather than leaving them to be posted.

        One exception: a record joining an incident a channel already has is still news *about that
        incident* — the KEV source's first poll brings the entry for a CVE a channel was told about —
        so those posts get their update, in the same transaction.
        """
        known = self.outbox.seen_ids([r.id for r in records])
        states = [
            SeenState(r.id, r.cluster_id or r.id, r.severity.rank, r.exploited) for r in records if r.id not in known
        ]
        claims: dict[str, list[Claim]] = {}
        for claim in self.outbox.claims(s.cluster_id for s in states):
            claims.setdefault(claim.cluster_id, []).append(claim)
        planned = self._updates([(s, None) for s in states], claims, self.outbox.cluster_states(claims))
        self.outbox.commit_plan(planned, states)
        return len(states)

    def backfill(self, subscription: Subscription, since: datetime) -> PlanReport:
        """Queue what ``subscription`` would have received for stories published since ``since`` (explicit only)."""
        ids = self.store.ids_published_since(since.timestamp())
        report = PlanReport(records=len(ids))
        records = list(self.store.get_many(ids).values())
        moment = subscription.created_at.timestamp()
        matches = self.matcher.match([subscription], records, arrived=dict.fromkeys(ids, moment))
        claims: dict[str, list[Claim]] = {}
        for claim in self.outbox.claims(m.cluster_id for m in matches):
            claims.setdefault(claim.cluster_id, []).append(claim)
        planned = self._new_incidents(matches, claims, report)
        self.outbox.commit_plan(planned, [])
        return report

    def _new_incidents(self, matches: list[Match], claims: dict[str, list[Claim]], report: PlanReport) -> list[Planned]:
        """Posts (or one digest per flooded channel) for matched incidents the channel does not have yet."""
        planned: list[Planned] = []
        owed: dict[tuple[str, str], dict[str, _Owed]] = {}
        for match in matches:
            sub = match.subscription
            if any(c.platform == sub.platform and c.channel == sub.channel for c in claims.get(match.cluster_id, ())):
                continue  # already posted there: a change to it goes out as an update
            channel_owed = owed.setdefault((sub.platform, sub.channel), {})
            channel_owed.setdefault(match.cluster_id, _Owed(match.cluster_id)).add(match)

        for (platform, channel), incidents in owed.items():
            ordered = sorted(incidents.values(), key=lambda o: -o.score)
            if len(ordered) > self.digest_threshold:
                clusters = tuple(o.cluster_id for o in ordered)
                digest_id = hashlib.sha1("\n".join(sorted(clusters)).encode()).hexdigest()[:16]
                payload = {
                    "items": [{"cluster_id": o.cluster_id, "record_ids": o.record_ids} for o in ordered],
                    "subscriptions": list(dict.fromkeys(q for o in ordered for q in o.queries)),
                }
                key = f"digest:{platform}:{channel}:{digest_id}"
                planned.append(Planned(RowKind.DIGEST, platform, channel, key, payload, cluster_ids=clusters))
                report.digests += 1
                continue
            for o in ordered:
                payload = {"cluster_id": o.cluster_id, "record_ids": o.record_ids, "subscriptions": o.queries}
                key = f"post:{platform}:{channel}:{o.cluster_id}"
                planned.append(Planned(RowKind.POST, platform, channel, key, payload, cluster_ids=(o.cluster_id,)))
                report.posts += 1
        return planned

    @staticmethod
    def _updates(
        unseen: list[tuple[SeenState, SeenState | None]],
        claims: dict[str, list[Claim]],
        before: dict[str, tuple[int, bool]],
    ) -> list[Planned]:
        """Update rows for incidents already posted: a new source joined, or severity/exploitation changed.

        A new source's changes are the incident's: the KEV entry joining a news story makes the story
        "exploited" even though the news record itself never changed.
        """
        planned: list[Planned] = []
        for current, previous in unseen:
            if current.cluster_id not in claims:
                continue
            new_source = previous is None or previous.cluster_id != current.cluster_id
            if new_source:
                severity, exploited = before.get(current.cluster_id, (current.severity, current.exploited))
                changes = _changes(SeenState("", current.cluster_id, severity, exploited), current, rising_only=True)
            else:
                assert previous is not None
                changes = _changes(previous, current)
            if not new_source and not changes:
                continue
            for claim in claims.get(current.cluster_id, ()):
                # A post still queued will show the incident as it is when sent; a dead one has nothing to update.
                if claim.status in {RowStatus.PENDING, RowStatus.DEAD}:
                    continue
                key = (
                    f"update:{claim.platform}:{claim.channel}:{current.cluster_id}:{current.record_id}:"
                    f"{current.severity}:{int(current.exploited)}"
                )
                planned.append(
                    Planned(
                        RowKind.UPDATE,
                        claim.platform,
                        claim.channel,
                        key,
                        {"record_id": current.record_id, "new_source": new_source, "changes": changes},
                        cluster_id=current.cluster_id,
                    )
                )
        return planned


@dataclass
class _Owed:
    """One incident owed to one channel, gathered over the subscriptions there that it matched."""

    cluster_id: str
    record_ids: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    score: float = float("-inf")

    def add(self, match: Match) -> None:
        self.record_ids = list(dict.fromkeys([*self.record_ids, *match.record_ids]))
        if match.subscription.query not in self.queries:
            self.queries.append(match.subscription.query)
        self.score = max(self.score, match.score)


_SEVERITY_BY_RANK = {s.rank: s for s in Severity}


def _changes(previous: SeenState, current: SeenState, *, rising_only: bool = False) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if current.severity > previous.severity or (previous.severity != current.severity and not rising_only):
        out.append(
            {
                "field": "severity",
                "before": _SEVERITY_BY_RANK[previous.severity].value,
                "after": _SEVERITY_BY_RANK[current.severity].value,
            }
        )
    if previous.exploited != current.exploited and (current.exploited or not rising_only):
        out.append({"field": "exploited", "before": previous.exploited, "after": current.exploited})
    return out


def _news_to_new_channels(previous: SeenState, current: SeenState) -> bool:
    """Whether a change to a known record may make it news for a channel that has not had it: it got worse."""
    return (
        current.severity > previous.severity
        or (current.exploited and not previous.exploited)
        or previous.cluster_id != current.cluster_id
    )
