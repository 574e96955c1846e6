"""``threatbot chat``: the conversation core in a terminal, on the demo data when there is nothing else.

The lead registers it in ``bot.cli.build_parser`` with ``add_chat_command(add)``; ``add`` is the
CLI's subcommand factory. Fetching live default sources belongs to the feed side: pass its
entry point as ``live_sources`` (a callable taking the store) and ``chat`` runs it at start-up,
after seeding, unless ``--demo-only`` or ``--no-live`` is given.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli_args import parse_now, parse_tz

log = logging.getLogger(__name__)

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]
LiveSources = Callable[[Any], object]


def local_zone_name() -> str:
    """The machine's IANA zone (``TZ`` or ``/etc/localtime``), else UTC: "today" should mean the user's today."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def add_chat_command(add: Add, *, live_sources: LiveSources | None = None) -> argparse.ArgumentParser:
    """Register ``chat`` with the CLI's subcommand factory; returns its parser."""

    def handler(args: argparse.Namespace) -> int:
        return run_chat(args, live_sources=live_sources)

    chat = add("chat", handler, "chat with threatbot in the terminal (threads, follow-ups; no tokens needed)")
    chat.add_argument("--tz", type=parse_tz, default=None, help="your time zone (default: this machine's)")
    chat.add_argument("--now", type=parse_now, default=None, help="pretend it is this moment (ISO 8601), for replays")
    chat.add_argument("--no-demo", action="store_true", help="never seed the demo records into an empty store")
    chat.add_argument("--demo-only", action="store_true", help="use the demo records only: no live sources at start-up")
    chat.add_argument("--no-llm", action="store_true", help="extractive answers even if THREATBOT_LLM is set")
    chat.add_argument(
        "-m", "--message", action="append", default=[], metavar="TEXT", help="say TEXT and exit (repeatable)"
    )
    return chat


def run_chat(
    args: argparse.Namespace,
    *,
    live_sources: LiveSources | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """The ``chat`` command: open the store, seed the demo if empty, start the console adapter."""
    from adapters.console import ConsoleAdapter
    from bot.config import Settings
    from bot.conversation import Conversation
    from bot.demo import seed_demo
    from bot.llm import LLMAnswerer, LLMUnavailable
    from bot.sources import SourceBook
    from bot.subscriptions import Subscriptions
    from retrieval.store import RecordStore

    out = stdout or sys.stdout
    settings = Settings.from_env(getattr(args, "data_dir", None))
    store = RecordStore(settings)
    clock = (lambda: args.now) if args.now else (lambda: datetime.now(UTC))
    if not args.no_demo and store.count() == 0:
        report = seed_demo(store, clock(), tz=args.tz or local_zone_name())
        if report is not None:
            out.write(
                f"Seeded {report.new} demo records (illustrative sample data, not real news) into {settings.data_dir}.\n"
            )
    if live_sources is not None and not args.demo_only:
        try:
            note = live_sources(store)
            if isinstance(note, str):
                out.write(note[:1].upper() + note[1:] + ".\n")
        except Exception as error:  # offline is normal for a demo; say so and carry on
            log.debug("live sources failed", exc_info=True)
            out.write(f"Live sources unavailable ({error}); answering from the stored records.\n")
    llm = None
    if not args.no_llm:
        try:
            llm = LLMAnswerer.from_settings(settings)
        except LLMUnavailable as error:
            out.write(f"LLM off: {error}\n")
    conversation = Conversation(
        store,
        llm=llm,
        subscriptions=Subscriptions(store.db),
        sources=SourceBook(store.db, allow_private_urls=settings.allow_private_urls),
    )
    tz = args.tz or local_zone_name()
    if args.message:
        stdin = io.StringIO("\n".join(args.message) + "\n")
    console = ConsoleAdapter(conversation, stdin=stdin, stdout=out, tz=tz, clock=clock)
    if console.prompt:
        out.write(f"threatbot chat — {store.count()} records, times in {tz}. /help for help, /quit to leave.\n")
    try:
        return console.run()
    finally:
        store.close()
