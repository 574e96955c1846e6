"""Running the Slack app inside ``threatbot serve``: Socket Mode or an HTTP endpoint, started and stopped cleanly.

:class:`SlackComponent` is a ``bot.daemon`` component (``name`` and ``async run(stop)``). In Socket
Mode it opens Slack's WebSocket (``apps.connections.open`` with the app token) and needs no public
URL; in HTTP mode it serves ``POST /slack/events`` (commands, events and interactivity alike; Bolt
verifies each request's signature) and ``GET /healthz`` on a threaded WSGI server.

Factories for ``serve`` (see ``docs/slack.md`` for the settings):

* :func:`slack_component_from_env` — the chat component around a given core, or
  None when Slack is not configured (or only ``SLACK_BOT_TOKEN`` is, which is enough for feed posts;
  a warning then says what chat would need). Settings that cannot work raise
  :class:`~adapters.slack.config.SlackConfigError` with the missing setting named.
* :func:`slack_target_from_env` — the feed :class:`~adapters.slack.delivery.SlackTarget`, or None
  without ``SLACK_BOT_TOKEN``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from slack_bolt.error import BoltError

from adapters.slack.app import SlackAdapter
from adapters.slack.client import guarded_logger
from adapters.slack.config import WHERE, SlackConfig, SlackConfigError
from adapters.slack.delivery import SlackTarget
from adapters.slack.http import ServerThread, slack_asgi_app
from adapters.slack.retry import RetryingSlackComponent, is_unreachable
from bot.conversation import Conversation

__all__ = [
    "SlackComponent",
    "slack_component_from_env",
    "slack_target_from_env",
]

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


class SlackComponent:
    """The Slack app as a long-running component: ``start()``/``stop()``, or ``await run(stop)``."""

    name = "slack"

    def __init__(
        self,
        adapter: SlackAdapter,
        *,
        mode: str,
        app_token: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in ("socket", "http"):
            raise ValueError(f"mode must be 'socket' or 'http', not {mode!r}")
        if mode == "socket" and not app_token:
            raise SlackConfigError("Socket Mode needs SLACK_APP_TOKEN")
        self.adapter = adapter
        self.mode = mode
        self.host = host
        self.port = port
        self._app_token = app_token
        self._server: ServerThread | None = None
        self._thread: threading.Thread | None = None
        self._socket: Any = None

    @property
    def url(self) -> str | None:
        """Where HTTP mode listens (``http://host:port/slack/events``), once started."""
        if self._server is None:
            return None
        host, port = self._server.address
        return f"http://{host}:{port}{EVENTS_PATH}"

    def start(self) -> None:
        self.adapter.warm_up()
        if self.mode == "http":
            self._server = ServerThread(
                slack_asgi_app(self.adapter.app, events_path=EVENTS_PATH, health_path=HEALTH_PATH),
                host=self.host,
                port=self.port,
            )
            self._server.start()
            self.adapter.log.info("Slack HTTP mode: listening on %s", self.url)
            return
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._socket = SocketModeHandler(
            self.adapter.app,
            app_token=self._app_token,
            logger=guarded_logger("adapters.slack.socket", [self._app_token]),
        )
        self._socket.connect()
        self.adapter.log.info("Slack Socket Mode: connected")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
        self.adapter.close(wait=True)  # answers already being worked on are still sent

    async def run(self, stop: asyncio.Event) -> None:
        from bot.daemon import in_thread

        await in_thread(self.start)
        try:
            await stop.wait()
        finally:
            await in_thread(self.stop)


def slack_component_from_env(
    conversation: Conversation | Callable[[], Conversation],
    *,
    http_port: int | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SlackComponent | RetryingSlackComponent | None:
    """The Slack chat component as the environment configures it.

    ``conversation`` is the core, or a function making it (called only when Slack chat will run).
    None when Slack is not configured, or when only ``SLACK_BOT_TOKEN`` is set (feed posts work; a
    warning says what chat needs). Raises :class:`SlackConfigError` for settings that cannot work.
    ``http_port`` is ``serve --slack-http PORT``.
    """
    config = SlackConfig.from_env(env, http_port=http_port)
    if not config.configured:
        log.info("Slack: not configured (see docs/slack.md)")
        return None
    if config.mode is None:
        problem = config.chat_problem() or "Slack settings are incomplete"
        feeds_only = config.bot_token and not (
            config.app_token or config.signing_secret or config.http_port is not None
        )
        if feeds_only:
            log.warning("%s", problem)
            return None
        raise SlackConfigError(problem)
    core = conversation if isinstance(conversation, Conversation) else conversation()
    build = partial(_build_component, config, core, clock)
    try:
        return build()
    except Exception as error:  # Slack unreachable at start-up: serve runs on, chat retries with backoff
        if not is_unreachable(error):
            raise
        log.warning("Slack unreachable (%s): serve goes on, chat retries with backoff", type(error).__name__)
        return RetryingSlackComponent(build)


def _build_component(config: SlackConfig, core: Conversation, clock: Callable[[], datetime] | None) -> SlackComponent:
    try:
        adapter = SlackAdapter(
            core,
            bot_token=config.bot_token,
            signing_secret=config.signing_secret,
            api_url=config.api_url,
            managers=config.managers,
            workers=config.workers,
            clock=clock,
            secrets=tuple(config.secrets),
        )
    except BoltError as error:  # auth.test refused the token at start-up
        raise SlackConfigError(
            f"Slack refused SLACK_BOT_TOKEN ({_reason(error)}): {WHERE['SLACK_BOT_TOKEN']}; reinstall the app if it "
            "was revoked"
        ) from None
    return SlackComponent(
        adapter,
        mode=config.mode or "socket",  # the caller checked that chat can run (mode is set)
        app_token=config.app_token,
        host=config.http_host,
        port=config.http_port or 0,
    )


def _reason(error: BoltError) -> str:
    text = str(error)
    for code in ("invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"):
        if code in text:
            return code
    return "auth.test failed"


def slack_target_from_env(settings, *, env: Mapping[str, str] | None = None) -> SlackTarget | None:
    """The feed target when ``SLACK_BOT_TOKEN`` is set (None otherwise), on ``settings.database_path``."""
    config = SlackConfig.from_env(env)
    if not config.bot_token:
        return None
    return SlackTarget.open(config.bot_token, settings.database_path, api_url=config.api_url)
