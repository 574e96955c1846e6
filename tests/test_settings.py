"""The one settings model: its sources and their order, secrets, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.errors import ConfigError, ThreatbotError


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own (``.env`` is read from there) and no threatbot variables set."""
    monkeypatch.chdir(tmp_path)
    for name in ("THREATBOT_LLM_TIMEOUT", "THREATBOT_CONFIG", "SLACK_BOT_TOKEN", "THREATBOT_LLM", "THREATBOT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_order_flag_then_environment_then_dotenv_then_config_file(workdir: Path, monkeypatch) -> None:
    config = workdir / "threatbot.toml"
    config.write_text('[settings]\nllm_timeout = 3\nllm = "ollama:llama3.1"\nthread_ttl_hours = 5\n')
    (workdir / ".env").write_text("THREATBOT_LLM_TIMEOUT=4\nTHREATBOT_THREAD_TTL_HOURS=6\n")
    monkeypatch.setenv("THREATBOT_THREAD_TTL_HOURS", "7")
    settings = Settings.load(workdir / "data", config=config)
    assert settings.llm == "ollama:llama3.1"  # only the file sets it
    assert settings.llm_timeout == 4.0  # .env over the file
    assert settings.thread_ttl_hours == 7.0  # the environment over .env
    assert settings.data_dir == workdir / "data"  # the flag over everything


def test_config_file_in_the_data_folder_is_found(workdir: Path) -> None:
    data = workdir / "data"
    data.mkdir()
    (data / "threatbot.toml").write_text("[settings]\nllm_max_retries = 0\n")
    assert Settings.load(data).llm_max_retries == 0


def test_bad_values_name_the_variable_and_the_expected_form(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("THREATBOT_LLM_TIMEOUT", "8s")
    with pytest.raises(ConfigError) as error:
        Settings.load(workdir)
    assert (
        str(error.value)
        == "THREATBOT_LLM_TIMEOUT='8s' is not valid: expected a number of seconds above 0, e.g. 8 or 2.5"
    )
    assert isinstance(error.value, ThreatbotError)


def test_bad_values_in_dotenv_and_config_file_say_where(workdir: Path) -> None:
    (workdir / ".env").write_text("THREATBOT_SLACK_WORKERS=many\n")
    with pytest.raises(ConfigError, match=r"THREATBOT_SLACK_WORKERS \(in \.env\)='many'.*whole number"):
        Settings.load(workdir)
    (workdir / ".env").unlink()
    config = workdir / "threatbot.toml"
    config.write_text('[settings]\nmetrics_port = "ninety"\n')
    with pytest.raises(ConfigError, match=r"metrics_port in \[settings\] of .*threatbot.toml='ninety'.*port number"):
        Settings.load(workdir, config=config)
    config.write_text("[settings]\nllm_timout = 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*llm_timout"):
        Settings.load(workdir, config=config)


def test_secrets_never_show(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234567890-secretvalue")
    settings = Settings.load(workdir)
    assert "secretvalue" not in repr(settings) and "secretvalue" not in str(settings)
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1234567890-secretvalue"
    monkeypatch.setenv("THREATBOT_WEBHOOK_SECRET", "")
    monkeypatch.setenv("THREATBOT_DIGEST_THRESHOLD", "0")
    with pytest.raises(ConfigError) as error:
        Settings.load(workdir)
    assert "THREATBOT_DIGEST_THRESHOLD='0'" in str(error.value)


def test_blank_values_mean_unset(workdir: Path, monkeypatch) -> None:
    """docker compose passes ``${VAR:-}`` as an empty string: that is the default, not a bad number."""
    monkeypatch.setenv("THREATBOT_SLACK_HTTP_PORT", "")
    monkeypatch.setenv("THREATBOT_LLM_TIMEOUT", " ")
    settings = Settings.load(workdir)
    assert settings.slack_http_port is None and settings.llm_timeout == 8.0


def test_adapters_read_dotenv_through_the_model(workdir: Path) -> None:
    from adapters.discord.config import DiscordSettings
    from adapters.slack.config import SlackConfig

    (workdir / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-from-dotenv-123456\nTHREATBOT_SLACK_WORKERS=3\nTHREATBOT_DISCORD_TZ=Europe/Berlin\n"
    )
    slack = SlackConfig.from_env()
    assert slack.bot_token == "xoxb-from-dotenv-123456" and slack.workers == 3
    assert DiscordSettings.from_env().tz == "Europe/Berlin"
    # A mapping handed in is still the whole truth (tests and embedders rely on it).
    assert SlackConfig.from_env({}).bot_token == ""
