"""Sources: the shipped default list, config files, run-time additions and the health the chat shows."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from bot.daemon import DeliveryConfig
from bot.services import SourceRegistry
from bot.sources import (
    Health,
    Source,
    SourceBook,
    SourceConfigError,
    default_sources,
    load_sources,
    parse_interval,
)
from retrieval.database import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def book(tmp_path) -> SourceBook:
    return SourceBook(Database(tmp_path / "t.sqlite3"), clock=Clock())


def test_the_default_list_is_real_public_feeds_of_each_kind() -> None:
    sources = default_sources()
    names = {s.name for s in sources}
    for wanted in (
        "CISA KEV",
        "CISA advisories",
        "BleepingComputer",
        "The Hacker News",
        "SecurityWeek",
        "Microsoft Security Response Center",
        "GitHub status",
        "Cloudflare status",
    ):
        assert wanted in names
    assert len(names) == len(sources) == len({s.url for s in sources})
    assert all(urlsplit(s.url).scheme == "https" and s.enabled for s in sources)
    assert {s.kind for s in sources} >= {"kev", "advisories", "news", "vendor", "status"}
    kev = next(s for s in sources if s.name == "CISA KEV")
    assert kev.kind == "kev" and kev.url.endswith("known_exploited_vulnerabilities.json")
    assert next(s for s in sources if s.name == "GitHub status").url == "https://www.githubstatus.com/history.atom"


@pytest.mark.parametrize(
    ("value", "seconds"), [(900, 900), ("90s", 90), ("15m", 900), ("1h", 3600), ("1.5h", 5400), ("1d", 86400)]
)
def test_parse_interval(value, seconds) -> None:
    assert parse_interval(value) == seconds


@pytest.mark.parametrize("value", ["5s", "soon", "", True, "10 minutes"])
def test_parse_interval_refuses_nonsense_and_hammering(value) -> None:
    with pytest.raises(SourceConfigError):
        parse_interval(value)


@pytest.mark.parametrize(
    ("toml", "complaint"),
    [
        ('[[sources]]\nname = "A"\nurl = "ftp://x.org/feed"', "not an http"),
        ('[[sources]]\nname = "A"\nurl = "https://x.org/a"\nintervall = "1h"', "unknown key"),
        (
            '[[sources]]\nname = "A"\nurl = "https://x.org/a"\n[[sources]]\nname = "A"\nurl = "https://x.org/b"',
            "repeats",
        ),
        ('[[sources]]\nname = "A"', "needs a url"),
        ("sources = 3", "array of tables"),
        ("[[sources]\n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_problem(toml: str, complaint: str) -> None:
    with pytest.raises(SourceConfigError, match=complaint):
        load_sources(toml)


def test_defaults_are_seeded_once(book: SourceBook) -> None:
    assert book.seed_defaults() == len(default_sources())
    assert book.remove("The Hacker News")
    assert book.seed_defaults() == 0, "an admin's removal sticks"
    assert "The Hacker News" not in {s.name for s in book.list_sources()}
    assert all(s.health == "new" for s in book.list_sources())


def test_config_sync_updates_definitions_and_keeps_health(book: SourceBook) -> None:
    [source] = load_sources('[[sources]]\nname = "Feed"\nurl = "https://feeds.example.org/a.xml"\ninterval = "15m"')
    assert book.sync([source]) == 1
    book.record_failure("Feed", error="HTTP 500", next_due=5.0, at=1.0)
    book.record_failure("Feed", error="HTTP 500", next_due=5.0, at=2.0, disable_reason="repeated errors")
    book.sync([Source("Feed", source.url, "news", 3600, full_articles=True)])
    state = book.get("Feed")
    assert state is not None and state.source.interval_seconds == 3600 and state.source.full_articles
    assert state.failures == 2 and not state.source.enabled, "a config reload does not undo the poller's verdict"
    assert book.set_enabled("feed", True).health is Health.NEW


def test_admins_add_sources_at_run_time(book: SourceBook) -> None:
    registry: SourceRegistry = book  # the chat core's view
    status = registry.add_source("https://www.example.org/feed.xml", added_by="U123")
    assert (status.name, status.health, status.interval_seconds, status.enabled) == ("example.org", "new", 1800, True)
    again = registry.add_source("https://www.example.org/feed.xml", added_by="U999", name="Other")
    assert again.name == "example.org", "a known URL is not added twice"
    second = registry.add_source("https://example.org/other.xml", added_by="U123")
    assert second.name == "example.org (2)"
    custom = book.add_source(
        "https://x.example/rss", added_by="cli", name="X", interval_seconds=3600, full_articles=True
    )
    assert custom.full_articles and custom.interval_seconds == 3600
    with pytest.raises(ValueError):
        registry.add_source("file:///etc/passwd", added_by="U666")
    assert book.get("example.org").origin == "admin" and book.get("example.org").added_by == "U123"  # type: ignore[union-attr]


def test_health_moves_from_new_to_ok_to_failing_to_disabled(book: SourceBook) -> None:
    book.sync([Source("Feed", "https://feeds.example.org/a.xml")])
    assert book.get("Feed").health is Health.NEW  # type: ignore[union-attr]
    book.record_success("Feed", next_due=100.0, min_interval=None, at=10.0)
    ok = next(s for s in book.list_sources() if s.name == "Feed")
    assert ok.health == "ok" and ok.last_success is not None and ok.last_success.timestamp() == 10.0
    book.record_failure("Feed", error="timed out", next_due=200.0, at=20.0)
    assert book.get("Feed").health is Health.OK, "one failure is a blip"  # type: ignore[union-attr]
    book.record_failure("Feed", error="timed out again", next_due=300.0, at=30.0)
    failing = next(s for s in book.list_sources() if s.name == "Feed")
    assert failing.health == "failing" and failing.last_error == "timed out again"
    book.record_failure("Feed", error="HTTP 500", next_due=400.0, at=40.0, disable_reason="repeated errors: HTTP 500")
    disabled = next(s for s in book.list_sources() if s.name == "Feed")
    assert (disabled.health, disabled.enabled, disabled.disabled_reason) == (
        "disabled",
        False,
        "repeated errors: HTTP 500",
    )
    assert book.due(float("inf")) == []
    book.set_enabled("Feed", False, reason="noisy")
    assert book.get("Feed").disabled_reason == "noisy"  # type: ignore[union-attr]


def test_due_orders_by_lateness_and_skips_disabled(book: SourceBook) -> None:
    book.sync([Source(n, f"https://feeds.example.org/{n}.xml") for n in "abc"])
    book.record_success("a", next_due=50.0, min_interval=None, at=1.0)
    book.record_success("b", next_due=20.0, min_interval=None, at=1.0)
    book.set_enabled("c", False)
    assert [s.name for s in book.due(100.0)] == ["b", "a"]
    assert [s.name for s in book.due(30.0)] == ["b"]
    assert book.next_due() == 20.0


def test_a_config_file_carries_sources_and_delivery_settings(monkeypatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k3y")
    config = DeliveryConfig.from_toml(
        """
        default_sources = false
        [poller]
        jitter = 0.2
        disable_after_permanent = 2
        [delivery]
        digest_threshold = 3
        rate_limits = { slack = 1.0, discord = 0.5 }
        [delivery.webhook]
        url = "https://hooks.example.org/tb"
        secret_env = "HOOK_SECRET"
        [[sources]]
        name = "Local"
        url = "https://intel.example.org/feed.json"
        interval = "5m"
        """
    )
    assert not config.default_sources and config.digest_threshold == 3
    assert config.poll.jitter == 0.2 and config.poll.disable_after_permanent == 2
    assert dict(config.delivery.rate_limits) == {"slack": 1.0, "discord": 0.5}
    assert (config.webhook_url, config.webhook_secret) == ("https://hooks.example.org/tb", "k3y")
    assert [(s.name, s.interval_seconds) for s in config.sources] == [("Local", 300)]
    monkeypatch.setenv("THREATBOT_DIGEST_THRESHOLD", "9")
    assert config.with_env().digest_threshold == 9


def test_the_delivery_commands_from_the_command_line(tmp_path, monkeypatch, capsys) -> None:
    from bot.cli import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "threatbot.toml").write_text("default_sources = false\n", encoding="utf-8")
    monkeypatch.setenv("THREATBOT_DATA_DIR", str(data))

    def no_model(*args, **kwargs):
        raise AssertionError("these commands must not load the embedding model")

    monkeypatch.setattr("retrieval.store.shared_embedder", no_model)

    def run(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        return code, capsys.readouterr().out

    code, out = run("sources", "add", "https://feeds.example.org/rss.xml", "--name", "Example", "--interval", "15m")
    assert code == 0 and "added Example" in out and "every 900s" in out
    assert run("sources", "add", "gopher://nope")[0] == 2
    code, out = run("sources", "disable", "Example", "--reason", "too chatty")
    assert code == 0 and "disabled" in out
    code, out = run("sources", "--json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["enabled"], listed["disabled_reason"]) == ("Example", False, "too chatty")
    assert run("sources", "enable", "Example")[1].strip() == "Example: new"
    assert run("sources", "enable", "Nope")[0] == 1

    code, out = run("subscribe", "--platform", "slack", "--channel", "C1", "vendor:fortinet", "severity>=high")
    assert code == 0 and "vendor:fortinet severity>=high" in out
    sub_id = out.split(":", 1)[0]
    assert run("subscribe", "--platform", "slack", "--channel", "C1", "news")[0] == 2
    code, out = run("subscriptions", "--json")
    assert [s["id"] for s in json.loads(out)] == [sub_id]
    code, out = run("deliveries")
    assert code == 0 and "pending: 0" in out
    assert run("unsubscribe", sub_id, "--platform", "slack", "--channel", "C2")[0] == 1
    assert run("unsubscribe", sub_id)[0] == 0
    assert "no subscriptions" in run("subscriptions")[1]
