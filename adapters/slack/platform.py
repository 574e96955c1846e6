"""Slack's side of the one contract between ``serve`` and a chat platform (:class:`bot.platform.Platform`).

``platform()`` reads the environment once (``SlackConfig``): ``status()`` says what will run and, when
something is missing, which setting; ``chat_component(core)`` wraps the shared core in the Bolt app
(Socket Mode or HTTP); ``delivery_targets()`` gives the feed target when ``SLACK_BOT_TOKEN`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from adapters.slack.config import SlackConfig
from bot.platform import PlatformStatus

if TYPE_CHECKING:
    from adapters.slack.component import SlackComponent
    from adapters.slack.retry import RetryingSlackComponent
    from bot.conversation import Conversation
    from bot.delivery.base import DeliveryTarget

__all__ = ["SlackPlatform", "platform"]


class SlackPlatform:
    """Slack as ``serve`` sees it: chat (Socket Mode or HTTP) and feed posts, either, both or neither."""

    name = "slack"

    def __init__(
        self,
        config: SlackConfig,
        *,
        database_path=None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.database_path = database_path
        self._env = env
        self._clock = clock
        self._component: object | None = None

    def status(self) -> PlatformStatus:
        from adapters.slack.retry import RetryingSlackComponent

        config = self.config
        if isinstance(self._component, RetryingSlackComponent):
            detail = "Slack did not answer at start; chat retries with backoff (feed posts retry too)"
        elif not config.configured:
            detail = "not configured: set SLACK_BOT_TOKEN (and SLACK_APP_TOKEN for chat), see docs/slack.md"
        elif config.mode == "socket":
            detail = "Socket Mode: /threat, mentions, DMs and group DMs; feed posts"
        elif config.mode == "http":
            detail = f"HTTP mode on {config.http_host}:{config.http_port}/slack/events; feed posts"
        else:
            detail = config.chat_problem() or "Slack settings are incomplete"
        return PlatformStatus(self.name, chat=config.mode is not None, delivery=bool(config.bot_token), detail=detail)

    def chat_component(self, core: Conversation) -> SlackComponent | RetryingSlackComponent | None:
        """The Bolt app around the shared core; raises ``SlackConfigError`` if Slack refuses the token.

        Slack unreachable at start-up gives a component that keeps retrying (``adapters.slack.retry``).
        """
        from adapters.slack.component import slack_component_from_env

        if self.config.mode is None:
            return None
        component = slack_component_from_env(core, http_port=self.config.http_port, env=self._env, clock=self._clock)
        self._component = component
        return component

    def delivery_targets(self) -> list[DeliveryTarget]:
        from adapters.slack.delivery import SlackTarget

        if not self.config.bot_token or self.database_path is None:
            return []
        return [SlackTarget.open(self.config.bot_token, self.database_path, api_url=self.config.api_url)]


def platform(
    settings=None,
    *,
    http_port: int | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SlackPlatform:
    """Slack's :class:`bot.platform.Platform` from the environment; ``settings`` gives the database for feed posts.

    Raises :class:`~adapters.slack.config.SlackConfigError` (a ValueError) for settings that cannot work.
    """
    config = SlackConfig.from_env(env, http_port=http_port)
    return SlackPlatform(
        config, database_path=settings.database_path if settings is not None else None, env=env, clock=clock
    )
