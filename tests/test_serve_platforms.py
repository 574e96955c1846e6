"""``serve`` builds the conversation core once and hands it to every platform (``bot.platform.Platform``)."""

from __future__ import annotations

from adapters.discord.component import DiscordPlatform
from adapters.slack.platform import SlackPlatform
from bot.cli import main
from bot.platform import Platform
from tests.conftest import needs_model
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.slack_api import FakeSlack

SLACK_TOKEN = "xoxb-serve-test-1"


@needs_model
def test_serve_builds_one_core_for_slack_and_discord_and_survives_a_broken_llm_setting(
    tmp_path, monkeypatch, capsys
) -> None:
    from adapters.discord.endpoints import point_discord_at

    handed: dict[str, object] = {}

    def fake_serve(runtime, *, components=(), grace=None) -> int:
        handed["components"] = list(components)
        handed["targets"] = [type(t).__name__ for t in runtime.deliverer.targets]
        return 0

    monkeypatch.setattr("bot.daemon.serve", fake_serve)
    (tmp_path / "threatbot.toml").write_text("default_sources = false\n", encoding="utf-8")
    with FakeSlack(token=SLACK_TOKEN) as slack, FakeDiscord() as discord:
        previous = point_discord_at(discord.api_url, discord.gateway_url)
        try:
            for name, value in {
                "THREATBOT_DATA_DIR": str(tmp_path),
                "SLACK_BOT_TOKEN": SLACK_TOKEN,
                "SLACK_APP_TOKEN": "xapp-serve-test",
                "THREATBOT_SLACK_API_URL": slack.api_url,
                "DISCORD_BOT_TOKEN": "discord-test-token",
                "THREATBOT_DISCORD_API_URL": discord.api_url,
                "THREATBOT_DISCORD_GATEWAY_URL": discord.gateway_url,
                "THREATBOT_LLM": "no-such-provider:model",
                "THREATBOT_METRICS_PORT": "0",
            }.items():
                monkeypatch.setenv(name, value)
            assert main(["serve"]) == 0
        finally:
            point_discord_at(previous.api_url, previous.gateway_url)
    err = capsys.readouterr().err
    assert "answering without the LLM" in err
    assert "slack: chat + feed: Socket Mode" in err and "discord: chat + feed: bot:" in err
    slack_component, discord_component = handed["components"]
    core = slack_component.adapter.conversation
    assert discord_component.bot.conversation is core, "one core for every platform"
    assert core.llm is None and core.feed_posts is not None and core.subscriptions is not None
    assert {"SlackTarget", "DiscordTarget"} <= set(handed["targets"])


def test_each_adapter_package_exports_a_platform() -> None:
    from adapters.discord import platform as discord_platform
    from adapters.slack import platform as slack_platform

    slack, discord = slack_platform(env={}), discord_platform()
    assert isinstance(slack, Platform) and isinstance(slack, SlackPlatform)
    assert isinstance(discord, Platform) and isinstance(discord, DiscordPlatform)
    status = slack.status()
    assert not status.chat and not status.delivery and "SLACK_BOT_TOKEN" in status.detail
    feeds_only = slack_platform(env={"SLACK_BOT_TOKEN": "xoxb-1"}).status()
    assert feeds_only.delivery and not feeds_only.chat and "SLACK_APP_TOKEN" in feeds_only.detail
