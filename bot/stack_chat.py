"""The stack in chat: ``stack`` commands, the questions answered from it, and the mark on every story.

Questions answered from the stack (whatever the wording, as long as it is about *us*):

* "does anything today affect us?" — stories of a window (today unless the question names one)
  that touch the stack;
* "are we exposed to CVE-2024-3400?" — every record about the CVE, checked against the stack;
* "what in our stack is in KEV?" — KEV entries that name something in the stack.

The scope is the asker's workspace (:func:`retrieval.stack.scope_for`); the console's is ``default``,
the one ``threatbot stack`` manages by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.answers import list_answer, window_phrase
from bot.messages import ReplyKind
from bot.threads import MAX_RESULT_IDS, ThreadState
from retrieval.query import parse_query
from retrieval.search import SearchResult
from retrieval.stack.matching import Verdict, stack_mark
from retrieval.stack.model import scope_for
from retrieval.stack.resolve import UnknownName
from retrieval.stack.service import Exposure, StackService

if TYPE_CHECKING:
    from bot.commands import Command
    from bot.messages import IncomingMessage, Reply
    from retrieval.records import ThreatRecord

__all__ = ["StackQuestion", "mark_of", "parse_stack_question", "scope_of"]

#: The prefix that limits a subscription to the stack: ``subscribe my-stack exploited``.
MY_STACK = "my-stack"

_US = r"(?:us|we|our(?:\s+(?:stack|systems?|environment|estate|products?|software|infra(?:structure)?|assets?|org(?:anization)?|company))?|my\s+stack|the\s+stack)"
_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_EXPOSED = re.compile(
    rf"\b(?:are|is|am)\s+(?:we|our\s+\w+|i)\s+(?:exposed|affected|vulnerable|impacted|at\s+risk|hit)\b|"
    rf"\b(?:affect|affects|affecting|impact|impacts|touch|touches|hit|hits|concern|concerns)\s+{_US}\b|"
    rf"\b(?:does|do)\s+{_US}\s+(?:run|use|have)\b|\bexposure\b",
    re.IGNORECASE,
)
_KEV = re.compile(r"\b(?:kev|known[\s-]+exploited)\b", re.IGNORECASE)
_OURS = re.compile(rf"\b{_US}\b|\bwe\s+(?:run|use|have)\b", re.IGNORECASE)
_DEFAULT_WINDOW = "today"


@dataclass(frozen=True)
class StackQuestion:
    kind: str  # "window", "cve" or "kev"
    cve: str = ""


def parse_stack_question(text: str) -> StackQuestion | None:
    """Which of the stack's questions ``text`` asks, or None when it is an ordinary question."""
    if _KEV.search(text) and _OURS.search(text) and re.search(r"\b(?:in|on|listed|from)\b", text, re.I):
        return StackQuestion("kev")
    if not _EXPOSED.search(text):
        return None
    cve = _CVE.search(text)
    if cve:
        return StackQuestion("cve", cve.group(0).upper())
    return StackQuestion("window")


def scope_of(message: IncomingMessage) -> str:
    return scope_for(message.platform, message.workspace, message.channel)


def mark_of(verdicts: list[Verdict]) -> str:
    return stack_mark(verdicts)


# -- answers ----------------------------------------------------------------------------------------


def empty_stack_text(scope: str) -> str:
    where = "this workspace" if scope != "default" else "the console (scope `default`)"
    return (
        f"No stack is declared for {where}, so I can't tell what affects you. "
        "Add what you run with `stack add FortiOS 7.2.5` (or `threatbot stack import sbom.json"
        + (f" --scope {scope}" if scope != "default" else "")
        + "`), then ask again."
    )


def window_for(text: str, *, now: datetime, tz) -> tuple[datetime, datetime, str]:
    """The window a stack question asks about; today (in the asker's zone) when it names none."""
    query = parse_query(text, now=now, tz=tz)
    if query.window is None:
        query = parse_query(_DEFAULT_WINDOW, now=now, tz=tz)
    window = query.window
    assert window is not None
    end = min(window.end, now + timedelta(seconds=1))
    return window.start, end, window_phrase(query, tz, now) or window.label


