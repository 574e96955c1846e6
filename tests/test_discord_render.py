"""Rendering for Discord: embeds stay inside Discord's limits for any record, and record text never pings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest

from adapters.discord import limits
from adapters.discord.limits import clip, join_within, pack, split_text
from adapters.discord.render import (
    SEVERITY_COLOURS,
    discord_markdown,
    render_digest,
    render_incident,
    render_reply,
    render_update,
    thread_name,
)
from bot.delivery.base import Digest, FieldChange, IncidentPost, IncidentUpdate
from bot.messages import Reply, ReplyItem, ReplyKind, ThreadKey
from retrieval.records import Severity, ThreatRecord
from tests.fakes.discord_api import message_problems

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "corpus-2025" / "corpus.jsonl"
NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)


def payload(message: limits.OutgoingMessage) -> dict:
    return {"content": message.content, "embeds": [e.to_dict() for e in message.embeds]}


def record(**fields) -> ThreatRecord:
    base = {"title": "A story", "published": NOW - timedelta(hours=3), "url": "https://example.org/a", "source": "Src"}
    return ThreatRecord(**{**base, **fields})


def post_of(headline: ThreatRecord, members: tuple[ThreatRecord, ...] = (), subs: tuple[str, ...] = ()) -> IncidentPost:
    return IncidentPost(f"post:discord:1:{headline.id}", headline.id, headline, (headline, *members), subs, "discord")


@pytest.fixture(scope="module")
def longest() -> dict[str, ThreatRecord]:
    """The corpus records with the longest title, summary, body and URL, and the most CVEs and products."""
    if not CORPUS.is_file():
        pytest.skip("../shared/fixtures is not present")
    best: dict[str, tuple[int, dict]] = {}
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            data = json.loads(line)
            for key in ("title", "summary", "body", "url", "cves", "products"):
                size = len(data.get(key) or "")
                if size > best.get(key, (-1, {}))[0]:
                    best[key] = (size, data)
    return {key: ThreatRecord.model_validate(data) for key, (_, data) in best.items()}


# -- limits -----------------------------------------------------------------------------------------------


def test_the_longest_fixture_records_fit_discords_limits_as_posts_updates_and_digests(longest) -> None:
    assert len(longest["title"].title) > limits.TITLE  # the fixture really is too long for a title
    assert len(longest["cves"].cves) > 100
    everything = list(longest.values())
    for rec in everything:
        members = tuple(r for r in everything if r is not rec)
        post = post_of(rec, members, subs=("x" * 3000,))
        update = IncidentUpdate(
            f"update:{rec.id}",
            rec.id,
            rec,
            members,
            (FieldChange("cves", [], rec.cves), FieldChange("severity", "high", "critical")),
            new_source=True,
        )
        for message in (render_incident(post), render_update(update)):
            assert message_problems(payload(message)) == [], rec.id
            assert message.problems() == []
    digest = Digest("digest:1", tuple(post_of(r) for r in everything * 12), ("y" * 500,))
    message = render_digest(digest)
    assert message_problems(payload(message)) == []
    assert "more — `/threat latest` lists them" in message.embeds[-1].description


def test_long_values_are_clipped_whole_items_first(longest) -> None:
    embed = render_incident(post_of(longest["cves"])).embeds[0]
    cves = next(f for f in embed.fields if f.name.startswith("CVEs"))
    assert cves.name == f"CVEs ({len(longest['cves'].cves)})"
    shown = cves.value.rsplit(" +", 1)[0].split(", ")
    assert all(c in longest["cves"].cves for c in shown)  # no CVE id cut in half
    assert cves.value.endswith(f" +{len(longest['cves'].cves) - len(shown)} more")
    title = render_incident(post_of(longest["title"])).embeds[0].title
    assert len(title) <= limits.TITLE and title.endswith("…")


def test_clip_join_and_split_respect_their_limits() -> None:
    assert clip("short", 10) == "short"
    assert clip("alpha beta gamma delta epsilon", 20) == "alpha beta gamma…"
    assert join_within(["a", "b", "c"], 100) == "a, b, c"
    assert join_within(["alpha", "beta", "gamma", "delta"], 20) == "alpha, beta +2 more"
    assert len(join_within(["x" * 50], 20)) <= 20
    pieces = split_text("\n".join(f"line {n} " + "w" * 80 for n in range(60)))
    assert all(len(p) <= limits.CONTENT for p in pieces) and len(pieces) > 1
    assert pieces[1].startswith("line ")  # split at a line end


def test_pack_spreads_embeds_over_messages_within_count_and_total() -> None:
    embeds = [discord.Embed(title=f"t{n}", description="d" * 1400) for n in range(12)]
    messages = pack("hello", embeds)
    assert [len(m.embeds) for m in messages] == [4, 4, 4]
    assert messages[0].content == "hello" and all(m.problems() == [] for m in messages)
    assert len(pack("", [discord.Embed(title=str(n)) for n in range(23)])) == 3


# -- feed look ----------------------------------------------------------------------------------------------


def test_an_incident_embed_links_colours_cites_sources_and_uses_discord_timestamps() -> None:
    head = record(
        title="Fortinet FortiOS SSL-VPN flaw exploited",
        severity=Severity.CRITICAL,
        exploited=True,
        cves=["CVE-2026-1000"],
        vendors=["Fortinet"],
        summary="Attackers exploit a heap overflow.",
    )
    other = record(title="CISA adds FortiOS flaw to KEV", source="CISA KEV", url="https://cisa.gov/kev")
    embed = render_incident(post_of(head, (other,), subs=("exploited fortinet",))).embeds[0]
    assert embed.url == head.url and embed.colour.value == SEVERITY_COLOURS[Severity.CRITICAL]
    fields = {f.name: f.value for f in embed.fields}
    stamp = int(head.published.timestamp())
    assert fields["Published"] == f"<t:{stamp}:f> (<t:{stamp}:R>)"
    assert fields["Sources (2)"] == "[Src](https://example.org/a), [CISA KEV](https://cisa.gov/kev)"
    assert fields["Severity"] == "Critical · **exploited**"
    assert fields["CVEs (1)"] == "CVE-2026-1000" and fields["Affects"] == "Fortinet"
    assert embed.footer.text == f"id {head.id} · matched “exploited fortinet”"
    low = render_incident(post_of(record(severity=Severity.LOW))).embeds[0]
    assert low.colour.value == SEVERITY_COLOURS[Severity.LOW] != embed.colour.value


def test_updates_say_what_changed() -> None:
    rec = record(title="Exchange outage", severity=Severity.CRITICAL, source="Microsoft", url="https://ms.example/x")
    update = IncidentUpdate(
        "u1", rec.id, rec, (rec,), (FieldChange("severity", "high", "critical"), FieldChange("exploited", False, True))
    )
    embed = render_update(update).embeds[0]
    assert embed.title == "Update: Exchange outage"
    assert embed.description.splitlines() == ["**Severity**: high → critical", "**Exploited**: no → yes"]
    fresh = IncidentUpdate("u2", rec.id, rec, (rec,), (), new_source=True)
    assert render_update(fresh).embeds[0].description == (
        "New report from **Microsoft**: [Exchange outage](https://ms.example/x)"
    )


def test_record_text_cannot_ping_or_break_markdown() -> None:
    nasty = record(
        title="@everyone patch now <@123456789012345678> [x](y)",
        summary="@here **urgent** <@&223456789012345678>",
        source="@everyone news",
    )
    message = render_incident(post_of(nasty))
    text = json.dumps(payload(message), ensure_ascii=False)
    assert "@everyone" not in text.replace("@\u200beveryone", "")
    assert "@here" not in text.replace("@\u200bhere", "")
    assert "<@1234" not in text and "<@&2234" not in text
    assert "\\*\\*urgent\\*\\*" in message.embeds[0].description
    reply = Reply("Found *@everyone patch now* at https://example.org/a.", ThreadKey("discord", "1", "2"))
    (rendered,) = render_reply(reply)
    assert rendered.content == "Found **@\u200beveryone patch now** at <https://example.org/a>."


def test_thread_names_are_one_line_and_at_most_100_characters(longest) -> None:
    name = thread_name(longest["title"].title)
    assert 0 < len(name) <= limits.THREAD_NAME and "\n" not in name
    assert thread_name("   ") == "threatbot"


# -- chat replies --------------------------------------------------------------------------------------------


def test_a_list_answer_shows_its_heading_as_text_and_each_story_as_an_embed() -> None:
    items = [
        ReplyItem(str(n), record(title=f"Story {n}", url=f"https://e.org/{n}"), member_sources=["B"] if n == 1 else [])
        for n in (1, 2)
    ]
    text = "\n".join(
        [
            "Today (Tue 2 Jun, UTC): 2 outages:",
            "1. *Story 1* — 2 sources · Tue 2 Jun 13:00 (3 h ago)",
            "   https://e.org/1",
            "   id `x1`",
            "2. *Story 2* — Src · Tue 2 Jun 13:00 (3 h ago)",
            "   https://e.org/2",
            "   id `x2`",
            "3 more — say “more” to see them.",
        ]
    )
    reply = Reply(text, ThreadKey("discord", "1", "2"), ReplyKind.ANSWER, items=items, suggestions=["more"])
    (message,) = render_reply(reply)
    assert message.content == "Today (Tue 2 Jun, UTC): 2 outages:\n3 more — say “more” to see them.\n-# Try: more"
    assert [e.title for e in message.embeds] == ["1. Story 1", "2. Story 2"]
    assert "2 sources" in message.embeds[0].description and "<t:" in message.embeds[0].description


def test_long_replies_are_split_into_several_messages() -> None:
    reply = Reply("\n".join(f"• line {n} " + "z" * 90 for n in range(60)), ThreadKey("discord", "1", "2"))
    messages = render_reply(reply)
    assert len(messages) >= 3 and all(m.problems() == [] for m in messages)
    assert discord_markdown("*a* and *b*") == "**a** and **b**"


def test_a_feed_incident_shows_the_worst_severity_any_report_states() -> None:
    news = record(title="FortiGate flaw under attack", severity=Severity.HIGH, source="News")
    kev = record(title="CISA KEV: FortiGate", severity=Severity.CRITICAL, exploited=True, source="CISA KEV")
    post = IncidentPost("k", news.cluster_id, news, (news, kev), ("fortinet",), "discord")
    (embed,) = payload(render_incident(post))["embeds"]
    severity = next(f for f in embed["fields"] if f["name"] == "Severity")
    assert severity["value"] == "Critical · **exploited**"
    assert embed["color"] == SEVERITY_COLOURS[Severity.CRITICAL]
    digest = payload(render_digest(Digest("d", (post,), ("fortinet",), "discord")))
    assert "critical · exploited" in digest["embeds"][0]["description"]
    assert digest["embeds"][0]["color"] == SEVERITY_COLOURS[Severity.CRITICAL]


def test_a_late_report_says_in_its_embed_which_window_it_came_after() -> None:
    items = [
        ReplyItem("1", record(title="Friday story")),
        ReplyItem("2", record(title="Monday write-up"), reported_after="Friday"),
    ]
    reply = Reply("Friday: 2 stories:", ThreadKey("discord", "1", "2"), ReplyKind.ANSWER, items=items)
    (message,) = render_reply(reply)
    assert "reported after Friday" in message.embeds[1].description
    assert "reported after" not in message.embeds[0].description
