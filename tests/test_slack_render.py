"""Block Kit rendering: Slack's limits for any record (the longest real ones and worse), escaping, times.

The limits are checked twice: by slack_sdk's own model validation (inside the renderer) and here,
independently, on the dicts that would be sent — including the 50-block limit nothing else checks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.slack.mrkdwn import escape, escaped_clip, link, mentions, to_plain, utf16_len
from adapters.slack.render import (
    Action,
    Viewer,
    action_of,
    entries,
    parse_value,
    render_digest,
    render_incident,
    render_reply,
    render_update,
)
from adapters.slack.store import reply_from_json, reply_to_json
from bot.delivery.base import Digest, FieldChange, IncidentPost, IncidentUpdate
from bot.messages import Reply, ReplyItem, ReplyKind, ThreadKey
from retrieval.records import Kind, Severity, ThreatRecord
from tests.fakes.slack_api import block_errors

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "fixtures" / "corpus-2025" / "corpus.jsonl"
NOW = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
KEY = ThreadKey("slack", "C1", "new-abc")


# -- an independent check of Slack's limits on the dicts ---------------------------------------------


def limit_problems(blocks: list[dict]) -> list[str]:
    """Every way ``blocks`` break Slack's published limits (empty: fine): the fake Slack's rules, and these."""
    problems = list(block_errors(blocks))
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks > 50")
    for n, block in enumerate(blocks):
        kind = block["type"]
        if kind == "section":
            text = block.get("text", {}).get("text", "")
            if not 1 <= utf16_len(text) <= 3000:
                problems.append(f"block {n}: section text of {utf16_len(text)}")
            for f in block.get("fields", []):
                if utf16_len(f["text"]) > 2000:
                    problems.append(f"block {n}: field of {utf16_len(f['text'])}")
            accessory = block.get("accessory")
            if accessory and accessory["type"] == "overflow":
                if not 2 <= len(accessory["options"]) <= 5:
                    problems.append(f"block {n}: overflow with {len(accessory['options'])} options")
                for option in accessory["options"]:
                    if utf16_len(option["text"]["text"]) > 75 or len(option["value"]) > 150:
                        problems.append(f"block {n}: overflow option too long")
        elif kind == "header":
            if utf16_len(block["text"]["text"]) > 150:
                problems.append(f"block {n}: header of {utf16_len(block['text']['text'])}")
        elif kind == "actions":
            if len(block["elements"]) > 25:
                problems.append(f"block {n}: {len(block['elements'])} actions")
            for element in block["elements"]:
                if utf16_len(element["text"]["text"]) > 75:
                    problems.append(f"block {n}: button text of {utf16_len(element['text']['text'])}")
                if len(element.get("value", "")) > 2000:
                    problems.append(f"block {n}: button value of {len(element['value'])}")
        elif kind == "context":
            if not 1 <= len(block["elements"]) <= 10:
                problems.append(f"block {n}: context with {len(block['elements'])} elements")
            for element in block["elements"]:
                if utf16_len(element["text"]) > 3000:
                    problems.append(f"block {n}: context text of {utf16_len(element['text'])}")
    return problems


def all_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def record(**fields) -> ThreatRecord:
    data = {
        "title": "A story",
        "published": NOW - timedelta(hours=3),
        "source": "Example News",
        "url": "https://example.org/a",
    }
    return ThreatRecord.model_validate(data | fields)


def answer(records: list[ThreatRecord], **fields) -> Reply:
    items = [ReplyItem(str(n), r, [], ["Other Source"] if n % 2 else []) for n, r in enumerate(records, 1)]
    text = "Today: stories:\n" + "\n".join(
        f"{i.label}. *{i.record.title}* — x\n   {i.record.url}\n   id `{i.record.id}`" for i in items
    )
    return Reply(text=text, thread_key=KEY, kind=ReplyKind.ANSWER, items=items, **fields)


def post_of(r: ThreatRecord, *members: ThreatRecord, subscriptions=("exploited fortinet",)) -> IncidentPost:
    return IncidentPost(f"post:slack:C1:{r.id}", r.id, r, (r, *members), tuple(subscriptions), "slack", (r.id,))


# -- the longest real records ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def longest() -> dict[str, ThreatRecord]:
    """corpus-2025's record with the longest title, summary, body, URL, CVE list and product list."""
    if not CORPUS.is_file():
        pytest.skip("../shared/fixtures/corpus-2025 is not present")
    best: dict[str, tuple[int, dict]] = {}
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            data = json.loads(line)
            for name in ("title", "summary", "body", "url", "cves", "products", "impact", "mitigation"):
                size = len(data.get(name) or "")
                if size > best.get(name, (0, {}))[0]:
                    best[name] = (size, data)
    return {name: ThreatRecord.model_validate(data) for name, (_, data) in best.items()}