def exposure_lines(exposures: list[Exposure], limit: int = 5) -> list[str]:
    return [
        f"• {v.entry.label}: {v.status.value.replace('_', ' ')} — {v.why}"
        for e in exposures[:limit]
        for v in e.verdicts[:2]
    ]


def stack_listing(service: StackService, scope: str) -> str:
    entries = service.entries(scope)
    if not entries:
        return empty_stack_text(scope)
    lines = [f"Your stack ({len(entries)} {'entry' if len(entries) == 1 else 'entries'}, scope `{scope}`):"]
    lines += [f"• `{e.id}` {e.label}" for e in entries[:40]]
    if len(entries) > 40:
        lines.append(f"… and {len(entries) - 40} more (`threatbot stack --scope {scope}` lists all)")
    lines.append("`stack add <product version>`, `stack remove <id>`, `stack report`.")
    return "\n".join(lines)


def add_entry(service: StackService, scope: str, text: str) -> str:
    if not text.strip():
        return "Add what? e.g. `stack add FortiOS 7.2.5` or `stack add cpe:2.3:o:fortinet:fortios:7.2.5:*:*:*:*:*:*:*`."
    try:
        entry, created = service.add_text(scope, text)
    except UnknownName as error:
        return f"{error} Nothing was added — try the vendor's name for it, e.g. `stack add Fortinet FortiOS 7.2.5`."
    if not created:
        return f"Already in your stack: `{entry.id}` {entry.label}."
    note = "" if entry.version else " (no version: stories naming it will count as *possibly* affecting you)"
    return f"Added `{entry.id}` {entry.label} to your stack{note}."


def remove_entry(service: StackService, scope: str, target: str | None) -> str:
    if not target or not target.isdigit():
        return "Which entry? `stack remove <id>` — `stack` lists the ids."
    removed = service.remove(scope, int(target))
    if removed is None:
        return f"Your stack has no entry `{target}`."
    return f"Removed `{removed.id}` {removed.label} from your stack."


# -- the turn's side (called by bot.conversation) ------------------------------------------------------


def answer_command(turn, command: Command) -> Reply:
    """``stack`` / ``stack add …`` / ``stack remove …`` / ``stack report`` for the asker's workspace."""

    service: StackService = turn.core.stack
    scope = scope_of(turn.message)
    action = command.action or "list"
    bind_channel(turn)  # feed posts in this channel are then marked against this workspace's stack
    if action in ("add", "remove"):
        if not turn.message.can_manage:
            return turn._not_allowed("change this workspace's stack")
        text = (
            add_entry(service, scope, command.text) if action == "add" else remove_entry(service, scope, command.target)
        )
        return turn.reply(text, ReplyKind.NOTICE)
    if action == "report":
        if not service.has_stack(scope):
            return turn.reply(empty_stack_text(scope), ReplyKind.NOTICE, ephemeral=True)
        report = service.report(scope, now=turn.now)
        return turn.reply("\n".join(report.lines()), ReplyKind.NOTICE)
    return turn.reply(stack_listing(service, scope), ReplyKind.NOTICE)


def bind_channel(turn) -> None:
    """Remember this channel's workspace, so feed posts here are checked against its stack."""
    turn.core.stack.book.bind_channel(turn.message.platform, turn.message.channel, scope_of(turn.message))


