"""Starting the Slack app from the environment: both modes for real, clear errors, and the manifest."""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from slack_sdk.signature import SignatureVerifier

from adapters.slack import (
    BOT_EVENTS,
    BOT_SCOPES,
    COMMAND,
    SlackConfig,
    SlackConfigError,
    SlackTarget,
    slack_component_from_env,
    slack_target_from_env,
)
from adapters.slack.client import SecretFilter
from adapters.slack.users import ManagerPolicy, SlackUser
from bot.config import Settings
from bot.conversation import Conversation
from retrieval.store import RecordStore
from tests.fakes.slack_api import FakeSlack

REPO = Path(__file__).resolve().parents[1]
BOT = "xoxb-77-88-" + secrets.token_hex(8)
APP = "xapp-1-A1-" + secrets.token_hex(8)
SIGNING = "sig" + secrets.token_hex(10)


@pytest.fixture
def fake():
    with FakeSlack(token=BOT) as slack:
        slack.users["U1"] = {"tz": "Europe/Berlin", "is_admin": True}
        yield slack


@pytest.fixture
def core(tmp_path):
    """The real core over an empty store: enough for commands that need no search (help, subscriptions)."""
    store = RecordStore(Settings.from_env(tmp_path / "data"))
    yield Conversation(store)
    store.close()


# -- configuration --------------------------------------------------------------------------------


def test_nothing_set_means_no_slack_and_a_bot_token_alone_means_feeds_only(core, caplog) -> None:
    assert slack_component_from_env(core, env={}) is None
    with caplog.at_level(logging.WARNING):
        assert slack_component_from_env(core, env={"SLACK_BOT_TOKEN": BOT}) is None
    assert "SLACK_APP_TOKEN" in caplog.text and "--slack-http" in caplog.text and "Feed posts still work" in caplog.text
    assert BOT not in caplog.text


@pytest.mark.parametrize(
    ("env", "port", "names"),
    [
        ({"SLACK_APP_TOKEN": APP}, None, ["SLACK_BOT_TOKEN"]),
        ({"SLACK_BOT_TOKEN": BOT}, 3000, ["SLACK_SIGNING_SECRET"]),
        ({"SLACK_SIGNING_SECRET": SIGNING}, 3000, ["SLACK_BOT_TOKEN"]),
        ({}, 3000, ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]),
        ({"SLACK_BOT_TOKEN": APP, "SLACK_APP_TOKEN": BOT}, None, ["SLACK_BOT_TOKEN", "app-level token"]),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": "xoxp-user-token-123"}, None, ["SLACK_APP_TOKEN"]),
        ({"SLACK_BOT_TOKEN": BOT, "THREATBOT_SLACK_MANAGERS": "admins;bob"}, None, ["THREATBOT_SLACK_MANAGERS"]),
        ({"SLACK_BOT_TOKEN": BOT, "THREATBOT_SLACK_HTTP_PORT": "http"}, None, ["THREATBOT_SLACK_HTTP_PORT"]),
    ],
)
def test_settings_that_cannot_work_say_which_one_is_missing(core, env, port, names) -> None:
    with pytest.raises(SlackConfigError) as error:
        slack_component_from_env(core, env=env, http_port=port)
    for name in names:
        assert name in str(error.value)
    for secret in (BOT, APP, SIGNING):
        assert secret not in str(error.value)


def test_a_token_slack_refuses_is_a_clear_error(fake, core) -> None:
    wrong = "xoxb-77-88-" + secrets.token_hex(8)
    env = {"SLACK_BOT_TOKEN": wrong, "SLACK_APP_TOKEN": APP, "THREATBOT_SLACK_API_URL": fake.api_url}
    with pytest.raises(SlackConfigError, match="Slack refused SLACK_BOT_TOKEN \\(invalid_auth\\)") as error:
        slack_component_from_env(core, env=env)
    assert wrong not in str(error.value)


def test_config_repr_hides_secrets_and_managers_parse() -> None:
    config = SlackConfig.from_env(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "THREATBOT_SLACK_MANAGERS": "U01ABC, W02DEF"}
    )
    assert config.mode == "socket" and BOT not in repr(config) and APP not in repr(config)
    policy = config.managers
    assert policy.allows(SlackUser("U01ABC")) and policy.allows(SlackUser("W02DEF"))
    assert not policy.allows(SlackUser("U09XYZ", is_admin=True))
    admins = ManagerPolicy.parse("admins")
    assert admins.allows(SlackUser("U1", is_owner=True)) and not admins.allows(SlackUser("U2"))
    assert not admins.allows(SlackUser("U3", is_admin=True, known=False))  # unknown: no rights
    assert ManagerPolicy.parse("everyone").allows(SlackUser("U4"))


