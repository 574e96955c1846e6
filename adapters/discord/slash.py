"""The app commands: ``/threat`` for everyone, ``/threat-admin`` for whoever manages the feeds.

One subcommand per chat command, options named as the core reads them. Each subcommand only
collects its options and hands ``(interaction, name, options)`` to the bot's handler, which builds
``Command.from_options(name, options)`` — the grammar stays in ``bot.commands``.

The commands that change what the bot does for everybody (subscribe, unsubscribe, adding a feed
source) sit in their own top-level command, ``/threat-admin``, registered with
``default_member_permissions`` = Manage Channels. Discord then only offers it to people with that
permission, and a server admin can change who sees it in Server Settings → Integrations → threatbot
(per role, member or channel) — which Discord only allows per *top-level* command. The bot still
checks ``THREATBOT_DISCORD_MANAGERS`` itself on every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import discord
from discord import app_commands

from adapters.discord.limits import clip
from bot.commands import LATEST_MAX, USAGE, Verb

__all__ = [
    "ADMIN_GROUP_NAME",
    "GROUP_NAME",
    "CommandHandler",
    "ThreatAdminCommands",
    "ThreatCommands",
    "command_groups",
]

GROUP_NAME = "threat"
ADMIN_GROUP_NAME = "threat-admin"

CommandHandler = Callable[[discord.Interaction, str, dict[str, Any]], Awaitable[None]]


def _about(verb: Verb) -> str:
    """The command's description, from the core's usage line (Discord allows 100 characters)."""
    return clip(USAGE[verb][1].replace("`", ""), 100)


class ThreatCommands(app_commands.Group):
    """``/threat search|latest|show|subscriptions|sources|stack|help``: reading, for everyone."""

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

    @app_commands.command(name="subscriptions", description=_about(Verb.SUBSCRIPTIONS))
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "subscriptions", {})

    @app_commands.command(name="sources", description="the feeds and their health")
    async def sources(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "sources", {"action": "list"})

    @app_commands.command(name="stack", description=_about(Verb.STACK))
    @app_commands.describe(action="list what this server runs (default), or the exposure report")
    async def stack(self, interaction: discord.Interaction, action: Literal["list", "report"] | None = None) -> None:
        await self.handler(interaction, "stack", {"action": action or "list"})

    @app_commands.command(name="help", description="how to ask threatbot, and its commands")
    async def help(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "help", {})


class ThreatAdminCommands(app_commands.Group):
    """``/threat-admin subscribe|unsubscribe|resume|add-source|stack-add|stack-remove``: changing the feeds, for managers."""

    def __init__(self, handler: CommandHandler) -> None:
        super().__init__(
            name=ADMIN_GROUP_NAME,
            description="Manage threatbot's feeds in this channel (subscriptions, sources)",
            default_permissions=discord.Permissions(manage_channels=True),
        )
        self.handler = handler

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

    @app_commands.command(name="resume", description=clip(USAGE[Verb.RESUME][1], 100))
    async def resume(self, interaction: discord.Interaction) -> None:
        await self.handler(interaction, "resume", {})

    @app_commands.command(name="add-source", description="add a feed (RSS/Atom URL) every server's subscriptions read")
    @app_commands.describe(url="the feed URL to add")
    async def add_source(self, interaction: discord.Interaction, url: app_commands.Range[str, 1, 500]) -> None:
        await self.handler(interaction, "sources", {"action": "add", "url": url})

    @app_commands.command(
        name="stack-add", description="add a product this server runs; answers then mark what affects it"
    )
    @app_commands.describe(product="a product and version, e.g. FortiOS 7.2.5, or a CPE 2.3 name")
    async def stack_add(self, interaction: discord.Interaction, product: app_commands.Range[str, 1, 300]) -> None:
        await self.handler(interaction, "stack", {"action": "add", "product": product})

    @app_commands.command(name="stack-remove", description="remove an entry from this server's stack")
    @app_commands.describe(id="the entry's id (/threat stack lists them)")
    async def stack_remove(self, interaction: discord.Interaction, id: app_commands.Range[str, 1, 20]) -> None:
        await self.handler(interaction, "stack", {"action": "remove", "id": id})


def command_groups(handler: CommandHandler) -> list[app_commands.Group]:
    """Every top-level command the bot registers, each calling ``handler``."""
    return [ThreatCommands(handler), ThreatAdminCommands(handler)]