def test_the_longest_real_records_fit_every_layout(longest) -> None:
    assert len(longest["title"].title) > 400 and len(longest["cves"].cves) > 300  # the fixture is what we think
    records = list(longest.values())
    reply = answer(records[:5], suggestions=["tell me more about the first one", "more", "only critical ones"])
    viewer = Viewer(NOW, BERLIN)
    layouts = {
        "list": render_reply(reply, card="c0ffee", viewer=viewer, shareable=True),
        "list, expanded": render_reply(reply, card="c0ffee", viewer=viewer, shareable=True, expanded=1),
        "list, shared": render_reply(reply, card="c0ffee", viewer=Viewer(NOW), shared_by="U123"),
        "digest": render_digest(Digest("d1", tuple(post_of(r) for r in records)), card="c0ffee", now=NOW),
    }
    for name, r in longest.items():
        item = ReplyItem("1", r, ["x"], ["Another Source"])
        layouts[f"record {name}"] = render_reply(
            Reply(r.title, KEY, ReplyKind.RECORD, items=[item], focus=r, suggestions=["what's the mitigation?"]),
            card="c0ffee",
            viewer=viewer,
            shareable=True,
        )
        layouts[f"post {name}"] = render_incident(post_of(r, record(source="KEV")), card="c0ffee", now=NOW)
        update = IncidentUpdate("u1", r.id, r, (r,), (FieldChange("severity", "high", "critical"),), True, "slack")
        layouts[f"update {name}"] = render_update(update, card="c0ffee", now=NOW)
    for name, message in layouts.items():
        assert limit_problems(message.blocks) == [], name
        assert utf16_len(message.text) <= 3000, name
    # The long title is clipped, not dropped; the CVE list says how many it left out.
    cves = longest["cves"]
    text = all_text(layouts["record cves"].blocks)
    assert cves.cves[0] in text and "more)" in text
    header = layouts["record title"].blocks[0]
    assert header["type"] == "header" and header["text"]["text"].endswith("…")


def test_pathological_records_still_fit() -> None:
    huge = record(
        title="🔥 Fortinet <b>&amp</b> " * 600,
        summary="word " * 30000,
        url="https://example.org/" + "a" * 5000,
        source="S" * 3000,
        cves=[f"CVE-2025-{n:05d}" for n in range(2000)],
        vendors=["V" * 500] * 3,
        products=[f"Product {n}" for n in range(500)],
        countries=["Atlantis"] * 2,
        impact="i " * 5000,
        mitigation="m " * 5000,
        severity="critical",
        exploited=True,
    )
    members = tuple(record(id=f"m{n}", title=f"member {n}", source=f"Source {n} " * 20) for n in range(40))
    reply = answer([huge] * 20, suggestions=["s" * 500] * 40)
    for message in (
        render_reply(reply, card="c", viewer=Viewer(NOW, BERLIN), shareable=True),
        render_reply(reply, card="c", viewer=Viewer(NOW), expanded=3),
        render_reply(Reply("x" * 200_000, KEY, ReplyKind.HELP), card="c", viewer=Viewer(NOW)),
        render_reply(Reply(("line " * 100 + "\n") * 2000, KEY, ReplyKind.SOURCES), card="c", viewer=Viewer(NOW)),
        render_incident(post_of(huge, *members), card="c", now=NOW),
        render_digest(Digest("d", tuple(post_of(huge) for _ in range(200)), ("q" * 5000,)), card="c", now=NOW),
    ):
        assert limit_problems(message.blocks) == []