def test_secret_filter_redacts_configured_secrets_and_token_shapes() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "auth %s then %s", (SIGNING, "xoxp-123-456-abcdef"), None
    )
    SecretFilter([SIGNING]).filter(record)
    assert record.getMessage() == "auth [redacted] then [redacted]"


# -- HTTP mode -----------------------------------------------------------------------------------------


def test_http_mode_serves_signed_requests_and_a_health_check(fake, core) -> None:
    env = {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SIGNING, "THREATBOT_SLACK_API_URL": fake.api_url}
    component = slack_component_from_env(core, env=env, http_port=0)
    assert component is not None and component.mode == "http"
    component.start()
    try:
        base = component.url.rsplit("/slack/events", 1)[0]
        with urllib.request.urlopen(base + "/healthz", timeout=5) as health:
            assert health.read() == b"ok\n"
        body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
        stamp = str(int(time.time()))
        request = urllib.request.Request(
            component.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": SignatureVerifier(SIGNING).generate_signature(timestamp=stamp, body=body),
            },
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read()) == {"challenge": "c-123"}
    finally:
        component.stop()
    assert fake.calls_to("auth.test")  # Bolt checked the token at start-up, against the fake


# -- Socket Mode ---------------------------------------------------------------------------------------


def test_socket_mode_acknowledges_over_the_websocket_and_answers_through_the_web_api(fake, core, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "THREATBOT_SLACK_API_URL": fake.api_url}
    component = slack_component_from_env(core, env=env)
    assert component is not None and component.mode == "socket"
    component.start()
    try:
        fake.socket.wait_connected()
        [opened] = fake.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == f"Bearer {APP}"

        command = {
            "command": COMMAND,
            "text": "help",
            "user_id": "U1",
            "user_name": "ana",
            "channel_id": "C1",
            "team_id": fake.team_id,
            "response_url": fake.response_url("socket-cmd"),
            "trigger_id": "t",
        }
        started = time.monotonic()
        envelope = fake.socket.send_envelope("slash_commands", command)
        fake.socket.wait_ack(envelope)
        assert time.monotonic() - started < 1.0
        answer = fake.wait_for("response_url", where=lambda c: c.path.endswith("socket-cmd"))
        assert "Commands:" in answer.text and answer.params["response_type"] == "ephemeral"

        event = {
            "type": "event_callback",
            "team_id": fake.team_id,
            "event_id": "EvSOCKET1",
            "event": {
                "type": "app_mention",
                "user": "U1",
                "text": "<@UBOT> subscriptions",
                "ts": "1780000900.000100",
                "channel": "C9",
                "channel_type": "channel",
            },
        }
        first = fake.socket.send_envelope("events_api", event, retry_attempt=0, retry_reason="")
        fake.socket.wait_ack(first)
        retry = fake.socket.send_envelope("events_api", event, retry_attempt=1, retry_reason="timeout")
        fake.socket.wait_ack(retry)
        # This core has no feeds: the answer is a notice only the asker sees, in the mention's thread.
        reply = fake.wait_for("chat.postEphemeral", where=lambda c: c.params.get("channel") == "C9")
        assert reply.params["thread_ts"] == "1780000900.000100" and reply.params["user"] == "U1"
        assert "Feeds aren't configured" in reply.text
        fake.quiet(0.5)
        assert len([c for c in fake.calls_to("chat.postEphemeral") if c.params.get("channel") == "C9"]) == 1
    finally:
        component.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert APP not in logged and BOT not in logged


# -- the feed target and the manifest -----------------------------------------------------------------


def test_the_feed_target_needs_only_the_bot_token(fake, tmp_path) -> None:
    settings = Settings.from_env(tmp_path / "data")
    assert slack_target_from_env(settings, env={}) is None
    target = slack_target_from_env(settings, env={"SLACK_BOT_TOKEN": BOT, "THREATBOT_SLACK_API_URL": fake.api_url})
    assert isinstance(target, SlackTarget) and target.handles("slack") and not target.handles("discord")
    assert target.rate_hint.messages_per_second == 1.0
    assert target.client.base_url == fake.api_url
    target.close()


def test_the_manifest_asks_for_exactly_what_the_code_uses() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == set(BOT_EVENTS)
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # DMs
