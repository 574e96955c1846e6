"""The contract between chat adapters and the conversation core: what comes in, what goes out.

Every adapter (console, Slack, Discord, tests) turns a platform event into an
:class:`IncomingMessage`, calls :meth:`bot.conversation.Conversation.handle`, and renders the
:class:`Reply` it gets back. Nothing here knows a platform SDK, and the core never formats for
one: ``Reply.text`` is plain text with light markdown (``*bold*``, ``<url>`` never used) that
reads fine anywhere; ``Reply.items`` carries the same answer as structure for richer rendering
(Slack blocks, Discord embeds).

Threads: a conversation's memory is keyed by :class:`ThreadKey` (platform + channel + thread).
An adapter passes the platform's thread id (Slack ``thread_ts`` or the message ``ts`` for a
top-level message, a Discord thread or message id, a console thread number). When it has none
yet — a slash command, whose reply only gets an id once posted — it leaves ``thread_id`` empty;
the core then opens a thread under a fresh id, returns it as ``Reply.thread_key``, and the
adapter calls :meth:`~bot.conversation.Conversation.rebind_thread` once it knows the posted
message's id, so follow-ups in that thread find the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from retrieval.records import ThreatRecord

if TYPE_CHECKING:
    from bot.commands import Command


@dataclass(frozen=True)
class ThreadKey:
    """Where a conversation lives: one thread in one channel of one platform."""

    platform: str
    channel: str
    thread: str

    def __str__(self) -> str:
        return f"{self.platform}/{self.channel}/{self.thread}"


@dataclass(frozen=True)
class IncomingMessage:
    """One thing a person said to the bot, already stripped of the bot mention or slash-command name.

    ``text`` is what follows ``/threat`` (Slack) or the whole message (console, mentions). An
    adapter that receives structured input (Discord app commands: a name and options) passes
    ``command=Command.from_options(name, options)`` and may leave ``text`` as a display form.
    """

    text: str
    platform: str = "console"
    channel: str = "console"
    #: The platform's thread id; empty means "start a new thread" (see the module docstring).
    thread_id: str = ""
    user_id: str = ""
    user_name: str = ""
    #: The asker's IANA time zone: every "today" and every printed time is in it.
    tz: str = "UTC"
    #: The adapter's verdict on whether this user may manage the channel's feeds (subscribe, add sources).
    can_manage: bool = False
    #: The moment of asking; None means the wall clock. Tests and replays pin it.
    now: datetime | None = None
    #: A pre-parsed command (Discord app commands); None means parse ``text``.
    command: Command | None = None
    #: The workspace the channel belongs to (Slack team id, Discord guild id); empty for the console and DMs.
    #: It selects the stack that answers are checked against (``retrieval.stack.scope_for``).
    workspace: str = ""

    def thread_key(self, thread: str | None = None) -> ThreadKey:
        return ThreadKey(self.platform, self.channel, thread if thread is not None else self.thread_id)


class ReplyKind(StrEnum):
    """What sort of answer a reply is, so an adapter can choose a layout without parsing text."""

    ANSWER = "answer"  # a list of matching stories (question, search, latest, more, refinements)
    NONE_FOUND = "none_found"  # nothing matched; ``latest_before`` may name the last earlier match
    RECORD = "record"  # one record in detail (show, "tell me more about the second one")
    FIELD = "field"  # one field of the record in focus (mitigation, countries, exploited, …)
    UPDATES = "updates"  # "any updates?"
    SUBSCRIPTIONS = "subscriptions"
    SOURCES = "sources"
    HELP = "help"
    NOTICE = "notice"  # confirmations and refusals (subscribed, not allowed, not configured, unknown id)


@dataclass(frozen=True)
class ReplyItem:
    """One story in a reply: the record that stands for its incident and who else reported it."""

    #: The number the user can refer to ("the second one", ``show 2``): 1-based within the thread's list.
    label: str
    record: ThreatRecord
    #: Other records of the same incident (cluster), their ids and source names.
    member_ids: list[str] = field(default_factory=list)
    member_sources: list[str] = field(default_factory=list)
    #: "⚠ affects your stack: FortiOS 7.2.5 (fixed in 7.2.8)" when the story touches the asker's stack.
    stack_note: str = ""
    #: The past window a late report was published after ("Friday"): said beside its date, so the list under
    #: "Friday (…)" is honest about the stories told on Monday.
    reported_after: str = ""

    @property
    def source_count(self) -> int:
        """Distinct sources reporting the incident, this record's included."""
        return len({self.record.source.lower(), *(s.lower() for s in self.member_sources)} - {""}) or 1


@dataclass
class Reply:
    """What the bot answers. ``text`` alone is a complete answer; the rest is structure for rendering."""

    text: str
    thread_key: ThreadKey
    kind: ReplyKind = ReplyKind.NOTICE
    items: list[ReplyItem] = field(default_factory=list)
    #: The record a RECORD/FIELD reply is about.
    focus: ThreatRecord | None = None
    #: For NONE_FOUND: the most recent match before the asked window, if any.
    latest_before: ReplyItem | None = None
    #: How the question was understood (``StructuredQuery.to_filters()``), for "why this answer" displays.
    filters: dict[str, Any] = field(default_factory=dict)
    #: The window in words, in the asker's zone ("Today (Tue 2 Jun, Europe/Berlin)"), when the question had one.
    window: str | None = None
    #: Follow-ups worth offering as buttons; each is valid input for the same thread.
    suggestions: list[str] = field(default_factory=list)
    #: Show only to the asker (help, refusals, errors) where the platform can.
    ephemeral: bool = False
    #: True when ``text`` was written by the LLM (and passed the citation check); adapters may label it.
    generated: bool = False

    def text_without_items(self) -> str:
        """``text`` minus the per-story lines, for adapters that show ``items`` as cards or embeds.

        The heading ("Today (…): 2 outages:") and trailing notes stay. Story lines are the ones
        :mod:`bot.answers` writes as ``"<label>. …"`` with three-space indented continuations; an
        LLM-written reply has no such layout and is returned whole.
        """
        if self.generated or not self.items:
            return self.text
        starts = tuple(f"{item.label}. " for item in self.items)
        kept: list[str] = []
        inside = False
        for line in self.text.split("\n"):
            if line.startswith(starts):
                inside = True
                continue
            if inside and line.startswith("   "):
                continue
            inside = False
            kept.append(line)
        return "\n".join(kept).strip()
