"""The conversation core: one ``handle(message) -> Reply`` for every chat platform.

It reads the command or question, keeps the thread's context (``bot.threads``), asks the
searcher, and words the answer — extractively by default (``bot.answers``), or through an LLM
when one is configured (``bot.llm``), falling back to the extractive answer whenever the
model is slow, fails, or writes something the records do not back.

Adapters own everything platform-specific (mentions, slash commands, blocks, embeds, rate
limits); the core owns meaning. Subscriptions and sources belong to the delivery side and come
in as optional collaborators (``bot.services`` protocols).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import answers, metrics, stack_chat
from bot.commands import (
    LATEST_DEFAULT,
    Command,
    FollowUp,
    FollowUpKind,
    Verb,
    help_text,
    parse_command,
    parse_followup,
)
from bot.incidents import FeedPostIndex
from bot.llm import LLMAnswerer
from bot.messages import IncomingMessage, Reply, ReplyItem, ReplyKind, ThreadKey
from bot.services import SourceRegistry, SubscriptionBook
from bot.threads import MAX_RESULT_IDS, Refinement, ThreadState, ThreadStore
from retrieval.fetch import redact_url
from retrieval.query import (
    QuestionTooLong,
    StructuredQuery,
    TimeWindow,
    has_topic,
    is_understood,
    merge_queries,
    parse_query,
    without_time_phrases,
)
from retrieval.records import ThreatRecord
from retrieval.search import Searcher, SearchResult
from retrieval.stack.service import StackService
from retrieval.store import RecordStore

log = logging.getLogger(__name__)

#: Stories listed per answer; "more" shows the next page.
PAGE_SIZE = 5
#: Words that only point back at the previous list ("only critical *ones*"): not topics.
_ANAPHORA = re.compile(
    r"\b(?:ones?|those|these|them|they|it|items?|stories|story|results?|incidents?|records?|please|then|too|also)\b"
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|yo|hiya|thanks|thank you|thx|ty|cheers|good (?:morning|afternoon|evening)|"
    r"who are you|what can you do|how does this work)\W*$",
    re.IGNORECASE,
)
_NOT_CONFIGURED = "Feeds aren't configured in this mode, so there are no {what} here (the chat only searches)."


class Conversation:
    """Answers chat messages over a record store. Thread-safe: adapters may call from many threads."""

    def __init__(
        self,
        store: RecordStore,
        *,
        searcher: Searcher | None = None,
        threads: ThreadStore | None = None,
        llm: LLMAnswerer | None = None,
        subscriptions: SubscriptionBook | None = None,
        sources: SourceRegistry | None = None,
        feed_posts: FeedPostIndex | None = None,
        page_size: int = PAGE_SIZE,
        stack: StackService | None = None,
    ) -> None:
        self.store = store
        #: What each workspace runs: stack questions, and the "⚠ affects your stack" mark on stories.
        self.stack = stack or StackService(store.db)
        #: Which incident a feed post's thread is about: a first question there starts from it.
        self.feed_posts = feed_posts
        self.searcher = searcher or Searcher(store)
        self.threads = threads or ThreadStore(store.db)
        self.llm = llm
        self.subscriptions = subscriptions
        self.sources = sources
        self.page_size = page_size
        # One lock per thread key stripe: two messages in one thread are answered in order,
        # different threads in parallel.
        self._locks = [threading.Lock() for _ in range(64)]

    @classmethod
    def from_settings(
        cls,
        settings,
        *,
        store: RecordStore | None = None,
        subscriptions: SubscriptionBook | None = None,
        sources: SourceRegistry | None = None,
        feed_posts: FeedPostIndex | None = None,
    ) -> Conversation:
        """The core as configured by the environment: the LLM only if ``THREATBOT_LLM`` is set."""
        store = store or RecordStore(settings)
        return cls(
            store,
            llm=LLMAnswerer.from_settings(settings),
            subscriptions=subscriptions,
            sources=sources,
            feed_posts=feed_posts,
        )

    # -- what adapters may ask besides handle() -------------------------------------------------

    @property
    def database_path(self):
        """The database file adapters may keep their own tables in (through their own connection)."""
        return self.store.config.database_path

    def knows_thread(self, key: ThreadKey, *, now: datetime | None = None) -> bool:
        """Whether ``key`` is a live conversation (a follow-up there needs no mention)."""
        return self.threads.load(key, now or datetime.now(UTC)) is not None

    def list_threads(self, platform: str, channel: str, *, now: datetime | None = None):
        """The live conversations of one channel, oldest first: (thread id, state, last activity)."""
        return self.threads.list_threads(platform, channel, now or datetime.now(UTC))

    def incident_of_thread(self, key: ThreadKey) -> str | None:
        """The headline record id when ``key`` is the thread of a feed post about one incident."""
        return self.feed_posts.incident_at(key) if self.feed_posts is not None else None

    def warm_up(self) -> None:
        """Open the store's lazily built parts (vector index, embedding model) before answering in parallel.

        ``RecordStore`` creates them on first use without a lock; several answers using it at once on a
        cold start can race in Chroma's client set-up. Done once, here, they are shared safely after.
        """
        for part in ("index", "embedder"):
            try:
                getattr(self.store, part)
            except Exception as error:  # the first answer will report it properly
                log.warning("warming up the store's %s failed: %s", part, type(error).__name__)

    # -- the front door ------------------------------------------------------------------------

    @metrics.timed_answer
    def handle(self, message: IncomingMessage) -> Reply:
        """Answer one message. Never raises for user input; an internal failure becomes a short apology."""
        now = _aware(message.now) if message.now else datetime.now(UTC)
        tz = _zone(message.tz)
        key = message.thread_key() if message.thread_id else message.thread_key(f"new-{uuid.uuid4().hex[:12]}")
        with self._locks[hash(key) % len(self._locks)]:
            state = self.threads.load(key, now) if message.thread_id else None
            if state is None and message.thread_id:
                state = self._feed_post_state(key, now, tz)
            turn = _Turn(self, message, key, now, tz, state)
            try:
                reply = turn.run()
            except QuestionTooLong as error:  # a pasted log or a flood of -terms: say so, do not search
                reply = Reply(str(error), key, ReplyKind.NOTICE, ephemeral=True)
            except Exception:
                log.exception("failed to answer %r in %s", message.text, key)
                reply = Reply(
                    "Sorry — something went wrong while answering that. The error is logged; please try again.",
                    key,
                    ReplyKind.NOTICE,
                    ephemeral=True,
                )
            if turn.state is not None:
                turn.state.add_turn("user", message.text or (message.command.display() if message.command else ""))
                turn.state.add_turn("bot", reply.text)
                self.threads.save(key, turn.state, now)
            return reply

    def _feed_post_state(self, key: ThreadKey, now: datetime, tz: ZoneInfo) -> ThreadState | None:
        """A first message in a feed post's thread: its context is that post's incident, on every platform."""
        try:
            headline = self.incident_of_thread(key)
        except Exception:  # a lookup failure must not stop the answer
            log.exception("looking up the feed post of %s failed", key)
            return None
        if headline is None or self.store.get(headline) is None:
            return None
        return ThreadState(asked_at=now.isoformat(), tz=tz.key, result_ids=[headline], shown=1, focus_id=headline)

    def rebind_thread(self, old: ThreadKey, new: ThreadKey, *, now: datetime | None = None) -> bool:
        """Carry a thread's context to the id the platform gave the posted reply (see ``bot.messages``)."""
        return self.threads.copy(old, new, now or datetime.now(UTC))


