"""The chat grammar: commands from text and from Discord-style options, and the shapes of follow-ups."""

from __future__ import annotations

import pytest

from bot.commands import (
    LATEST_MAX,
    USAGE,
    Command,
    Field,
    FollowUpKind,
    Verb,
    help_text,
    parse_command,
    parse_followup,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("search fortinet exploited", Command(Verb.SEARCH, text="fortinet exploited")),
        ("  SEARCH   exchange   outage ", Command(Verb.SEARCH, text="exchange outage")),
        ("latest", Command(Verb.LATEST)),
        ("latest 3", Command(Verb.LATEST, count=3)),
        ("latest 5 critical outages", Command(Verb.LATEST, text="critical outages", count=5)),
        ("latest 500", Command(Verb.LATEST, count=LATEST_MAX)),
        ("latest ransomware", Command(Verb.LATEST, text="ransomware")),
        ("show tb:3665355817ded8c8", Command(Verb.SHOW, target="tb:3665355817ded8c8")),
        ("show 2", Command(Verb.SHOW, target="2")),
        ("show s33r:9fe4", Command(Verb.SHOW, target="s33r:9fe4")),
        ("subscribe exploited fortinet", Command(Verb.SUBSCRIBE, text="exploited fortinet")),
        ("subscribe", Command(Verb.SUBSCRIBE)),
        ("unsubscribe sub-42", Command(Verb.UNSUBSCRIBE, target="sub-42")),
        ("subscriptions", Command(Verb.SUBSCRIPTIONS)),
        ("sources", Command(Verb.SOURCES)),
        (
            "sources add https://example.com/feed.xml",
            Command(Verb.SOURCES, action="add", target="https://example.com/feed.xml"),
        ),
        ("help", Command(Verb.HELP)),
        ("", Command(Verb.HELP)),
        ("/threat search citrix", Command(Verb.SEARCH, text="citrix")),
        ("search", Command(Verb.HELP, text="search")),
    ],
)
def test_command_words(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "any Exchange outages today?",
        "what did Fortinet patch this week?",
        "show me exchange outages",  # "show" followed by words is a question, not `show <id>`
        "show the source",
        "latest news about the hospital attack",
        "sources say GitHub is down",
    ],
)
def test_free_text_is_a_question_without_a_command_word(text: str) -> None:
    command = parse_command(text)
    if text.startswith("latest"):
        assert command.verb is Verb.LATEST  # "latest …" is the command, its rest the filters
    else:
        assert command == Command(Verb.ASK, text=text)


@pytest.mark.parametrize(("typo", "verb"), [("serch", "search"), ("lates", "latest"), ("subscirbe x", "subscribe")])
def test_mistyped_command_gets_help_naming_the_command(typo: str, verb: str) -> None:
    command = parse_command(typo)
    assert command.verb is Verb.HELP
    assert command.text == verb
    assert command.unknown == typo.split()[0]


def test_ordinary_words_are_not_taken_for_typos() -> None:
    assert parse_command("short outage at github").verb is Verb.ASK
    assert parse_command("later today").verb is Verb.ASK


def test_command_from_discord_options_equals_the_typed_one() -> None:
    assert Command.from_options("search", {"query": "fortinet exploited"}) == parse_command("search fortinet exploited")
    assert Command.from_options("latest", {"count": 5, "filters": "critical outages"}) == parse_command(
        "latest 5 critical outages"
    )
    assert Command.from_options("show", {"id": "tb:1"}) == parse_command("show tb:1")
    assert Command.from_options("unsubscribe", {"id": "s1"}) == parse_command("unsubscribe s1")
    assert Command.from_options("subscriptions") == parse_command("subscriptions")
    assert Command.from_options("sources", {"action": "add", "url": "https://x.example/f"}) == parse_command(
        "sources add https://x.example/f"
    )
    assert Command.from_options("ask", {"question": "any outages today?"}) == Command(
        Verb.ASK, text="any outages today?"
    )
    assert Command.from_options("frobnicate").verb is Verb.HELP


def test_display_round_trips_through_the_parser() -> None:
    for text in [
        "search exchange outage",
        "latest 3 critical",
        "show tb:1",
        "subscribe kev",
        "sources add https://a.b/c",
    ]:
        assert parse_command(parse_command(text).display()) == parse_command(text)


@pytest.mark.parametrize(
    ("text", "kind", "field", "index"),
    [
        ("what's the mitigation?", FollowUpKind.FIELD, Field.MITIGATION, None),
        ("how do we fix it", FollowUpKind.FIELD, Field.MITIGATION, None),
        ("which countries are affected?", FollowUpKind.FIELD, Field.COUNTRIES, None),
        ("is it exploited?", FollowUpKind.FIELD, Field.EXPLOITED, None),
        ("what's the impact?", FollowUpKind.FIELD, Field.IMPACT, None),
        ("which CVEs?", FollowUpKind.FIELD, Field.CVES, None),
        ("how bad is it?", FollowUpKind.FIELD, Field.SEVERITY, None),
        ("which products are affected?", FollowUpKind.FIELD, Field.PRODUCTS, None),
        ("when was it published?", FollowUpKind.FIELD, Field.PUBLISHED, None),
        ("show the source", FollowUpKind.SOURCE, None, None),
        ("link?", FollowUpKind.SOURCE, None, None),
        ("who reported it?", FollowUpKind.SOURCE, None, None),
        ("any updates?", FollowUpKind.UPDATES, None, None),
        ("anything new on this?", FollowUpKind.UPDATES, None, None),
        ("is it resolved yet?", FollowUpKind.UPDATES, None, None),
        ("more", FollowUpKind.MORE, None, None),
        ("show more", FollowUpKind.MORE, None, None),
        ("next", FollowUpKind.MORE, None, None),
        ("tell me more about the second one", FollowUpKind.SELECT, None, 1),
        ("the 3rd one", FollowUpKind.SELECT, None, 2),
        ("what about the last one?", FollowUpKind.SELECT, None, -1),
        ("#4", FollowUpKind.SELECT, None, 3),
        ("tell me more", FollowUpKind.SELECT, None, None),
    ],
)
def test_followup_shapes(text: str, kind: FollowUpKind, field: Field | None, index: int | None) -> None:
    followup = parse_followup(text)
    assert followup is not None
    assert (followup.kind, followup.field, followup.index) == (kind, field, index)


@pytest.mark.parametrize(
    ("text", "rest", "explicit", "narrow"),
    [
        ("only critical ones", "critical ones", True, True),
        ("what about yesterday?", "yesterday", True, False),
        ("and GitHub?", "github", True, False),
        ("exploited only", "exploited", True, True),
        ("yesterday?", "yesterday", False, False),
    ],
)
def test_refinements_carry_their_words(text: str, rest: str, explicit: bool, narrow: bool) -> None:
    followup = parse_followup(text)
    assert followup is not None and followup.kind is FollowUpKind.REFINE
    assert (followup.text, followup.explicit, followup.narrow) == (rest, explicit, narrow)


def test_long_sentence_mentioning_a_field_word_is_not_a_field_question() -> None:
    followup = parse_followup("what is the mitigation for CVE-2024-21762 on FortiOS appliances?")
    assert followup is None or followup.kind is not FollowUpKind.FIELD


def test_help_lists_every_command_and_puts_the_asked_one_first() -> None:
    text = help_text()
    for usage, _ in USAGE.values():
        assert f"`{usage}`" in text
    focused = help_text("latest").splitlines()
    assert focused[2].startswith("• `latest")
