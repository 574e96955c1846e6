"""What ``serve`` says when it starts, without ``-v``: what runs, what does not and why, and where data lives.

An operator who starts the bot with no platform configured, or with every source failing, reads it here
in a few lines instead of finding out from silence.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bot.logs import JsonFormatter
from bot.platform import PlatformStatus

log = logging.getLogger("threatbot.serve")


def threatbot_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("threatbot")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def serve_banner(
    runtime: Any, platforms: Sequence[PlatformStatus], *, version: str, metrics_url: str | None, grace: float
) -> list[str]:
    settings = runtime.settings
    index = f"Chroma server {settings.chroma_url}" if settings.chroma_url else "embedded index"
    lines = [f"threatbot {version}: serving from {settings.data_dir} ({runtime.store.count()} records, {index})"]
    sources = runtime.sources.list_sources()
    health = Counter(s.health for s in sources)
    detail = ", ".join(f"{n} {state}" for state, n in sorted(health.items()))
    lines.append(f"  sources: {len(sources)}" + (f" ({detail})" if detail else " (add one: threatbot sources add URL)"))
    subscriptions = runtime.subscriptions.all()
    channels = {(s.platform, s.channel) for s in subscriptions}
    per_platform = Counter(s.platform for s in subscriptions)
    lines.append(
        f"  subscriptions: {len(subscriptions)} in {len(channels)} channel(s)"
        + (" (" + ", ".join(f"{p} {n}" for p, n in sorted(per_platform.items())) + ")" if per_platform else "")
    )
    for status in platforms:
        state = "chat + feed" if status.chat and status.delivery else "feed only" if status.delivery else "off"
        lines.append(f"  {status.name}: {state}: {status.detail}")
    if not any(p.chat or p.delivery for p in platforms):
        lines.append(
            "  no chat platform is configured: feed posts wait in the outbox (README: Connect Slack, Connect Discord)"
        )
    if metrics_url:
        lines.append(f"  /healthz and /metrics: {metrics_url}")
    lines.append(f"  stop: Ctrl-C or SIGTERM (in-flight deliveries get {grace:.0f} s)")
    return lines


def print_banner(lines: Sequence[str], *, log_format: str = "text") -> None:
    """On stderr whatever the log level; as JSON log lines with ``--log-format json``."""
    if log_format == "json":
        formatter = JsonFormatter()
        for line in lines:
            record = log.makeRecord(log.name, logging.INFO, __file__, 0, line.strip(), (), None)
            print(formatter.format(record), file=sys.stderr, flush=True)
        return
    print("\n".join(lines), file=sys.stderr, flush=True)
