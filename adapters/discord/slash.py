"""The ``/threat`` app command group: one subcommand per chat command, options named as the core reads them.

Each subcommand only collects its options and hands ``(interaction, name, options)`` to the bot's
handler, which builds ``Command.from_options(name, options)`` — the grammar stays in ``bot.commands``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import discord
from discord import app_commands

from adapters.discord.limits import clip
from bot.commands import LATEST_MAX, USAGE, Verb

__all__ = ["GROUP_NAME", "CommandHandler", "ThreatCommands"]

GROUP_NAME = "threat"

CommandHandler = Callable[[discord.Interaction, str, dict[str, Any]], Awaitable[None]]


def _about(verb: Verb) -> str:
    """The command's description, from the core's usage line (Discord allows 100 characters)."""
    return clip(USAGE[verb][1].replace("`", ""), 100)


class ThreatCommands(app_commands.Group):
    """``/threat search|latest|show|subscribe|unsubscribe|subscriptions|sources|help``."""

    def __init__(self, handler: CommandHandler) -> None:
        super().__init__(name=GROUP_NAME, description="Ask threatbot about security incidents, outages and feeds")
        self.handler = handler

    @app_commands.command(name="search", description=_about(Verb.SEARCH))
    @app_commands.describe(query="what to look for, e.g. fortinet exploited this week")
    async def search(self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 300]) -> None:
        await self.handler(interaction, "search", {"query": query})

    @app_commands.command(name="latest", description=_about(Verb.LATEST))
    @app_commands.describe(count=f"how many stories (1–{LATEST_MAX})", filters="e.g. critical outages")
    async def latest(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, LATEST_MAX] | None = None,
        filters: app_commands.Range[str, 0, 300] | None = None,
    ) -> None:
        await self.handler(interaction, "latest", {"count": count, "filters": filters})

    @app_commands.command(name="show", description=_about(Verb.SHOW))
    @app_commands.describe(id="a record id, an id prefix, or a number from the list in this thread")
    async def show(self, interaction: discord.Interaction, id: app_commands.Range[str, 1, 200]) -> None:
        await self.handler(interaction, "show", {"id": id})

    @app_commands.command(name="subscribe", description=_about(Verb.SUBSCRIBE))
    @app_commands.describe(filters="what to watch, e.g. exploited fortinet (in a thread: blank watches its topic)")
    async def subscribe(
        self, interaction: discord.Interaction, filters: app_commands.Range[str, 0, 300] | None = None
    ) -> None:
        await self.handler(interaction, "subscribe", {"filters": filters})

    @app_commands.command(name="unsubscribe", description=_about(Verb.UNSUBSCRIBE))
    @app_commands.describe(id="the subscription's id (/threat subscriptions lists them)")
    async def unsubscribe(self, interaction: discord.Interaction, id: app_commands.Range[str, 1, 100]) -> None:
        await self.handler(interaction, "unsubscribe", {"id": id})

    @app_commands.command(name="subscriptions", description=_about(Verb.SUBSCRIPTIONS))
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "subscriptions", {})

    @app_commands.command(name="sources", description=_about(Verb.SOURCES))
    @app_commands.describe(action="list the feeds, or add one", url="the feed URL to add")
    async def sources(
        self,
        interaction: discord.Interaction,
        action: Literal["list", "add"] | None = None,
        url: app_commands.Range[str, 1, 500] | None = None,
    ) -> None:
        await self.handler(interaction, "sources", {"action": action or ("add" if url else None), "url": url})

    @app_commands.command(name="help", description="how to ask threatbot, and its commands")
    async def help(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "help", {})
