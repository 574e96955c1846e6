"""Once-only processing: Slack redelivers events it thinks were lost, and one message can arrive as two events.

HTTP event deliveries not acknowledged in time come again with ``X-Slack-Retry-Num`` (Socket Mode
envelopes with ``retry_attempt``), carrying the same ``event_id``; a message that mentions the bot
arrives both as ``app_mention`` and as ``message``, with different event ids but the same channel and
``ts``. :class:`SeenSet` remembers keys for a while (an hour by default, long past Slack's retry
schedule) so each is acted on once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["SeenSet"]


class SeenSet:
    """Keys seen within ``ttl`` seconds, at most ``max_entries`` (oldest forgotten first). Thread-safe."""

    def __init__(
        self, *, ttl: float = 3600.0, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is offered (within the TTL); False for every repeat."""
        now = self.clock()
        with self._lock:
            while self._seen:
                at = next(iter(self._seen.values()))
                if at > now - self.ttl and len(self._seen) < self.max_entries:
                    break
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