def answer_question(turn, question: StackQuestion, text: str) -> Reply:
    """One of the three stack questions, as a list the thread can follow up on ("tell me more about the first")."""
    service: StackService = turn.core.stack
    scope = scope_of(turn.message)
    if not service.has_stack(scope):
        return turn.reply(empty_stack_text(scope), ReplyKind.NOTICE)
    entries = service.book.count(scope)
    stack_words = f"your stack ({entries} {'entry' if entries == 1 else 'entries'})"
    if question.kind == "cve":
        records, exposures = service.for_cve(scope, question.cve, until=turn.now)
        if not records:
            return turn.reply(
                f"I have no record of {question.cve}, so I can't say whether it touches {stack_words}.",
                ReplyKind.NONE_FOUND,
            )
        if not exposures:
            named = sorted({p for r in records for p in r.products} | {a.product for r in records for a in r.affected})
            what = f" (they name {', '.join(named[:6])})" if named else ""
            return turn.reply(
                f"No — none of the {len(records)} record(s) about {question.cve} names anything in {stack_words}{what}.",
                ReplyKind.NONE_FOUND,
            )
        worst = max(v.status.rank for e in exposures for v in e.verdicts)
        verdict = "Yes" if worst == 2 else "Possibly"
        heading = f"{verdict} — {question.cve} touches {stack_words}:"
    elif question.kind == "kev":
        exposures = service.in_kev(scope, until=turn.now)
        if not exposures:
            return turn.reply(f"Nothing in {stack_words} matches a CISA KEV entry I hold.", ReplyKind.NONE_FOUND)
        heading = f"{len(exposures)} CISA KEV {'entry names' if len(exposures) == 1 else 'entries name'} something in {stack_words}:"
    else:
        start, end, label = window_for(text, now=turn.now, tz=turn.tz)
        exposures = service.in_window(scope, start, end)
        if not exposures:
            return turn.reply(f"Nothing published in {label} touches {stack_words}.", ReplyKind.NONE_FOUND)
        heading = (
            f"{label}: {len(exposures)} {'story touches' if len(exposures) == 1 else 'stories touch'} {stack_words}:"
        )
    state = ThreadState(question="", mode="stack", asked_at=turn.now.isoformat(), tz=turn.tz.key)
    if turn.state is not None:
        state.turns = turn.state.turns
    turn.state = state
    state.result_ids = [e.record.id for e in exposures][:MAX_RESULT_IDS]
    state.answered_at = turn.now.isoformat()
    shown = exposures[: turn.core.page_size]
    state.shown = len(shown)
    state.focus_id = shown[0].record.id if len(exposures) == 1 else None
    items = turn.items([SearchResult(e.record, 0.0, []) for e in shown])
    body = list_answer(heading, items, turn.tz, turn.now, more=len(exposures) - len(shown))
    return turn.reply(
        body, ReplyKind.ANSWER, items=items, suggestions=["tell me more about the first one", "stack report"]
    )


def focus_verdicts(turn, record: ThreatRecord) -> Reply:
    """ "Are we affected?" in a story's thread: that story against the stack."""

    service: StackService = turn.core.stack
    scope = scope_of(turn.message)
    if not service.has_stack(scope):
        return turn.reply(empty_stack_text(scope), ReplyKind.FIELD, focus=record)
    verdicts = service.verdicts(scope, record)
    if not verdicts:
        return turn.reply(f"No — *{record.title}* names nothing in your stack.", ReplyKind.FIELD, focus=record)
    lines = [f"*{record.title}* against your stack:"]
    lines += [f"• {v.entry.label}: {v.status.value.replace('_', ' ')} — {v.why}" for v in verdicts[:8]]
    return turn.reply("\n".join(lines), ReplyKind.FIELD, focus=record)


def marked(turn, record: ThreatRecord) -> tuple[ThreatRecord, str]:
    """The record as shown to this asker (its summary led by the stack mark), and the mark ("" when none)."""
    service: StackService | None = getattr(turn.core, "stack", None)
    if service is None:
        return record, ""
    matcher = getattr(turn, "_stack_matcher", None)
    if matcher is None:  # once per message: the stack cannot change while one answer is worded
        matcher = turn._stack_matcher = service.matcher(scope_of(turn.message))
    if not matcher:
        return record, ""
    mark = stack_mark(matcher.match(record))
    if not mark:
        return record, ""
    summary = f"{mark}\n{record.summary}" if record.summary else mark
    return record.model_copy(update={"summary": summary}), mark


def strip_my_stack(text: str) -> tuple[bool, str]:
    """``my-stack exploited`` → (True, ``exploited``)."""
    words = text.split()
    if words and words[0].lower() in (MY_STACK, "mystack", "my_stack"):
        return True, " ".join(words[1:])
    return False, text
