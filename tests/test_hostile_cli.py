"""Hostile input at the command line, the search gate, the terminal, `sources add` and the LLM check (issue 14)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from retrieval.records import ThreatRecord
from tests.test_hostile_input import HashEmbedder

NOW = datetime.now(UTC)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``threatbot`` in-process over a small store (hash vectors: these tests are about input, not ranking)."""
    from bot import cli as cli_module
    from bot.config import Settings
    from retrieval.enrich import enrich
    from retrieval.store import RecordStore
    from retrieval.vendors import VendorDictionary

    data_dir = tmp_path / "data"
    store = RecordStore(Settings.from_env(data_dir), embedder=HashEmbedder())
    store.upsert(
        enrich(record, VendorDictionary.default())
        for record in [
            ThreatRecord(
                id="tb:esc",
                title="Exchange outage \x1b[2J\x1b]0;pwned\x07 hits mail \u202egnp.exe",
                summary="Evil \x1b[31mred\x1b[0m text",
                published=NOW - timedelta(hours=2),
                url="https://news.example/exchange-outage",
                source="News",
            ),
            ThreatRecord(
                id="tb:fortinet",
                title="Fortinet VPN flaw exploited",
                published=NOW - timedelta(days=2),
                url="https://news.example/fortinet",
                source="News",
            ),
        ]
    )
    store.close()
    monkeypatch.setattr(
        cli_module, "_store", lambda args: RecordStore(Settings.from_env(args.data_dir), HashEmbedder())
    )

    def run(*argv: str) -> int:
        return cli_module.main([*argv, "--data-dir", str(data_dir)])

    return run


def test_search_batch_gives_every_bad_line_an_error_object_and_goes_on(cli, tmp_path, capsys) -> None:
    lines = [
        b"[1, 2]",
        b'"just a string"',
        b'{"query": "outage \xff\xfe"}',
        b'{"query": "outage", "limit": Infinity}',
        b'{"query": "outage", "limit": -1}',
        b'{"query": "outage", "now": 12345}',
        b'{"query": "outage", "tz": "' + b"A" * 300 + b'"}',
        b'{"query": "outage", "now": "9999-12-31T23:59:59-14:00"}',
        b'{"query": 7}',
        b'{"query": "' + b"x " * 3000 + b'"}',
        b'{"query": "outage in the last 99999999999999 days"}',
        b'{"query": "Exchange outage"}',
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b"\n".join(lines))
    assert cli("search", "--batch", str(batch), "--json") == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == len(lines)
    errors = [o.get("error", "") for o in out]
    assert "line 1: expected a JSON object, got list" in errors[0]
    assert "got str" in errors[1]
    assert "line 3: not valid UTF-8" in errors[2]
    assert "Infinity is not a number JSON allows" in errors[3]
    assert "limit wants a whole number from 1 to 100, not -1" in errors[4]
    assert "--now wants an ISO 8601 time as a string" in errors[5]
    assert "unknown time zone" in errors[6]
    assert "outside 1990-01-01" in errors[7]
    assert "'query' must be a string" in errors[8]
    assert "characters long" in errors[9]
    assert "error" not in out[10] and out[10]["filters"]["window"]["label"] == "last 99999999999999 days"
    # The last line is answered like any (whether its record answers is the relevance model's judgment).
    assert (
        "error" not in out[11] and out[11]["query"] == "Exchange outage" and out[11]["filters"]["kinds"] == ["outage"]
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--limit", "-1"], "limit wants a whole number from 1 to 100"),
        (["--tz", "A" * 300], "unknown time zone"),
        (["--tz", "../../etc/passwd"], "unknown time zone"),
        (["--now", "9999-12-31T23:59:59-14:00"], "outside 1990-01-01"),
    ],
)
def test_extreme_flags_are_clean_usage_errors(cli, capsys, flags, message) -> None:
    with pytest.raises(SystemExit) as info:
        cli("search", "outage", *flags)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_search_and_show_never_print_terminal_controls(cli, capsys) -> None:
    assert cli("search", "Exchange outage") == 0
    assert cli("show", "tb:esc") == 0
    printed = capsys.readouterr().out
    assert "Exchange outage" in printed
    assert "\x1b" not in printed and "\u202e" not in printed and "\x07" not in printed
    assert "\ufffd" in printed  # the reader sees something was removed


def test_the_console_adapter_strips_terminal_controls() -> None:
    from adapters.console import ConsoleAdapter

    buffer = io.StringIO()
    chat = ConsoleAdapter.__new__(ConsoleAdapter)
    chat.stdout = buffer
    chat._write("title \x1b[2J\u202eevil")
    assert buffer.getvalue() == "title \ufffd[2J\ufffdevil\n"