def test_many_stories_fall_back_to_compact_lines_then_say_how_many_are_missing() -> None:
    stories = [record(id=f"r{n}", title=f"Story {n}") for n in range(20)]
    full = render_reply(answer(stories[:5]), card="c", viewer=Viewer(NOW))
    assert sum(b["type"] == "actions" for b in full.blocks) == 5  # a button row per story
    compact = render_reply(answer(stories), card="c", viewer=Viewer(NOW))
    overflow = [b for b in compact.blocks if b.get("accessory", {}).get("type") == "overflow"]
    assert len(overflow) == 20 and len(compact.blocks) <= 50
    values = {o["value"] for b in overflow for o in b["accessory"]["options"]}
    assert "d|c:19" in values and "u|c:0" in values
    digest = render_digest(Digest("d", tuple(post_of(r) for r in stories * 5)), card="c", now=NOW)
    assert len(digest.blocks) == 50
    assert "…and 53 more stories not shown here." in all_text(digest.blocks)


# -- nothing in a record can mention, broadcast or link ------------------------------------------------


def test_record_text_cannot_inject_mentions_or_links() -> None:
    evil = record(
        title="<!channel> patch now <@U999> <https://evil.example|click> & more",
        summary="@here @everyone read <!subteam^S1|@admins> <#C1|general>",
        source="<@U777>",
        url="javascript:alert(1)",
        cves=["<!here>"],
    )
    reply = answer([evil])
    messages = [
        render_reply(reply, card="c", viewer=Viewer(NOW), shareable=True),
        render_reply(reply, card="c", viewer=Viewer(NOW), expanded=0),
        render_incident(post_of(evil), card="c", now=NOW),
        render_update(IncidentUpdate("u", evil.id, evil, (evil,), (), True), card="c", now=NOW),
        render_digest(Digest("d", (post_of(evil),)), card="c", now=NOW),
    ]
    for message in messages:
        text = message.text + all_text(message.blocks)
        for forbidden in (
            "<!channel>",
            "<@U999>",
            "<@U777>",
            "<https://evil",
            "<!subteam",
            "<#C1",
            "<!here>",
            "<javascript:",
        ):
            assert forbidden not in text, forbidden
        assert "@here" not in text and "@everyone" not in text  # broken by a word joiner
        assert "&lt;!channel&gt;" in text
    assert mentions(json.dumps(messages[0].blocks)) == []


def test_escaping_and_clipping_never_split_an_entity_or_a_surrogate() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    for n in range(1, 40):
        clipped = escaped_clip("&<>" * 50 + "🔥" * 50, n)
        assert utf16_len(clipped) <= n
        assert not clipped.rstrip("…").endswith(("&", "&a", "&am", "&l", "&g"))
        clipped.encode("utf-16-le")  # no lone surrogate
    assert link("https://x.example/a|b c>d", "T") == "<https://x.example/a%7Cb%20c%3Ed|T>"
    assert link("https://x.example/?a=1&b=2", "T") == "<https://x.example/?a=1&amp;b=2|T>"
    assert link("ftp://x.example/", "Label & co") == "Label &amp; co"


def test_incoming_text_is_read_as_typed() -> None:
    text = (
        "<@UBOT> any <https://example.org/feed.xml|example.org/feed.xml> news for <#C1|ops> &amp; <@U2|ana>? &lt;b&gt;"
    )
    assert to_plain(text, bot_user_id="UBOT") == "any https://example.org/feed.xml news for #ops & @ana? <b>"
    assert to_plain("<!here> <mailto:a@b.c|a@b.c>") == "@here a@b.c"
    assert mentions("hi <@U1> and <@W2|bob>") == ["U1", "W2"]


# -- times --------------------------------------------------------------------------------------------


def test_private_times_are_in_the_askers_zone_and_shared_ones_in_each_viewers() -> None:
    r = record(published=datetime(2026, 2, 11, 13, 5, tzinfo=UTC))
    private = all_text(render_reply(answer([r]), card="c", viewer=Viewer(NOW, ZoneInfo("Asia/Tokyo"))).blocks)
    assert "yesterday · Wed 11 Feb 22:05 JST" in private  # already Thursday in Tokyo
    berlin = all_text(render_reply(answer([r]), card="c", viewer=Viewer(NOW, BERLIN)).blocks)
    assert "2 h ago · Wed 11 Feb 14:05 CET" in berlin
    shared = all_text(render_reply(answer([r]), card="c", viewer=Viewer(NOW)).blocks)
    stamp = int(r.published.timestamp())
    assert f"<!date^{stamp}^{{ago}} · {{date_short_pretty}} {{time}}|Wed 11 Feb 13:05 UTC>" in shared


