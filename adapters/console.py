"""The console adapter: the conversation core in a terminal, with threads, and no tokens needed.

Plain lines are messages in the current thread; slash commands manage threads::

    /new [question]   start a new thread (and ask in it)
    /threads          list this channel's threads
    /switch N         continue thread N (threads survive a restart until they expire)
    /help             this list and the bot's commands
    /quit             leave (end of input does too)

Input and output are injectable streams, so tests drive it exactly as a person would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.console_render import dim, render, wants_style
from bot.conversation import Conversation
from bot.messages import IncomingMessage, Reply
from bot.terminal import terminal_safe

PLATFORM = "console"

CONSOLE_HELP = """Console: /new [question] starts a thread · /threads lists them · /switch N continues one · /quit leaves.
Plain lines are asked in the current thread, so follow-ups ("more", "only critical ones") work."""


class ConsoleAdapter:
    """A line-by-line chat over text streams: one channel, numbered threads."""

    def __init__(
        self,
        conversation: Conversation,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        tz: str = "UTC",
        user: str = "console",
        channel: str = "console",
        can_manage: bool = True,
        clock: Callable[[], datetime] | None = None,
        prompt: bool | None = None,
        styled: bool | None = None,
    ) -> None:
        self.conversation = conversation
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.tz = tz
        self.user = user
        self.channel = channel
        self.can_manage = can_manage
        self.clock = clock or (lambda: datetime.now(UTC))
        self.prompt = prompt if prompt is not None else self.stdin.isatty()
        #: Terminal styling (bold, italics, links, dim hints) instead of Slack's ``*bold*`` markers.
        self.styled = styled if styled is not None else wants_style(self.stdout)
        self.thread = ""  # the current thread's id; "" until the first message or /new

    # -- loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Read lines until ``/quit`` or end of input. Returns the process exit code."""
        while True:
            if self.prompt:
                self._write(f"[{self.thread or 'new'}]> ", end="")
            line = self.stdin.readline()
            if not line:
                return 0
            if not self.handle_line(line):
                return 0

    def handle_line(self, line: str) -> bool:
        """Act on one line; False means the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/") and not line.lower().startswith("/threat"):
            return self._console_command(line)
        self.ask(line)
        return True

    def ask(self, text: str) -> Reply:
        """Send ``text`` in the current thread (opening one if there is none) and print the reply."""
        if not self.thread:
            self.thread = self._next_thread_id()
        reply = self.conversation.handle(
            IncomingMessage(
                text=text,
                platform=PLATFORM,
                channel=self.channel,
                thread_id=self.thread,
                user_id=self.user,
                user_name=self.user,
                tz=self.tz,
                can_manage=self.can_manage,
                now=self.clock(),
            )
        )
        self._render(reply)
        return reply

    # -- console commands ------------------------------------------------------------------------

    def _console_command(self, line: str) -> bool:
        name, _, rest = line[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("quit", "exit", "q"):
            return False
        if name == "new":
            self.thread = self._next_thread_id()
            self._write(f"— thread {self.thread} —")
            if rest:
                self.ask(rest)
        elif name == "threads":
            self._list_threads()
        elif name == "switch":
            self._switch(rest)
        elif name == "help":
            self._write(CONSOLE_HELP)
            self.ask("help")
        else:
            self._write(f"Unknown console command /{name}. {CONSOLE_HELP}")
        return True

    def _list_threads(self) -> None:
        threads = self.conversation.list_threads(PLATFORM, self.channel, now=self.clock())
        if not threads:
            self._write("No threads yet: type a question to start one.")
            return
        for thread, state, last in threads:
            mark = "*" if thread == self.thread else " "
            topic = state.question or (f"record {state.focus_id}" if state.focus_id else "(no question)")
            self._write(f"{mark} {thread}: {topic} — last active {last.astimezone(self._zone()):%a %d %b %H:%M}")

    def _switch(self, target: str) -> None:
        known = {t for t, _, _ in self.conversation.list_threads(PLATFORM, self.channel, now=self.clock())}
        if target not in known:
            self._write(f"No thread {target or '?'} here; /threads lists them.")
            return
        self.thread = target
        self._write(f"— thread {target} —")

    def _next_thread_id(self) -> str:
        threads = self.conversation.list_threads(PLATFORM, self.channel, now=self.clock())
        numbers = [int(t) for t, _, _ in threads if t.isdigit()]
        if self.thread.isdigit():
            numbers.append(int(self.thread))
        return str(max(numbers, default=0) + 1)

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    # -- output ----------------------------------------------------------------------------------

    def _render(self, reply: Reply) -> None:
        styled = self.styled
        self._write(render(reply.text, styled=styled))
        if reply.generated:
            self._write(dim("(written by the LLM from the records cited)", styled=styled))
        if reply.suggestions:
            self._write(dim("  ↳ try: " + " · ".join(reply.suggestions), styled=styled))
        self._write("")

    def _write(self, text: str, end: str = "\n") -> None:
        self.stdout.write(terminal_safe(text) + end)  # replies quote feed text: no ESC or bidi controls
        self.stdout.flush()
