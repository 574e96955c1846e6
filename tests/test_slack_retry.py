"""Slack unreachable when ``serve`` starts: one warning, retries with backoff, never a crash."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import urllib.error

import pytest

from adapters.slack import slack_component_from_env
from adapters.slack.config import SlackConfigError
from adapters.slack.retry import RetryingSlackComponent
from bot.config import Settings
from bot.conversation import Conversation
from retrieval.store import RecordStore

BOT = "xoxb-77-88-" + secrets.token_hex(8)
APP = "xapp-1-A1-" + secrets.token_hex(8)


@pytest.fixture
def core(tmp_path):
    store = RecordStore(Settings.from_env(tmp_path / "data"))
    yield Conversation(store)
    store.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_slack_gives_a_retrying_component_not_a_traceback(core, caplog) -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_APP_TOKEN": APP,
        "THREATBOT_SLACK_API_URL": f"http://127.0.0.1:{_closed_port()}/api/",
    }
    with caplog.at_level(logging.WARNING):
        component = slack_component_from_env(core, env=env)
    assert isinstance(component, RetryingSlackComponent)
    assert "Slack unreachable (URLError)" in caplog.text and BOT not in caplog.text

    component.first_delay = 0.05

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        for _ in range(300):
            if component.attempts >= 2:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert component.attempts >= 2  # it kept trying, with growing waits, until told to stop


def test_backoff_grows_then_the_component_runs_once_slack_answers(caplog) -> None:
    attempts: list[int] = []
    ran = asyncio.Event()

    class Connected:
        async def run(self, stop: asyncio.Event) -> None:
            ran.set()
            await stop.wait()

    def build() -> Connected:
        attempts.append(1)
        if len(attempts) < 3:
            raise urllib.error.URLError("no route to host")
        return Connected()

    retrying = RetryingSlackComponent(build, first_delay=0.02, max_delay=0.05, jitter=lambda: 0.0)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(retrying.run(stop))
        await asyncio.wait_for(ran.wait(), 10)
        stop.set()
        await asyncio.wait_for(task, 10)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert len(attempts) == 3
    assert "retries in 0 s" in caplog.text and "reachable again after 3 attempt(s)" in caplog.text


def test_a_refused_token_stops_retrying(caplog) -> None:
    def build() -> None:
        raise SlackConfigError("Slack refused SLACK_BOT_TOKEN (invalid_auth)")

    async def scenario() -> None:
        await asyncio.wait_for(RetryingSlackComponent(build).run(asyncio.Event()), 5)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "Slack chat is off: Slack refused SLACK_BOT_TOKEN" in caplog.text
