"""The conversation core on the demo data and on real fixture records: wording, follow-ups, thread memory."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.conversation import Conversation
from bot.demo import demo_records, parse_age, seed_demo
from bot.messages import IncomingMessage, ReplyKind, ThreadKey
from bot.services import SourceStatus, Subscription
from bot.threads import ttl_from_env
from retrieval.records import ThreatRecord
from retrieval.store import RecordStore
from tests.conftest import needs_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "fixtures" / "corpus-2025" / "corpus.jsonl"

#: Tue 2 Jun 2026, 18:00 in Berlin: the day of the seed page's Exchange Online outage.
NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)
TZ = "Europe/Berlin"

pytestmark = needs_model


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    store = RecordStore(Settings.from_env(folder))
    seed_demo(store, NOW)
    store.close()
    return folder


@pytest.fixture(scope="module")
def core(demo_dir):
    store = RecordStore(Settings.from_env(demo_dir))
    yield Conversation(store)
    store.close()


class Chat:
    """One thread of a conversation, as an adapter would drive it."""

    def __init__(self, core: Conversation, thread: str, now: datetime = NOW, **fields) -> None:
        self.core, self.thread, self.now, self.fields = core, thread, now, fields

    def __call__(self, text: str, **fields):
        message = IncomingMessage(text, thread_id=self.thread, tz=TZ, now=self.now, **(self.fields | fields))
        return self.core.handle(message)


def _by_title(records: list[ThreatRecord], words: str) -> ThreatRecord:
    return next(r for r in records if words in r.title)


# -- demo data -----------------------------------------------------------------------------------


def test_demo_ages_are_materialised_relative_to_now() -> None:
    assert parse_age("2d6h") == timedelta(days=2, hours=6)
    with pytest.raises(ValueError):
        parse_age("3 fortnights")
    records = demo_records(NOW)
    assert 35 <= len(records) <= 45
    assert all(r.published <= NOW for r in records)
    today = _by_title(records, "Exchange Online outage causes email delays")
    assert today.published == NOW - timedelta(hours=3)
    assert all(r.url.startswith("https://demo.threatbot.example/") for r in records)


def test_seed_only_fills_an_empty_store(core) -> None:
    assert seed_demo(core.store, NOW) is None  # already seeded: nothing is mixed in twice
    assert core.store.count() == len(demo_records(NOW))


# -- answers without an LLM ----------------------------------------------------------------------


def test_exchange_outage_today_names_window_in_asker_zone_and_counts_one_incident(core) -> None:
    reply = Chat(core, "ex-today")("any Exchange outages today?")
    assert reply.kind is ReplyKind.ANSWER
    lines = reply.text.splitlines()
    assert lines[0] == "Today (Tue 2 Jun, Europe/Berlin): 1 Exchange outage:"
    assert lines[1].startswith(
        "1. *Microsoft Exchange Online outage causes email delays, failures* — 3 sources · medium"
    )
    assert "Tue 2 Jun 15:00 (3 h ago)" in lines[1]  # 13:00 UTC shown in Berlin time
    assert reply.window == "Today (Tue 2 Jun, Europe/Berlin)"
    [item] = reply.items
    assert item.source_count == 3 and set(item.member_sources) == {"The Register", "Microsoft 365 Status"}
    assert item.record.url in reply.text
    assert reply.filters["kinds"] == ["outage"]
    assert "Crypto" not in reply.text and "Bitvale" not in reply.text


def test_none_yesterday_names_the_last_earlier_match(core) -> None:
    reply = Chat(core, "ex-yesterday")("any Exchange outages yesterday?")
    assert reply.kind is ReplyKind.NONE_FOUND
    assert reply.text.splitlines()[0] == "No Exchange outages yesterday (Mon 1 Jun, Europe/Berlin)."
    assert reply.text.splitlines()[1] == (
        "The last one: *Microsoft Exchange Online outage blocks mailbox access via Outlook on the web* "
        "(BleepingComputer), Sat 30 May 16:00, 3 days ago."
    )
    assert reply.latest_before is not None and reply.latest_before.record.title.startswith("Microsoft Exchange Online")
    assert reply.items == []


def test_crypto_exchange_hack_is_found_for_crypto_questions_and_not_for_exchange_outages(core) -> None:
    crypto = Chat(core, "crypto")("crypto exchange hack")
    assert "Bitvale" in crypto.text
    exchange = Chat(core, "exchange-week")("any Exchange outages this week?")
    assert exchange.items and "Bitvale" not in exchange.text and "Nuvex" not in exchange.text


def test_crypto_exchange_never_answers_a_kindless_exchange_question(core) -> None:
    exchange = Chat(core, "exchange-any")("Exchange Online problems this week")
    assert "Bitvale" not in exchange.text and "Nuvex" not in exchange.text


def test_nothing_at_all_says_so_without_inventing_a_last_one(core) -> None:
    reply = Chat(core, "nothing")("any Okta outages today?")
    assert reply.kind is ReplyKind.NONE_FOUND
    assert reply.text.startswith("No Okta outages today (Tue 2 Jun, Europe/Berlin).")
    assert "The last one: *Okta sign-in delays" in reply.text  # 14 days back, still the latest earlier match
    none_ever = Chat(core, "nothing-2")("any Juniper outages today?")
    assert none_ever.text.endswith("None earlier in the records either.")


def test_latest_lists_newest_first_and_honours_n(core) -> None:
    reply = Chat(core, "latest")("latest 3")
    assert [i.label for i in reply.items] == ["1", "2", "3"]
    published = [i.record.published for i in reply.items]
    assert published == sorted(published, reverse=True)
    assert "say “more”" in reply.text


def test_show_by_id_prefix_and_unknown_id(core) -> None:
    record = _by_title(demo_records(NOW), "Klinikum Nordstadt hospital")
    stored = core.store.find_by_prefix(record.id[:10])[0]
    reply = Chat(core, "show")(f"show {stored.id[:10]}")
    assert reply.kind is ReplyKind.RECORD and reply.focus is not None
    assert reply.focus.id == stored.id
    assert "Impact: Emergency department closed to ambulances" in reply.text
    missing = Chat(core, "show-missing")("show tb:doesnotexist")
    assert missing.kind is ReplyKind.NOTICE and "No record with id" in missing.text


def test_unknown_input_gets_help_not_an_error(core) -> None:
    for text in ["hello", "serch fortinet", "", "help"]:
        reply = Chat(core, f"help-{text}")(text)
        assert reply.kind is ReplyKind.HELP and reply.ephemeral
        assert "`search <query>`" in reply.text
    assert "did you mean `search`" in Chat(core, "typo")("serch fortinet").text


def test_feeds_commands_without_delivery_side_say_not_configured(core) -> None:
    for text in ["subscribe fortinet", "subscriptions", "sources", "unsubscribe x"]:
        reply = Chat(core, "feeds", can_manage=True)(text)
        assert "aren't configured in this mode" in reply.text


# -- follow-ups ----------------------------------------------------------------------------------


def test_field_followups_answer_from_the_record_in_focus(core) -> None:
    chat = Chat(core, "fields")
    chat("any Exchange outages today?")
    assert chat("what's the mitigation?").text.startswith(
        "Mitigation for *Microsoft Exchange Online outage causes email delays, failures*: Remediation is in Microsoft's"
    )
    assert chat("which countries are affected?").text.endswith(": United States, Canada, Germany.")
    assert chat("is it exploited?").text == (
        "The record doesn't say *Microsoft Exchange Online outage causes email delays, failures* is exploited."
    )
    assert chat("which CVEs?").text.startswith("The record doesn't list any CVE")
    source = chat("show the source")
    assert source.text.splitlines()[1].endswith("/bleepingcomputer/microsoft-exchange-online-outage-email-delays")
    assert "The Register" in source.text and "Microsoft 365 Status" in source.text


def test_a_question_over_a_period_or_the_kev_catalogue_is_no_field_followup(core) -> None:
    chat = Chat(core, "fields-then-list")
    chat("any Exchange outages today?")
    reply = chat("what went into KEV this week?")
    assert reply.kind is not ReplyKind.FIELD
    assert "CVE-" in reply.text and "doesn't say" not in reply.text
    assert chat("is it exploited?").kind is ReplyKind.FIELD, "a plain field question still asks about the story"


def test_missing_field_is_said_plainly(core) -> None:
    chat = Chat(core, "no-countries")
    chat("any Zoom outages today?")
    reply = chat("which countries are affected?")
    assert reply.kind is ReplyKind.FIELD
    assert (
        reply.text == "The record doesn't list affected countries for *Zoom meetings failing to start for some users*."
    )
    assert chat("what's the mitigation?").text.startswith("The record doesn't list a mitigation")


def test_refinements_change_the_previous_query(core) -> None:
    chat = Chat(core, "refine")
    first = chat("exploited vulnerabilities in the last 14 days")
    assert first.kind is ReplyKind.ANSWER and len(first.items) >= 2
    critical = chat("only critical ones")
    assert critical.items and all(i.record.severity.value == "critical" for i in critical.items)
    assert critical.filters["exploited"] is True and critical.filters["min_severity"] == "critical"
    assert critical.window == first.window


def test_what_about_yesterday_moves_the_window(core) -> None:
    chat = Chat(core, "yesterday")
    assert chat("any Exchange outages today?").items
    reply = chat("what about yesterday?")
    assert reply.kind is ReplyKind.NONE_FOUND
    assert reply.text.startswith("No Exchange outages yesterday (Mon 1 Jun, Europe/Berlin).")
    assert "3 days ago" in reply.text
    # ... and "is it exploited?" is then about the last one named
    assert "Outlook on the web" in chat("is it exploited?").text


def test_what_about_another_vendor_keeps_kind_and_window(core) -> None:
    chat = Chat(core, "vendor-swap")
    chat("any Exchange outages today?")
    reply = chat("what about Cloudflare?")
    assert reply.text.startswith("Today (Tue 2 Jun, Europe/Berlin): 1 Cloudflare outage:")


def test_more_and_ordinal_selection(core) -> None:
    chat = Chat(core, "paging")
    first = chat("latest 3")
    more = chat("more")
    assert [i.label for i in more.items] == ["4", "5", "6", "7", "8"]
    assert not {i.record.id for i in more.items} & {i.record.id for i in first.items}
    second = chat("tell me more about the second one")
    assert second.kind is ReplyKind.RECORD and second.focus.id == first.items[1].record.id
    fifth = chat("the fifth one")
    assert fifth.focus.id == more.items[1].record.id
    assert chat("show 1").focus.id == first.items[0].record.id


def test_any_updates_reports_new_reports_since_the_last_answer(demo_dir, core) -> None:
    chat = Chat(core, "updates")
    chat("any Cloudflare outages today?")
    assert chat("any updates?").text.startswith("Nothing new since Tue 2 Jun 18:00 (Europe/Berlin)")
    later = NOW + timedelta(minutes=30)
    core.store.upsert(
        [
            ThreatRecord(
                title="Cloudflare outage: websites, Dashboard and API hit by elevated 500 errors worldwide",
                summary="Cloudflare says a fix is rolling out after an outage caused elevated 500 errors for websites "
                "behind its proxy and for the Cloudflare Dashboard and API.",
                published=later - timedelta(minutes=5),
                url="https://demo.threatbot.example/the-verge/cloudflare-outage-fix",
                source="The Verge",
                kind="outage",
                vendors=["Cloudflare"],
            )
        ]
    )
    reply = Chat(core, "updates", now=later)("any updates?")
    assert reply.kind is ReplyKind.UPDATES
    assert "The Verge" in reply.text and "Since Tue 2 Jun 18:00 (Europe/Berlin)" in reply.text


def test_followup_without_context_says_so(core) -> None:
    reply = Chat(core, "fresh-thread")("what's the mitigation?")
    assert reply.kind is ReplyKind.NOTICE and "no earlier answer" in reply.text


# -- thread memory -------------------------------------------------------------------------------


def test_thread_state_survives_a_restart(demo_dir) -> None:
    first = RecordStore(Settings.from_env(demo_dir))
    Conversation(first).handle(IncomingMessage("ransomware attack on a hospital", thread_id="persist", tz=TZ, now=NOW))
    first.close()
    second = RecordStore(Settings.from_env(demo_dir))
    try:
        reply = Conversation(second).handle(
            IncomingMessage("which countries are affected?", thread_id="persist", tz=TZ, now=NOW + timedelta(hours=1))
        )
    finally:
        second.close()
    assert reply.text == (
        "Countries named for *Ransomware attack forces Klinikum Nordstadt hospital to divert ambulances*: Germany."
    )


def test_threads_are_keyed_by_platform_channel_and_thread(core) -> None:
    Chat(core, "shared-id", platform="slack", channel="C1")("any Exchange outages today?")
    other = Chat(core, "shared-id", platform="discord", channel="C1")("which countries are affected?")
    assert other.kind is ReplyKind.NOTICE  # same thread id, other platform: no context


def test_threads_expire_after_the_ttl(demo_dir, monkeypatch) -> None:
    monkeypatch.setenv("THREATBOT_THREAD_TTL_HOURS", "2")
    assert ttl_from_env() == timedelta(hours=2)
    store = RecordStore(Settings.from_env(demo_dir))
    try:
        core = Conversation(store)
        Chat(core, "ttl")("any Exchange outages today?")
        assert Chat(core, "ttl", now=NOW + timedelta(hours=1))("is it exploited?").kind is ReplyKind.FIELD
        expired = Chat(core, "ttl", now=NOW + timedelta(hours=3, minutes=1))("is it exploited?")
        assert expired.kind is ReplyKind.NOTICE and "no earlier answer" in expired.text
    finally:
        store.close()
    monkeypatch.setenv("THREATBOT_THREAD_TTL_HOURS", "soon")
    with pytest.raises(ValueError, match="THREATBOT_THREAD_TTL_HOURS"):
        ttl_from_env()


def test_new_thread_without_id_gets_one_and_can_be_rebound(core) -> None:
    reply = core.handle(IncomingMessage("search citrix", platform="slack", channel="C9", tz=TZ, now=NOW))
    assert reply.thread_key.thread.startswith("new-")
    posted = ThreadKey("slack", "C9", "1717340000.000100")
    assert core.rebind_thread(reply.thread_key, posted, now=NOW)
    follow = core.handle(
        IncomingMessage(
            "what's the mitigation?", platform="slack", channel="C9", thread_id=posted.thread, tz=TZ, now=NOW
        )
    )
    assert "kill all active and persistent sessions" in follow.text


# -- subscriptions and sources through the service protocols -------------------------------------


class FakeBook:
    def __init__(self) -> None:
        self.items: list[Subscription] = []

    def subscribe(self, *, platform, channel, query, created_by):
        sub = Subscription(f"s{len(self.items) + 1}", platform, channel, query, created_by, NOW)
        self.items.append(sub)
        return sub

    def unsubscribe(self, *, platform, channel, subscription_id):
        before = len(self.items)
        self.items = [s for s in self.items if not (s.id == subscription_id and s.channel == channel)]
        return len(self.items) < before

    def subscriptions(self, *, platform, channel):
        return [s for s in self.items if s.platform == platform and s.channel == channel]


class FakeSources:
    def list_sources(self):
        return [
            SourceStatus(
                "CISA KEV",
                "https://cisa.example/kev.json",
                "kev",
                True,
                "ok",
                3600,
                last_success=NOW - timedelta(hours=2),
            ),
            SourceStatus("Broken feed", "https://x.example/rss", "rss", True, "failing", 900, last_error="HTTP 503"),
        ]

    def add_source(self, url, *, added_by, name=None):
        if not url.startswith("https://"):
            raise ValueError("only https feeds")
        return SourceStatus(name or "New feed", url, "rss", True, "new", 900)


def test_subscribe_needs_rights_and_uses_the_thread_topic_without_time_words(core) -> None:
    book = FakeBook()
    managed = Conversation(core.store, threads=core.threads, subscriptions=book, sources=FakeSources())
    refused = Chat(managed, "subs", channel="C2")("subscribe fortinet")
    assert refused.ephemeral and "Only people who manage" in refused.text and not book.items
    chat = Chat(managed, "subs", channel="C2", can_manage=True, user_id="U1")
    chat("any Exchange outages today?")
    reply = chat("subscribe")
    assert book.items[0].query == "any Exchange outages" and book.items[0].created_by == "U1"
    assert "`unsubscribe s1`" in reply.text
    assert "“any Exchange outages”" in chat("subscriptions").text
    assert chat("unsubscribe s1").text == "Unsubscribed `s1`."
    assert chat("unsubscribe s1").text == "This channel has no subscription `s1`."


def test_sources_lists_health_and_add_checks_rights(core) -> None:
    managed = Conversation(core.store, threads=core.threads, sources=FakeSources())
    listing = Chat(managed, "src")("sources").text
    assert "• CISA KEV [ok] every 1 h, last ok 2 h ago" in listing
    assert "• Broken feed [failing] every 15 min, never fetched — HTTP 503" in listing
    assert "Only people who manage" in Chat(managed, "src")("sources add https://n.example/rss").text
    added = Chat(managed, "src", can_manage=True)("sources add https://n.example/rss")
    assert added.text == "Added source New feed (https://n.example/rss)."
    assert "only https feeds" in Chat(managed, "src", can_manage=True)("sources add http://n.example/rss").text


def test_an_internal_failure_is_an_apology_not_a_crash(core) -> None:
    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("index gone")

    broken = Conversation(core.store, searcher=Broken(), threads=core.threads)
    reply = Chat(broken, "broken")("any Exchange outages today?")
    assert reply.kind is ReplyKind.NOTICE and "something went wrong" in reply.text


# -- real fixture data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_core(tmp_path_factory):
    if not CORPUS.is_file():
        pytest.skip("../shared/fixtures/corpus-2025 is not present")
    wanted: list[ThreatRecord] = []
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            data = json.loads(line)
            if not "2026-01-05" <= data["published"] < "2026-01-10":
                continue
            title = data["title"].lower()
            github = data["source"] == "GitHub Status"
            if github or "exchange" in title:
                wanted.append(ThreatRecord.model_validate(data))
    assert 10 <= len(wanted) <= 60
    store = RecordStore(Settings.from_env(tmp_path_factory.mktemp("corpus")))
    store.upsert(wanted)
    yield Conversation(store)
    store.close()


def test_real_github_status_incidents_yesterday_and_none_today(corpus_core) -> None:
    asked = datetime(2026, 1, 9, 9, 0, tzinfo=UTC)  # Fri 9 Jan, 10:00 in Berlin
    chat = Chat(corpus_core, "gh", now=asked)
    yesterday = chat("any GitHub outages yesterday?")
    assert yesterday.text.splitlines()[0] == "Yesterday (Thu 8 Jan, Europe/Berlin): 1 GitHub outage:"
    assert "*Incident with Copilot*" in yesterday.text and "GitHub Status · medium" in yesterday.text
    today = chat("what about today?")
    assert today.kind is ReplyKind.NONE_FOUND
    assert today.text.splitlines()[0] == "No GitHub outages today (Fri 9 Jan, Europe/Berlin)."
    assert today.text.splitlines()[1].startswith(
        "The last one: *Incident with Copilot* (GitHub Status), Thu 8 Jan 01:45"
    )


def test_real_exchange_online_story_and_a_field_it_lacks(corpus_core) -> None:
    asked = datetime(2026, 1, 9, 9, 0, tzinfo=UTC)
    chat = Chat(corpus_core, "exo", now=asked)
    reply = chat("Exchange Online news this week")
    titles = [i.record.title for i in reply.items]
    imap = "Microsoft Exchange Online outage blocks access to mailboxes via IMAP4"
    assert imap in titles
    assert not any("crypto" in t.lower() or "bitcoin" in t.lower() for t in titles)
    assert reply.text.startswith("This week (Mon 5 Jan – Fri 9 Jan, Europe/Berlin): ")
    chat(f"show {titles.index(imap) + 1}")
    assert chat("which countries are affected?").text == f"The record doesn't list affected countries for *{imap}*."
    assert chat("is it exploited?").text == f"The record doesn't say *{imap}* is exploited."


def test_reply_items_are_immutable_records(core) -> None:
    reply = Chat(core, "immutable")("any Exchange outages today?")
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass: FrozenInstanceError
        reply.items[0].label = "9"  # type: ignore[misc]
    assert replace(reply.items[0], label="9").label == "9"


def test_structured_command_from_options_is_handled_like_text(core) -> None:
    from bot.commands import Command

    message = IncomingMessage(
        "", thread_id="opts", tz=TZ, now=NOW, command=Command.from_options("latest", {"count": 2})
    )
    reply = core.handle(message)
    assert reply.kind is ReplyKind.ANSWER and [i.label for i in reply.items] == ["1", "2"]
    assert core.handle(IncomingMessage("more", thread_id="opts", tz=TZ, now=NOW)).items[0].label == "3"


def test_parallel_threads_do_not_interfere(core) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def conversation(n: int) -> str:
        chat = Chat(core, f"parallel-{n}")
        chat("any Exchange outages today?" if n % 2 else "ransomware attack on a hospital")
        return chat("which countries are affected?").text

    with ThreadPoolExecutor(max_workers=6) as pool:
        texts = list(pool.map(conversation, range(12)))
    assert all(t.endswith(": United States, Canada, Germany.") for t in texts[1::2])
    assert all(t.endswith(": Germany.") for t in texts[::2])


def test_updates_on_a_shown_record_watch_its_story(core) -> None:
    record = _by_title(demo_records(NOW), "Northwind Outfitters")
    stored = core.store.find_by_prefix(record.id)[0]
    chat = Chat(core, "show-updates")
    chat(f"show {stored.id}")
    assert chat("any updates?").text.startswith("Nothing new on this story since Tue 2 Jun 18:00 (Europe/Berlin).")


def test_a_service_failing_as_the_asker_speaks_is_a_question_about_now(core) -> None:
    reply = Chat(core, "exo-down")("exchange online down?? users cant load mail")
    assert reply.window is not None and reply.window.startswith("Right now (past 48 hours) (")
    assert [i.record.title for i in reply.items][:1] == [
        "Microsoft Exchange Online outage causes email delays, failures"
    ]
    assert all("30 May" not in line for line in reply.text.splitlines()[:2]), "Saturday's outage is not now"


def test_none_right_now_says_the_window_once() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot import answers
    from retrieval.query import parse_query

    now = datetime(2026, 2, 10, 16, 0, tzinfo=UTC)
    query = parse_query("teams down??", now=now, tz="UTC")
    head = answers.none_answer(query, ZoneInfo("UTC"), now, None).splitlines()[0]
    assert head.startswith("No Teams outages right now (past 48 hours) (Sun 8 Feb – Tue 10 Feb, UTC)."), head
    assert head.count("past 48 hours") == 1


def test_a_heading_says_exploited_only_when_every_answer_reports_exploitation(core) -> None:
    reply = Chat(core, "exo-exploited")("exchange online outage today - exploited?")
    assert reply.items, reply.text
    assert "exploited" not in reply.text.splitlines()[0], reply.text.splitlines()[0]


def test_a_heading_names_only_words_that_can_be_a_topic() -> None:
    from datetime import UTC, datetime

    from bot import answers
    from retrieval.query import parse_query

    now = datetime(2026, 2, 10, 16, 0, tzinfo=UTC)
    assert "went" not in answers.subject(parse_query("what went into KEV this week?", now=now), 2)
    assert answers.subject(parse_query("ransomware on hospitals", now=now), 2).endswith("about “hospitals”")


def test_a_late_report_says_beside_its_date_which_window_it_came_after() -> None:
    from zoneinfo import ZoneInfo

    from bot.answers import item_line
    from bot.messages import ReplyItem

    record = ThreatRecord(
        title="Patch QuokkaDB now", summary="", published=NOW - timedelta(days=1), url="https://x.example/q", source="X"
    )
    late = item_line(ReplyItem("2", record, reported_after="Friday"), ZoneInfo(TZ), NOW)
    assert "(yesterday), reported after Friday" in late
    assert "reported after" not in item_line(ReplyItem("2", record), ZoneInfo(TZ), NOW)