class _Turn:
    """One message being answered: its context and the thread state it may change."""

    def __init__(
        self,
        core: Conversation,
        message: IncomingMessage,
        key: ThreadKey,
        now: datetime,
        tz: ZoneInfo,
        state: ThreadState | None,
    ) -> None:
        self.core = core
        self.message = message
        self.key = key
        self.now = now
        self.tz = tz
        self.state = state
        self._understood: dict[str, StructuredQuery] = {}

    def understand(self, text: str) -> StructuredQuery:
        """This turn's reading of ``text``: parsed once, however many steps ask what it means."""
        key = " ".join(text.split())
        if key not in self._understood:
            self._understood[key] = parse_query(key, now=self.now, tz=self.tz)
        return self._understood[key]

    # -- dispatch --------------------------------------------------------------------------------

    def run(self) -> Reply:
        command = self.message.command or parse_command(self.message.text)
        match command.verb:
            case Verb.HELP:
                return self.help(command)
            case Verb.SEARCH:
                return self.new_question(command.text, mode="search")
            case Verb.LATEST:
                return self.new_question(command.text, mode="latest", page=command.count or LATEST_DEFAULT)
            case Verb.SHOW:
                return self.show(command.target or "")
            case Verb.SUBSCRIBE:
                return self.subscribe(command.text)
            case Verb.UNSUBSCRIBE:
                return self.unsubscribe(command.target)
            case Verb.SUBSCRIPTIONS:
                return self.list_subscriptions()
            case Verb.RESUME:
                return self.resume()
            case Verb.SOURCES:
                return self.list_sources(command)
            case Verb.STACK:
                return stack_chat.answer_command(self, command)
            case _:
                return self.ask(command.text)

    def ask(self, text: str) -> Reply:
        if _GREETING.match(text.strip()):
            return self.help(Command(Verb.HELP))
        stack_question = stack_chat.parse_stack_question(text)
        if stack_question is not None:
            focus = self.focus() if stack_question.kind == "window" and not self._is_specific(text) else None
            if focus is not None:  # "are we affected?" in a story's thread: that story
                return stack_chat.focus_verdicts(self, focus)
            return stack_chat.answer_question(self, stack_question, text)
        followup = parse_followup(text)
        if self.state is not None and followup is not None:
            reply = self.follow_up(followup, text)
            if reply is not None:
                return reply
            if followup.kind in (FollowUpKind.MORE, FollowUpKind.SELECT) and not self.state.result_ids:
                return self.reply(
                    "The last answer in this thread listed no stories, so there is nothing to page or pick from.",
                    ReplyKind.NOTICE,
                    ephemeral=True,
                )
            if followup.kind in (FollowUpKind.FIELD, FollowUpKind.SOURCE) and not self._is_specific(text):
                return self.reply(
                    "Which story do you mean? This thread has none in focus — ask a question, or `show <id>` one.",
                    ReplyKind.NOTICE,
                    ephemeral=True,
                )
        elif followup is not None and followup.kind is not FollowUpKind.REFINE and not self._is_specific(text):
            return self.reply(
                "That sounds like a follow-up, but this thread has no earlier answer to follow. "
                "Ask a question first — e.g. _any Exchange outages today?_ — then follow up in its thread.",
                ReplyKind.NOTICE,
                ephemeral=True,
            )
        return self.new_question(text, mode="ask")

    def follow_up(self, followup: FollowUp, text: str) -> Reply | None:
        """The answer to a follow-up, or None when it does not apply here (then it is a new question)."""
        state = self.state
        assert state is not None
        match followup.kind:
            case FollowUpKind.MORE if state.result_ids:
                return self.more()
            case FollowUpKind.SELECT if state.result_ids or (state.focus_id and followup.index is None):
                return self.select(followup.index)
            case FollowUpKind.SOURCE if self.focus() is not None and not self._asks_for_a_list(text):
                return self.source()
            case FollowUpKind.FIELD if (
                self.focus() is not None and not self._names_other_topic(text) and not self._asks_for_a_list(text)
            ):
                return self.field(followup)
            case FollowUpKind.UPDATES if state.question or state.focus_id:
                return self.updates()
            case FollowUpKind.REFINE if state.question:
                return self.refine(followup)
        return None

    # -- questions -------------------------------------------------------------------------------

    def new_question(self, text: str, *, mode: str, page: int | None = None) -> Reply:
        text = " ".join(text.split())
        query = self.understand(text)
        if mode != "latest" and not is_understood(query):
            return self.help(Command(Verb.HELP), note=f"I couldn't find anything to search for in “{text}”.")
        state = ThreadState(question=text, mode=mode, asked_at=self.now.isoformat(), tz=self.tz.key)
        if self.state is not None:
            state.turns = self.state.turns  # a new question in the same thread keeps the conversation
        self.state = state
        return self.answer_list(query, page=page or self.core.page_size)

    def thread_query(self) -> StructuredQuery:
        """The thread's question with its refinements applied, each read at the moment it was said."""
        state = self.state
        assert state is not None
        zone = _zone(state.tz)
        query = self._read_at(state.question, _parse_time(state.asked_at, self.now), zone)
        for refinement in state.refinements:
            change = self._read_at(refinement.text, _parse_time(refinement.at, self.now), zone)
            query = merge_queries(query, change, narrow=refinement.text.startswith("+"))
        return query

    def _read_at(self, text: str, said_at: datetime, zone: ZoneInfo) -> StructuredQuery:
        """A past turn's text read at the moment it was said; this turn's own text is not parsed again."""
        if said_at == self.now and zone.key == self.tz.key:
            return self.understand(text)
        return parse_query(text, now=said_at, tz=zone)

    def answer_list(self, query: StructuredQuery, *, page: int) -> Reply:
        """Search, remember the list in the thread, and word the answer (LLM if configured and it checks out)."""
        state = self.state
        assert state is not None
        results = self.core.searcher.run(query, limit=MAX_RESULT_IDS)
        if state.mode == "latest":
            results.sort(key=lambda r: r.record.published, reverse=True)
        state.result_ids = [r.record.id for r in results]
        state.answered_at = self.now.isoformat()
        shown = results[:page]
        state.shown = len(shown)
        state.focus_id = shown[0].record.id if len(results) == 1 else None
        window = answers.window_phrase(query, self.tz, self.now)
        filters = query.to_filters()
        if not results:
            latest = self.core.searcher.latest_before_window(query) if query.window else None
            latest_item = self.items([latest])[0] if latest else None
            mention_items = self.items(self.core.searcher.mentions(query))
            # "is it exploited?" after "none today; the last one: …" is about that last one.
            state.focus_id = latest.record.id if latest else None
            return self.reply(
                answers.none_answer(query, self.tz, self.now, latest_item, mention_items),
                ReplyKind.NONE_FOUND,
                latest_before=latest_item,
                filters=filters,
                window=window,
                suggestions=["what about this week?"] if query.window else [],
            )
        items = self.items(shown)
        capped = len(results) >= MAX_RESULT_IDS
        count = answers.count_phrase(len(results), capped)
        # "exploited?" asked about a subject ranks reports of exploitation first; the heading says
        # "exploited" only when every answer is one.
        said = query if all(r.record.exploited for r in results) else dataclasses.replace(query, exploited=None)
        what = answers.subject(said, len(results))
        if window:
            heading = f"{window}: {count} {what}"
        elif state.mode == "latest":
            heading = f"Latest {what}" + (f" (newest first, {count} in all)" if len(results) > len(shown) else "")
        else:
            heading = f"{count} {what}"
        text = answers.list_answer(heading + ":", items, self.tz, self.now, more=len(results) - len(shown))
        reply = self.reply(
            text,
            ReplyKind.ANSWER,
            items=items,
            filters=filters,
            window=window,
            suggestions=self._list_suggestions(query, len(results) > len(shown)),
        )
        if state.mode == "ask":
            self._with_llm(reply, self.message.text or state.question, window)
        return reply

    def _with_llm(self, reply: Reply, question: str, window: str | None) -> None:
        """Replace the extractive text with a checked LLM answer when one is configured and succeeds."""
        llm = self.core.llm
        if llm is None or not reply.items:
            return
        result = llm.answer(
            question=question,
            records=[i.record for i in reply.items],
            now=self.now,
            tz=self.tz.key,
            window=window,
            turns=self.state.turns if self.state else (),
            other_sources={i.record.id: i.member_sources for i in reply.items},
        )
        if result.ok:
            reply.text = result.text or reply.text
            marks = [f"{i.label}. {i.record.title}: {i.stack_note}" for i in reply.items if i.stack_note]
            if marks:  # the model's words never decide what touches the stack; the matcher does
                reply.text += "\n" + "\n".join(marks)
            reply.generated = True
        else:
            log.info("extractive answer sent instead of the LLM's (%s)", result.reason)

    # -- follow-ups ------------------------------------------------------------------------------

    def more(self) -> Reply:
        state = self.state
        assert state is not None
        start = state.shown
        ids = state.result_ids[start : start + self.core.page_size]
        if not ids:
            count = len(state.result_ids)
            return self.reply(
                f"That's all: {count} {'story' if count == 1 else 'stories'} in this thread's list.", ReplyKind.NOTICE
            )
        records = self.core.store.get_many(ids)
        results = [SearchResult(records[i], 0.0, self._cluster_ids(records[i])) for i in ids if i in records]
        items = self.items(results, first_label=start + 1)
        state.shown = start + len(ids)
        remaining = len(state.result_ids) - state.shown
        total = answers.count_phrase(len(state.result_ids), len(state.result_ids) >= MAX_RESULT_IDS)
        heading = f"Stories {start + 1}–{state.shown} of {total}:"
        return self.reply(
            answers.list_answer(heading, items, self.tz, self.now, more=remaining),
            ReplyKind.ANSWER,
            items=items,
            suggestions=["more"] if remaining else [],
        )

    def select(self, index: int | None) -> Reply:
        state = self.state
        assert state is not None
        if index is None:
            record_id = state.focus_id or state.result_ids[0]
        else:
            visible = state.result_ids[: max(state.shown, 1)]
            if not -len(visible) <= index < len(visible):
                count = len(visible)
                return self.reply(
                    f"This thread's list has {count} {'story' if count == 1 else 'stories'}; "
                    f"pick a number from 1 to {count}.",
                    ReplyKind.NOTICE,
                    ephemeral=True,
                )
            record_id = visible[index]
        record = self.core.store.get(record_id)
        if record is None:
            return self.reply("That record is no longer in the store.", ReplyKind.NOTICE)
        return self.detail(record)

    def detail(self, record: ThreatRecord) -> Reply:
        if self.state is None:
            self.state = ThreadState(asked_at=self.now.isoformat(), tz=self.tz.key)
        self.state.focus_id = record.id
        members = self.core.store.cluster_members(record.cluster_id or record.id)
        _, mark = stack_chat.marked(self, record)
        return self.reply(
            (mark + "\n" if mark else "") + answers.record_detail(record, members, self.tz, self.now),
            ReplyKind.RECORD,
            focus=record,
            items=self.items([SearchResult(record, 0.0, [m.id for m in members if m.id != record.id])]),
            suggestions=[
                "what's the mitigation?",
                "which countries are affected?",
                "is it exploited?",
                "show the source",
            ],
        )

    def focus(self) -> ThreatRecord | None:
        """The record a field question is about: the one in focus, else the top of the list."""
        state = self.state
        if state is None:
            return None
        record_id = state.focus_id or (state.result_ids[0] if state.result_ids else None)
        return self.core.store.get(record_id) if record_id else None

    def _focus_prefix(self) -> str:
        """Says which story a field answer is about when the list had several and none was picked."""
        state = self.state
        if state is not None and not state.focus_id and state.shown > 1:
            return "About story 1 (say “the second one” etc. for another): "
        return ""

    def field(self, followup: FollowUp) -> Reply:
        record = self.focus()
        assert record is not None and followup.field is not None
        return self.reply(
            self._focus_prefix() + answers.field_answer(followup.field, record, self.tz, self.now),
            ReplyKind.FIELD,
            focus=record,
        )

    def source(self) -> Reply:
        record = self.focus()
        assert record is not None
        members = self.core.store.cluster_members(record.cluster_id or record.id)
        return self.reply(
            self._focus_prefix() + answers.source_answer(record, members, self.tz, self.now),
            ReplyKind.FIELD,
            focus=record,
        )

    def refine(self, followup: FollowUp) -> Reply | None:
        """The thread's question with changed filters — or None when the text names no filter."""
        state = self.state
        assert state is not None
        words = _ANAPHORA.sub(" ", followup.text)
        change = self.understand(words)
        if not is_understood(change):
            return None
        if not followup.explicit and (has_topic(change) or change.kinds):
            return None  # "any outages today?" in a thread is a new question, not "yesterday?"
        state.refinements.append(Refinement(("+" if followup.narrow else "") + words.strip(), self.now.isoformat()))
        return self.answer_list(self.thread_query(), page=self.core.page_size)

    def updates(self) -> Reply:
        """New matching stories since the thread's last list, and changes to the stories it showed."""
        state = self.state
        assert state is not None
        since = _parse_time(state.answered_at or state.asked_at, self.now)
        since_text = f"{answers.moment_label(since, self.tz, self.now)} ({self.tz.key})"
        if not state.question:  # a thread about one record (``show``): only that record's story can change
            assert state.focus_id is not None
            changed = self._changed_since([state.focus_id], since)
            state.answered_at = self.now.isoformat()
            story_updates = [f"Update to *{record.title}*: {what}." for record, what in changed]
            return self.reply(
                "\n".join(story_updates) or f"Nothing new on this story since {since_text}.", ReplyKind.UPDATES
            )
        base = self.thread_query()
        window = TimeWindow(since, self.now, f"since {answers.moment_label(since, self.tz, self.now)}")
        query = dataclasses.replace(base, window=window, until=self.now)
        fresh = [r for r in self.core.searcher.run(query, limit=MAX_RESULT_IDS) if r.record.id not in state.result_ids]
        changed = self._changed_since(state.result_ids[: state.shown] or state.result_ids[:1], since)
        state.answered_at = self.now.isoformat()
        if not fresh and not changed:
            return self.reply(
                f"Nothing new since {since_text} for {answers.subject(base, 2)}.",
                ReplyKind.UPDATES,
                filters=base.to_filters(),
            )
        lines: list[str] = []
        items: list[ReplyItem] = []
        if fresh:
            start = len(state.result_ids) + 1
            items = self.items(fresh[: self.core.page_size], first_label=start)
            state.result_ids += [r.record.id for r in fresh]
            del state.result_ids[MAX_RESULT_IDS:]
            state.shown = min(len(state.result_ids), state.shown + len(items))
            noun = answers.subject(base, len(fresh))
            lines.append(f"Since {since_text}: {len(fresh)} new {noun}:")
            lines += [answers.item_line(i, self.tz, self.now) for i in items]
        for record, what in changed:
            lines.append(f"Update to *{record.title}*: {what}.")
        return self.reply("\n".join(lines), ReplyKind.UPDATES, items=items, filters=base.to_filters())

    def _changed_since(self, ids: Sequence[str], since: datetime) -> list[tuple[ThreatRecord, str]]:
        """Listed stories that got a new report or an updated record after ``since``."""
        changed: list[tuple[ThreatRecord, str]] = []
        for record in self.core.store.get_many(list(ids)).values():
            members = self.core.store.cluster_members(record.cluster_id or record.id)
            newer = [m for m in members if m.id != record.id and m.published > since and m.id not in ids]
            notes = []
            if newer:
                notes.append(f"{len(newer)} new report(s) — " + ", ".join(f"{m.source}: {m.url}" for m in newer[:3]))
            updated = [
                m
                for m in members
                if m.id in ids and m.updated_at and m.fetched_at and m.updated_at > max(since, m.fetched_at)
            ]
            if updated:
                notes.append("the record was updated")
            if notes:
                changed.append((record, "; ".join(notes)))
        return changed

    # -- commands --------------------------------------------------------------------------------

    def show(self, target: str) -> Reply:
        target = target.strip().strip("`")
        if self.state is not None and target.isdigit() and self.state.result_ids:
            return self.select(int(target) - 1)
        record = self.core.store.get(target)
        if record is None and len(target) >= 4:
            found = self.core.store.find_by_prefix(target, limit=6)
            if len(found) > 1:
                lines = [f"Several records start with `{target}`:"]
                lines += [f"• `{r.id}` {r.title}" for r in found]
                return self.reply("\n".join(lines), ReplyKind.NOTICE, ephemeral=True)
            record = found[0] if found else None
        if record is None:
            return self.reply(
                f"No record with id `{target}`. Ids are shown under each story (e.g. `show s33r:9fe4`).",
                ReplyKind.NOTICE,
                ephemeral=True,
            )
        return self.detail(record)

    def subscribe(self, text: str) -> Reply:
        book = self.core.subscriptions
        if book is None:
            return self.reply(_NOT_CONFIGURED.format(what="subscriptions"), ReplyKind.NOTICE, ephemeral=True)
        if not self.message.can_manage:
            return self._not_allowed("subscribe this channel")
        text = " ".join(text.split())
        if not text and self.state is not None and self.state.question:
            text = self._thread_topic_text()
        if not text:
            return self.reply(
                "Subscribe to what? Give filters, e.g. `subscribe exploited fortinet` or `subscribe exchange outage`"
                " — or say `subscribe` in the thread of a question to watch for more like it.",
                ReplyKind.NOTICE,
                ephemeral=True,
            )
        mine, rest = stack_chat.strip_my_stack(text)
        if mine and not self.core.stack.has_stack(stack_chat.scope_of(self.message)):
            return self.reply(stack_chat.empty_stack_text(stack_chat.scope_of(self.message)), ReplyKind.NOTICE)
        # Feed posts in this channel are marked against its workspace's stack ("my-stack" also filters by it).
        stack_chat.bind_channel(self)
        if (rest or not mine) and not is_understood(self.understand(rest)):
            return self.reply(f"I couldn't find any filter in “{text}”.", ReplyKind.NOTICE, ephemeral=True)
        who = self.message.user_id or self.message.user_name or "unknown"
        try:
            sub = book.subscribe(
                platform=self.message.platform, channel=self.message.channel, query=text, created_by=who
            )
        except ValueError as error:  # the book refuses queries it cannot watch
            return self.reply(f"Couldn't subscribe to “{text}”: {error}", ReplyKind.NOTICE, ephemeral=True)
        paused = (
            f"\n⚠ Posts to this channel are {sub.problem}. Fix that, then say `resume`."
            if sub.status == "disabled" and sub.problem
            else ""
        )
        return self.reply(
            f"Subscribed this channel to “{sub.query}” (id `{sub.id}`): new matching stories will be posted here. "
            f"`unsubscribe {sub.id}` stops it.{paused}",
            ReplyKind.NOTICE,
        )

    def _thread_topic_text(self) -> str:
        """The thread's question and refinements as subscription filters, without time words."""
        state = self.state
        assert state is not None
        parts = [state.question, *(r.text.lstrip("+") for r in state.refinements)]
        # A subscription watches what arrives from now on: "today", "this week" would mean nothing.
        text = " ".join(parts)
        query = self.thread_query()
        if query.window is not None:
            text = without_time_phrases(text, now=self.now, tz=self.tz)
        return text

    def unsubscribe(self, target: str | None) -> Reply:
        book = self.core.subscriptions
        if book is None:
            return self.reply(_NOT_CONFIGURED.format(what="subscriptions"), ReplyKind.NOTICE, ephemeral=True)
        if not self.message.can_manage:
            return self._not_allowed("change this channel's subscriptions")
        if not target:
            return self.reply("Which one? `unsubscribe <id>` — `subscriptions` lists the ids.", ReplyKind.NOTICE)
        removed = book.unsubscribe(platform=self.message.platform, channel=self.message.channel, subscription_id=target)
        text = f"Unsubscribed `{target}`." if removed else f"This channel has no subscription `{target}`."
        return self.reply(text, ReplyKind.NOTICE)

    def list_subscriptions(self) -> Reply:
        book = self.core.subscriptions
        if book is None:
            return self.reply(_NOT_CONFIGURED.format(what="subscriptions"), ReplyKind.NOTICE, ephemeral=True)
        subs = book.subscriptions(platform=self.message.platform, channel=self.message.channel)
        if not subs:
            return self.reply(
                "This channel has no subscriptions. `subscribe <filters>` adds one.", ReplyKind.SUBSCRIPTIONS
            )
        lines = [f"This channel's subscriptions ({len(subs)}):"]
        for sub in subs:
            lines.append(
                f"• `{sub.id}` “{sub.query}” — by {sub.created_by}, {answers.day_label(sub.created_at, self.tz, self.now)}"
            )
        problem = next((s.problem for s in subs if s.status != "ok" and s.problem), None)
        if problem:
            disabled = any(s.status == "disabled" for s in subs)
            lines.append(
                f"⚠ Posts to this channel are {problem}."
                + (" Fix that, then say `resume` to post here again." if disabled else " Retrying.")
            )
        return self.reply("\n".join(lines), ReplyKind.SUBSCRIPTIONS)

    def resume(self) -> Reply:
        book = self.core.subscriptions
        if book is None:
            return self.reply(_NOT_CONFIGURED.format(what="subscriptions"), ReplyKind.NOTICE, ephemeral=True)
        if not self.message.can_manage:
            return self._not_allowed("resume this channel's feed")
        resume = getattr(book, "resume", None)
        if resume is None:
            return self.reply("Posts here cannot be paused in this mode.", ReplyKind.NOTICE, ephemeral=True)
        requeued = resume(platform=self.message.platform, channel=self.message.channel)
        if requeued < 0:
            return self.reply("Posts to this channel were not paused; nothing to resume.", ReplyKind.NOTICE)
        waiting = f" {requeued} waiting message(s) will be posted now." if requeued else ""
        return self.reply(f"Resumed: this channel's subscriptions post here again.{waiting}", ReplyKind.NOTICE)

    def list_sources(self, command: Command) -> Reply:
        registry = self.core.sources
        if registry is None:
            return self.reply(_NOT_CONFIGURED.format(what="feed sources"), ReplyKind.NOTICE, ephemeral=True)
        if command.action == "add":
            if not self.message.can_manage:
                return self._not_allowed("add sources")
            if not command.target:
                return self.reply("`sources add <url>` needs a feed URL.", ReplyKind.NOTICE, ephemeral=True)
            who = self.message.user_id or self.message.user_name or "unknown"
            try:
                status = registry.add_source(command.target, added_by=who)
            except ValueError as error:
                shown = redact_url(command.target)  # a URL with user:password@ is never echoed
                return self.reply(f"Couldn't add {shown}: {error}", ReplyKind.NOTICE, ephemeral=True)
            return self.reply(f"Added source {status.name} ({status.url}).", ReplyKind.NOTICE)
        statuses = registry.list_sources()
        if not statuses:
            return self.reply("No feed sources are configured.", ReplyKind.SOURCES)
        lines = [f"Sources ({len(statuses)}):"]
        for s in statuses:
            when = (
                f", last ok {answers.ago(s.last_success, self.tz, self.now)}" if s.last_success else ", never fetched"
            )
            problem = f" — {s.last_error}" if s.health == "failing" and s.last_error else ""
            if s.health == "disabled" and s.disabled_reason:
                problem = f" — {s.disabled_reason}"
            lines.append(f"• {s.name} [{s.health}] every {_interval(s.interval_seconds)}{when}{problem}")
        return self.reply("\n".join(lines), ReplyKind.SOURCES)

    def help(self, command: Command, note: str = "") -> Reply:
        intro = note + "\n" if note else ""
        if command.unknown:
            intro += f"I don't know the command “{command.unknown}”"
            intro += f" — did you mean `{command.text}`?\n" if command.text else ".\n"
        return self.reply(intro + help_text(command.text), ReplyKind.HELP, ephemeral=True)

    # -- helpers ---------------------------------------------------------------------------------

    def reply(self, text: str, kind: ReplyKind, **fields) -> Reply:
        return Reply(text=text, thread_key=self.key, kind=kind, **fields)

    def _not_allowed(self, what: str) -> Reply:
        return self.reply(f"Only people who manage this channel's feeds can {what}.", ReplyKind.NOTICE, ephemeral=True)

    def items(self, results: Sequence[SearchResult], first_label: int = 1) -> list[ReplyItem]:
        """Reply items with their clusters' source names (one query for all members)."""
        member_ids = [m for r in results for m in r.members]
        members = self.core.store.get_many(member_ids) if member_ids else {}
        shown = [stack_chat.marked(self, r.record) for r in results]  # the record as this workspace sees it
        return [
            ReplyItem(
                label=str(first_label + n),
                record=record,
                member_ids=list(r.members),
                member_sources=[members[m].source for m in r.members if m in members],
                stack_note=mark,
                reported_after=str(r.why.get("reported_after", "")),
            )
            for n, (r, (record, mark)) in enumerate(zip(results, shown, strict=True))
        ]

    def _cluster_ids(self, record: ThreatRecord) -> list[str]:
        return [m.id for m in self.core.store.cluster_members(record.cluster_id or record.id) if m.id != record.id]

    def _list_suggestions(self, query: StructuredQuery, more: bool) -> list[str]:
        out = ["tell me more about the first one"]
        if more:
            out.append("more")
        if query.min_severity is None:
            out.append("only critical ones")
        out.append("any updates?")
        return out

    def _is_specific(self, text: str) -> bool:
        """Whether a follow-up-shaped text also names what to search: a kind, window, vendor, product or CVE.

        Leftover words don't count: "what's the mitigation?" leaves the term "mitigation".
        """
        query = self.understand(text)
        return bool(query.kinds or query.window or query.vendors or query.products or query.cves)

    def _asks_for_a_list(self, text: str) -> bool:
        """A question over a period or the KEV catalogue ("what went into KEV this week?") asks for records,
        not for a field of the story in focus, however much it sounds like one ("… exploited …")."""
        query = self.understand(text)
        return query.window is not None or query.catalogue is not None

    def _names_other_topic(self, text: str) -> bool:
        """A field question naming a vendor, product or CVE the record in focus is not about."""
        query = self.understand(text)
        record = self.focus()
        if record is None or not (query.vendors or query.products or query.cves):
            return False
        known = {v.lower() for v in [*record.vendors, *record.products, *record.cves]}
        haystack = f"{record.title} {record.summary}".lower()
        named = [*query.vendors, *query.products, *query.cves]
        return not any(n.lower() in known or n.lower() in haystack for n in named)


# -- query helpers ---------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_time(text: str, default: datetime) -> datetime:
    try:
        return _aware(datetime.fromisoformat(text)) if text else default
    except ValueError:
        return default


def _zone(name: str) -> ZoneInfo:
    """The asker's zone; an unknown name falls back to UTC (and the answer says UTC, so nothing is hidden)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _interval(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
