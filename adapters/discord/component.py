"""How ``threatbot serve`` runs the Discord adapter: a component for the daemon, and the delivery targets.

:func:`platform` returns the :class:`DiscordPlatform`, Discord's side of the one contract between
``serve`` and a chat platform (:class:`bot.platform.Platform`): ``status()`` for the start-up line,
``chat_component(core)`` for the bot around the shared core (``DiscordComponent``: login, command sync,
gateway; stopped cleanly on SIGTERM), ``delivery_targets()`` for feed posts: a
:class:`~adapters.discord.delivery.DiscordTarget` for ``discord`` subscriptions with ``DISCORD_BOT_TOKEN``,
a :class:`~adapters.discord.webhook.DiscordWebhookTarget` for ``discord-webhook`` ones with
``THREATBOT_DISCORD_WEBHOOK_URL`` / ``THREATBOT_DISCORD_WEBHOOKS``. ``serve`` builds the core once and
hands it to every platform. :func:`discord_component_from_env` builds the component around a given
conversation, for callers that assemble their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import discord

from adapters.discord.bot import DiscordBot
from adapters.discord.config import DiscordSettings
from adapters.discord.delivery import DiscordTarget
from adapters.discord.endpoints import point_discord_at
from adapters.discord.webhook import DiscordWebhookTarget
from bot.conversation import Conversation
from bot.delivery.base import DeliveryTarget
from bot.platform import PlatformStatus

__all__ = [
    "DiscordComponent",
    "DiscordPlatform",
    "apply_endpoints",
    "discord_component_from_env",
    "discord_targets",
    "platform",
]

log = logging.getLogger(__name__)

INTENT_HELP = (
    "Discord refused the Message Content intent: enable it for the bot in the Developer Portal "
    "(Bot → Privileged Gateway Intents → Message Content), or unset THREATBOT_DISCORD_MESSAGE_CONTENT "
    "to run with mentions and DMs only."
)


class DiscordComponent:
    """The bot as a daemon component: logs in (retrying network failures), connects, closes on stop."""

    name = "discord"

    def __init__(self, bot: DiscordBot, token: str, *, max_backoff: float = 300.0) -> None:
        self.bot = bot
        self._token = token
        self.max_backoff = max_backoff

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if not await self._login(stop):
                return
            connect = asyncio.create_task(self.bot.connect(reconnect=True), name="discord-gateway")
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({connect, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if connect.done():
                error = connect.exception()
                if isinstance(error, discord.PrivilegedIntentsRequired):
                    raise RuntimeError(INTENT_HELP) from error
                if error is not None:
                    raise error
                return
            await self.bot.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(connect, 10)
        finally:
            if not self.bot.is_closed():
                await self.bot.close()

    async def _login(self, stop: asyncio.Event) -> bool:
        """Log in (this also syncs the commands); False when stopped first. A refused token is fatal."""
        delay = 2.0
        while not stop.is_set():
            try:
                await self.bot.login(self._token)
                return True
            except discord.LoginFailure as error:
                raise RuntimeError(
                    "Discord refused DISCORD_BOT_TOKEN: copy it again from the Developer Portal"
                ) from error
            except (TimeoutError, aiohttp.ClientError, OSError, discord.DiscordServerError) as error:
                log.warning("Discord unreachable (%s: %s); retrying in %.0f s", type(error).__name__, error, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.max_backoff)
        return False


def apply_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py at the configured API and gateway (Discord's own unless the environment says otherwise)."""
    point_discord_at(settings.endpoints.api_url, settings.endpoints.gateway_url)


def discord_component_from_env(
    conversation: Conversation, *, settings: DiscordSettings | None = None, **bot_options: Any
) -> DiscordComponent | None:
    """The bot around ``conversation``, or None when ``DISCORD_BOT_TOKEN`` is not set."""
    settings = settings or DiscordSettings.from_env()
    if not settings.has_bot:
        return None
    apply_endpoints(settings)
    return DiscordComponent(DiscordBot(conversation, settings, **bot_options), settings.token)


def discord_targets(settings: DiscordSettings | None = None) -> list[DeliveryTarget]:
    """The delivery targets the environment configures: the bot's, the webhooks', both or none."""
    settings = settings or DiscordSettings.from_env()
    apply_endpoints(settings)
    targets: list[DeliveryTarget] = []
    if settings.has_bot:
        targets.append(DiscordTarget(settings.token))
    if settings.webhooks:
        targets.append(DiscordWebhookTarget(settings.webhooks))
    return targets


class DiscordPlatform:
    """Discord as ``serve`` sees it (:class:`bot.platform.Platform`): a bot, webhooks, both or neither."""

    name = "discord"

    def __init__(self, settings: DiscordSettings, **bot_options: Any) -> None:
        self.settings = settings
        self._bot_options = bot_options
        apply_endpoints(settings)

    def status(self) -> PlatformStatus:
        settings = self.settings
        parts: list[str] = []
        if settings.has_bot:
            where = f"server {settings.guild_id}" if settings.guild_id else "all servers"
            content = "every message in its threads" if settings.message_content else "mentions, replies and DMs"
            parts.append(f"bot: /threat and /threat-admin on {where}; reads {content}")
        if settings.webhooks:
            names = sorted(settings.webhooks)
            routes = "any subscription name" if names == ["*"] else ", ".join(n for n in names if n != "*")
            parts.append(f"webhook-only feed for {routes}")
        if not parts:
            parts.append(
                "not configured: set DISCORD_BOT_TOKEN for the bot, or THREATBOT_DISCORD_WEBHOOK_URL for a feed only"
            )
        return PlatformStatus(
            name=self.name,
            chat=settings.has_bot,
            delivery=settings.has_bot or bool(settings.webhooks),
            detail="; ".join(parts),
        )

    def chat_component(self, core: Conversation) -> DiscordComponent | None:
        if not self.settings.has_bot:
            return None
        return DiscordComponent(DiscordBot(core, self.settings, **self._bot_options), self.settings.token)

    def delivery_targets(self) -> list[DeliveryTarget]:
        return discord_targets(self.settings)


def platform(
    settings: Any = None,
    *,
    discord_settings: DiscordSettings | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    **bot_options: Any,
) -> DiscordPlatform:
    """Discord's :class:`bot.platform.Platform`, from the environment (``env``, default ``os.environ``).

    ``settings`` is what ``serve`` hands every platform (the core's ``bot.config.Settings``; Discord
    needs nothing from it) or a :class:`DiscordSettings` to use as is. ``clock`` pins the bot's "now"
    (tests). Raises ValueError naming the variable when the environment is wrong — never for "not
    configured": ``status()`` says that.
    """
    if discord_settings is None and isinstance(settings, DiscordSettings):
        discord_settings = settings
    if clock is not None:
        bot_options["clock"] = clock
    return DiscordPlatform(discord_settings or DiscordSettings.from_env(env), **bot_options)