# -- structure ----------------------------------------------------------------------------------------


def test_buttons_carry_the_card_and_the_story_index() -> None:
    stories = [record(id=f"r{n}", title=f"Story {n}") for n in range(3)]
    reply = answer(stories, suggestions=["more", "only critical ones"])
    message = render_reply(reply, card="abc123", viewer=Viewer(NOW), shareable=True)
    buttons = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    by_action: dict[str, list[str]] = {}
    for button in buttons:
        by_action.setdefault(action_of(button["action_id"]) or button["action_id"], []).append(button["value"])
    assert by_action[Action.DETAILS] == ["abc123:0", "abc123:1", "abc123:2"]
    assert by_action[Action.VOTE_UP] == by_action[Action.VOTE_DOWN] == by_action[Action.DETAILS]
    assert by_action[Action.SUGGEST] == ["abc123:0", "abc123:1"]
    assert by_action[Action.SHARE] == ["abc123:0"]
    assert parse_value("abc123:2") == ("abc123", 2)
    with pytest.raises(ValueError):
        parse_value("nonsense")
    # The list text is shown as cards, not twice; the heading stays.
    assert message.blocks[0]["text"]["text"] == "Today: stories:"
    assert all_text(message.blocks).count("Story 1") == 1


def test_none_found_offers_the_last_earlier_match() -> None:
    last = ReplyItem("1", record(title="Old outage"), [], [])
    reply = Reply("No outages today. The last one: *Old outage*", KEY, ReplyKind.NONE_FOUND, latest_before=last)
    assert entries(reply) == [last]
    message = render_reply(reply, card="c", viewer=Viewer(NOW), shareable=True)
    values = [e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "c:0" in values


def test_incident_post_shows_the_worst_facts_of_its_reports() -> None:
    news = record(title="Fortinet bug", severity="high", kind=Kind.VULNERABILITY)
    kev = record(id="kev1", title="KEV entry", source="CISA KEV", severity="critical", exploited=True)
    message = render_incident(post_of(news, kev), card="c", now=NOW)
    top = message.blocks[0]["text"]["text"]
    assert top.startswith("🔴 *<https://example.org/a|Fortinet bug>*")
    assert "*Critical*" in top and "🔥 *exploited*" in top and "2 sources: Example News, CISA KEV" in top
    assert "Matches “exploited fortinet”" in all_text(message.blocks)
    assert message.text.startswith("Critical · exploited: Fortinet bug")
    assert Severity.CRITICAL.value in message.text.lower()


def test_cards_round_trip_through_json() -> None:
    reply = answer([record(body="b" * 5000, cves=["CVE-2025-1"])], suggestions=["more"], window="Today", generated=True)
    back = reply_from_json(reply_to_json(reply))
    assert back.items[0].record.body is None  # bodies are not kept
    assert back.items[0].record.cves == ["CVE-2025-1"] and back.suggestions == ["more"]
    assert (back.kind, back.thread_key, back.window, back.generated) == (reply.kind, KEY, "Today", True)


def test_a_late_report_says_on_its_card_which_window_it_came_after() -> None:
    late, on_time = record(id="late", title="Monday write-up"), record(id="ontime", title="Friday story")
    reply = answer([on_time, late])
    reply = replace(reply, items=[reply.items[0], replace(reply.items[1], reported_after="Friday <&>")])
    message = render_reply(reply, card="c1", viewer=Viewer(NOW))
    cards = [b["text"]["text"] for b in message.blocks if b["type"] == "section" and "write-up" in b["text"]["text"]]
    assert len(cards) == 1 and " · reported after Friday &lt;&amp;&gt;" in cards[0]
    assert "reported after" not in all_text([b for b in message.blocks if "Friday story" in json.dumps(b)])
    assert block_errors(message.blocks) == [] and limit_problems(message.blocks) == []
    # A card re-rendered from the stored reply ("Details", votes) keeps the mark.
    assert reply_from_json(reply_to_json(reply)).items[1].reported_after == "Friday <&>"
