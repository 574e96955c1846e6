"""A target that keeps what it was sent, for tests: the delivery equivalent of ``httpx.MockTransport``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.delivery.base import DeliveryTarget, Digest, IncidentPost, IncidentUpdate, PostRef, RateHint

__all__ = ["MemoryTarget", "Sent"]


@dataclass(frozen=True)
class Sent:
    """One call the target received."""

    verb: str  # "post" | "update" | "digest"
    channel: str
    payload: IncidentPost | IncidentUpdate | Digest
    ref: PostRef
    #: For updates: the ref of the message being updated.
    parent: PostRef | None = None
    #: When it arrived (``time.monotonic()``), for pacing assertions.
    at: float = 0.0


class MemoryTarget(DeliveryTarget):
    """Records every call in :attr:`sent`; ``fail`` (if set) is called first and may raise to simulate errors."""

    platform = "memory"
    channel_format = "any string"
    rate_hint = RateHint(0.0)  # no spacing: tests measure the deliverer's own limit when they set one

    def __init__(
        self,
        *,
        platform: str | None = None,
        platforms: tuple[str, ...] = (),
        fail: Callable[[str, str, object], None] | None = None,
    ) -> None:
        super().__init__(platforms=platforms or ((platform,) if platform else ()))
        if platform:
            self.platform = platform  # type: ignore[misc]  # an instance may stand in for a named platform
        self.sent: list[Sent] = []
        self.fail = fail
        self._lock = threading.Lock()
        self._counter = 0

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        return self._record("post", channel, post, None)

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        self._record("update", channel, update, ref)
        return ref

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        return self._record("digest", channel, digest, None)

    def _record(
        self, verb: str, channel: str, payload: IncidentPost | IncidentUpdate | Digest, parent: PostRef | None
    ) -> PostRef:
        if self.fail is not None:
            self.fail(verb, channel, payload)
        with self._lock:
            self._counter += 1
            ref = PostRef(self.platform, channel, f"m{self._counter}")
            self.sent.append(Sent(verb, channel, payload, ref, parent, time.monotonic()))
        return ref

    # -- helpers for assertions -------------------------------------------------------------------

    def of(self, verb: str, channel: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.verb == verb and (channel is None or s.channel == channel)]

    def posted_clusters(self, channel: str) -> list[str]:
        """Cluster ids that reached ``channel`` as a post or a digest item, in order (repeats kept)."""
        out: list[str] = []
        for sent in self.sent:
            if sent.channel != channel:
                continue
            if isinstance(sent.payload, IncidentPost):
                out.append(sent.payload.cluster_id)
            elif isinstance(sent.payload, Digest):
                out.extend(item.cluster_id for item in sent.payload.items)
        return out
