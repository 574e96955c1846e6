"""The console adapter and ``threatbot chat``, driven through their input and output streams."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from bot.cli_chat import add_chat_command, local_zone_name, run_chat
from bot.config import Settings
from bot.conversation import Conversation
from bot.demo import seed_demo
from retrieval.store import RecordStore
from tests.conftest import needs_model

NOW = datetime(2026, 6, 2, 16, 0, tzinfo=UTC)

pytestmark = needs_model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("console")
    store = RecordStore(Settings.from_env(folder))
    seed_demo(store, NOW)
    store.close()
    return folder


def console(data_dir: Path, lines: list[str]) -> tuple[ConsoleAdapter, io.StringIO, RecordStore]:
    store = RecordStore(Settings.from_env(data_dir))
    out = io.StringIO()
    adapter = ConsoleAdapter(
        Conversation(store),
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=out,
        tz="Europe/Berlin",
        clock=lambda: NOW,
        channel=f"c-{len(lines)}-{lines[0][:8]}",
    )
    return adapter, out, store


def test_plain_lines_are_one_thread_and_new_starts_another(data_dir) -> None:
    adapter, out, store = console(
        data_dir,
        [
            "any Exchange outages today?",
            "which countries are affected?",
            "/new ransomware attack on a hospital",
            "which countries are affected?",
            "/threads",
            "/switch 1",
            "what's the mitigation?",
            "/quit",
            "never read",
        ],
    )
    try:
        assert adapter.run() == 0
    finally:
        store.close()
    text = out.getvalue()
    assert "Today (Tue 2 Jun, Europe/Berlin): 1 Exchange outage:" in text
    assert "Countries named for Microsoft Exchange Online outage causes email delays, failures: United States" in text
    assert "— thread 2 —" in text
    assert (
        "Countries named for Ransomware attack forces Klinikum Nordstadt hospital to divert ambulances: Germany."
        in text
    )
    assert "  1: any Exchange outages today?" in text and "* 2: ransomware attack on a hospital" in text
    assert "Mitigation for Microsoft Exchange Online outage causes email delays" in text  # back in thread 1
    assert "never read" not in text


def test_threads_survive_a_restart_of_the_console(data_dir) -> None:
    adapter, _, store = console(data_dir, ["search citrix bleed", "/quit"])
    channel = adapter.channel
    adapter.run()
    store.close()
    store = RecordStore(Settings.from_env(data_dir))
    out = io.StringIO()
    again = ConsoleAdapter(
        Conversation(store),
        stdin=io.StringIO("/threads\n/switch 1\nwhat's the mitigation?\n/switch 9\n/bogus\n"),
        stdout=out,
        tz="Europe/Berlin",
        clock=lambda: NOW,
        channel=channel,
    )
    try:
        assert again.run() == 0  # end of input ends the session
    finally:
        store.close()
    text = out.getvalue()
    assert "1: citrix bleed — last active Tue 02 Jun 18:00" in text
    assert "kill all active and persistent sessions" in text
    assert "No thread 9 here" in text and "Unknown console command /bogus" in text


def test_chat_command_seeds_demo_and_answers_messages(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("THREATBOT_LLM", raising=False)
    parser = argparse.ArgumentParser(prog="threatbot")
    commands = parser.add_subparsers(dest="command")
    pulled: list[object] = []

    def add(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--data-dir")
        return sub

    add_chat_command(add, live_sources=lambda store: pulled.append(store.count()))
    args = parser.parse_args(
        ["chat", "--data-dir", str(tmp_path), "--tz", "Europe/Berlin", "--now", "2026-06-02T16:00:00Z",
         "-m", "any Exchange outages yesterday?", "-m", "is it exploited?"]
    )  # fmt: skip
    out = io.StringIO()
    assert run_chat(args, live_sources=lambda store: pulled.append(store.count()), stdout=out) == 0
    text = out.getvalue()
    assert text.startswith("Seeded 39 demo records (illustrative sample data, not real news)")
    assert "No Exchange outages yesterday (Mon 1 Jun, Europe/Berlin)." in text
    assert "The record doesn't say Microsoft Exchange Online outage blocks mailbox access" in text
    assert pulled == [39]  # the live-sources hook ran after seeding

    # a second run reuses the store and does not seed again; --demo-only skips the live hook
    args = parser.parse_args(["chat", "--data-dir", str(tmp_path), "--demo-only", "--now", "2026-06-02T16:00:00Z",
                              "-m", "latest 1"])  # fmt: skip
    out = io.StringIO()
    run_chat(args, live_sources=lambda store: pulled.append("again"), stdout=out)
    assert "Seeded" not in out.getvalue() and "Latest stories" in out.getvalue() and pulled == [39]


def test_chat_without_demo_on_an_empty_store_says_nothing_is_there(tmp_path) -> None:
    args = argparse.Namespace(
        data_dir=str(tmp_path), tz="UTC", now=NOW, no_demo=True, demo_only=True, no_llm=True, message=["latest"]
    )
    out = io.StringIO()
    assert run_chat(args, stdout=out) == 0
    assert "Seeded" not in out.getvalue() and "No stories in the records." in out.getvalue()


def test_failing_live_sources_do_not_stop_the_chat(tmp_path) -> None:
    def offline(store):
        raise OSError("network unreachable")

    args = argparse.Namespace(
        data_dir=str(tmp_path), tz="UTC", now=NOW, no_demo=False, demo_only=False, no_llm=True, message=["help"]
    )
    out = io.StringIO()
    assert run_chat(args, live_sources=offline, stdout=out) == 0
    assert "Live sources unavailable (network unreachable)" in out.getvalue()
    assert "search <query>" in out.getvalue()


def test_local_zone_name_is_a_real_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert local_zone_name() == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert local_zone_name()  # falls back to the system zone or UTC, never the bad name
    assert local_zone_name() != "Not/AZone"


def test_a_terminal_gets_bold_links_and_dim_hints_never_slack_markers() -> None:
    """The core writes Slack mrkdwn; the console shows it as a terminal does (or plain, when piped)."""
    from adapters.console_render import BOLD, DIM, NO_BOLD, UNDERLINE, render

    text = "1. *Exchange Online outage* — _medium_ · https://example.org/a_b_c *not*bold \x1b]8;;evil\x07"
    plain = render(text, styled=False)
    assert plain.startswith("1. Exchange Online outage — medium · https://example.org/a_b_c")
    assert "*" not in plain.split("a_b_c")[0] and "\x1b" not in plain
    styled = render(text, styled=True)
    assert f"{BOLD}Exchange Online outage{NO_BOLD}" in styled
    assert f"{UNDERLINE}https://example.org/a_b_c" in styled  # the URL's underscores stay as they are
    assert "\x1b]" not in styled and "\x07" not in styled  # the feed's own OSC sequence is defused
    assert styled.count("\x1b") == styled.count("\x1b[")  # only this module's CSI sequences reach the terminal
    assert DIM not in styled