def test_a_question_past_the_cap_is_a_clear_error_and_terms_are_capped(cli) -> None:
    from retrieval.query import MAX_QUESTION_CHARS, QuestionTooLong, check_question
    from retrieval.search import _exclusions

    with pytest.raises(QuestionTooLong, match="characters long"):
        check_question("x" * (MAX_QUESTION_CHARS + 1))
    from retrieval.query import MAX_TERMS, parse_query

    query = parse_query(" ".join(f"-w{n}" for n in range(300)), now=NOW)
    assert len(query.exclude_terms) == MAX_TERMS
    words = tuple(f"w{n}" for n in range(800))
    pattern = _exclusions(words)
    assert pattern.search("a story about w799 here") and not pattern.search("w7999 is another word")


def test_many_exclusions_still_exclude_in_one_pass(cli, capsys) -> None:
    question = "Exchange outage " + " ".join(f"-zz{n}" for n in range(250)) + " -fortinet"
    assert len(question) < 2000
    assert cli("search", question, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert all("Fortinet" not in r["title"] for r in result["results"])


def test_chat_answers_an_overlong_question_with_the_reason(tmp_path) -> None:
    from bot.config import Settings
    from bot.conversation import Conversation
    from bot.messages import IncomingMessage
    from retrieval.store import RecordStore

    store = RecordStore(Settings.from_env(tmp_path / "data"), embedder=HashEmbedder())
    try:
        reply = Conversation(store).handle(IncomingMessage(text="outage " + "-x " * 2000, platform="console"))
        assert "characters long" in reply.text and "went wrong" not in reply.text
    finally:
        store.close()


# -- sources add -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1/feed",
        "http://2130706433/feed",
        "http://[::ffff:10.0.0.1]/feed",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/rss",
        "https://[fec0::1]/rss",
        "http://intranet.internal/rss",
    ],
)
def test_sources_add_vets_addresses(tmp_path, url: str) -> None:
    from bot.sources import SourceBook
    from retrieval.database import Database

    book = SourceBook(Database(tmp_path / "db.sqlite"))
    with pytest.raises(ValueError, match="not a public address"):
        book.add_source(url, added_by="test")
    assert book.list_sources() == []
    assert SourceBook(Database(tmp_path / "lab.sqlite"), allow_private_urls=True).add_source(url, added_by="lab")


def test_sources_never_show_credentials(tmp_path) -> None:
    from bot.sources import SourceBook
    from retrieval.database import Database

    book = SourceBook(Database(tmp_path / "db.sqlite"))
    added = book.add_source("https://analyst:s3cret@feeds.example/rss", added_by="test")
    assert added.url == "https://***@feeds.example/rss"
    assert [s.url for s in book.list_sources()] == ["https://***@feeds.example/rss"]
    assert book.get("feeds.example").source.url == "https://analyst:s3cret@feeds.example/rss"  # still fetchable
    with pytest.raises(ValueError) as info:
        book.add_source("ftp://analyst:s3cret@feeds.example/rss", added_by="test")
    assert "s3cret" not in str(info.value)


def test_fetch_errors_never_quote_credentials() -> None:
    from retrieval.fetch import FetchError

    assert "s3cret" not in str(FetchError("https://u:s3cret@feeds.example/rss", "HTTP 401"))


# -- the LLM output check ----------------------------------------------------------------------------


def test_llm_check_refuses_scheme_less_domains_and_added_tracking_parameters() -> None:
    from bot.llm import check_reply

    record = ThreatRecord(
        id="tb:1",
        title="Exchange hotfix KB5001779 released",
        summary="Microsoft published the fix on microsoft.com.",
        published=NOW,
        url="https://msrc.microsoft.com/update-guide/KB5001779",
    )
    assert check_reply("Patch now [tb:1]: https://msrc.microsoft.com/update-guide/KB5001779", [record]) == []
    assert check_reply("Details on microsoft.com and msrc.microsoft.com [tb:1], also Node.js", [record]) == []
    phishing = check_reply("Download it from exchange-hotfix-download.com/KB5001779 [tb:1]", [record])
    assert phishing == ["names the domain 'exchange-hotfix-download.com', which no retrieved record mentions"]
    tracked = check_reply("[tb:1] https://msrc.microsoft.com/update-guide/KB5001779?utm_source=llm", [record])
    assert tracked and "not a retrieved record's URL" in tracked[0]
