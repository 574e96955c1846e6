"""A target that prints deliveries: for trying threatbot locally and for ``threatbot serve`` without a platform.

Text by default (one block per message, updates indented under the post they belong to); with
``jsonl=True`` one JSON object per line, for piping into other tools or appending to a file.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

from bot.delivery.base import DeliveryTarget, Digest, IncidentPost, IncidentUpdate, PostRef, RateHint
from retrieval.records import ThreatRecord

__all__ = ["ConsoleTarget"]

#: A digest shows this many incidents; the rest are counted.
DIGEST_LINES = 15


class ConsoleTarget(DeliveryTarget):
    """Writes every delivery to ``stream``; serves every platform unless ``platforms`` says otherwise."""

    platform = "console"
    channel_format = "any name, e.g. #soc"
    rate_hint = RateHint(0.0)

    def __init__(self, stream: TextIO | None = None, *, jsonl: bool = False, platforms: tuple[str, ...] = ("*",)):
        super().__init__(platforms=platforms)
        self.stream = stream or sys.stdout
        self.jsonl = jsonl
        self._lock = threading.Lock()
        self._count = 0

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        ref = self._next_ref(channel)
        if self.jsonl:
            self._emit({"event": "post", "channel": channel, "ref": ref.to_json(), **post.to_json()})
        else:
            lines = [f"[{channel}] {_headline(post.record)}", *_details(post.record)]
            if len(post.sources) > 1:
                lines.append(f"    sources: {', '.join(post.sources)}")
            self._emit_text(lines)
        return ref

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        if self.jsonl:
            self._emit({"event": "update", "channel": channel, "ref": ref.to_json(), **update.to_json()})
            return ref
        what = [f"{c.field}: {_plain(c.before)} → {_plain(c.after)}" for c in update.changes]
        if update.new_source:
            what.insert(0, f"new source {update.record.source or update.record.url}")
        lines = [f"[{channel}]   ↳ update to {ref.message_id}: {'; '.join(what) or 'more detail'}"]
        lines.append(f"      {update.record.title}" + (f" <{update.record.url}>" if update.record.url else ""))
        self._emit_text(lines)
        return ref

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        ref = self._next_ref(channel)
        if self.jsonl:
            self._emit({"event": "digest", "channel": channel, "ref": ref.to_json(), **digest.to_json()})
            return ref
        lines = [f"[{channel}] {len(digest.items)} new incidents"]
        lines += [f"  • {_headline(item.record)}" for item in digest.items[:DIGEST_LINES]]
        if len(digest.items) > DIGEST_LINES:
            lines.append(f"  … and {len(digest.items) - DIGEST_LINES} more")
        self._emit_text(lines)
        return ref

    # -- output -----------------------------------------------------------------------------------

    def _next_ref(self, channel: str) -> PostRef:
        with self._lock:
            self._count += 1
            return PostRef(self.platform, channel, f"console-{self._count}")

    def _emit(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self.stream.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
            self.stream.flush()

    def _emit_text(self, lines: list[str]) -> None:
        with self._lock:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def _headline(record: ThreatRecord) -> str:
    flags = [record.severity.value, record.kind.value] + (["exploited"] if record.exploited else [])
    return f"[{'/'.join(flags)}] {record.title}"


def _details(record: ThreatRecord) -> list[str]:
    out = [f"    {record.published:%Y-%m-%d %H:%M} UTC · {record.source}" + (f" · {record.url}" if record.url else "")]
    if record.cves:
        out.append(f"    CVEs: {', '.join(record.cves[:8])}" + (" …" if len(record.cves) > 8 else ""))
    return out


def _plain(value: object) -> str:
    return "yes" if value is True else "no" if value is False else str(value)
