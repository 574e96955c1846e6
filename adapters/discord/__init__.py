"""The Discord adapter: a discord.py bot over the conversation core, and feed delivery by bot or webhook.

One job per module:

* ``bot`` — :class:`DiscordBot`: ``/threat`` commands, mentions, DMs, follow-ups in its threads;
* ``slash`` — the ``/threat`` app command group;
* ``render`` / ``limits`` — replies and feed payloads as embeds, inside Discord's limits;
* ``delivery`` — :class:`DiscordTarget`: incidents, updates (in the incident's thread), digests;
* ``webhook`` — :class:`DiscordWebhookTarget`: the feed through a channel webhook, no bot needed;
* ``component`` — :func:`platform`: Discord's :class:`bot.platform.Platform` for ``threatbot serve``;
* ``sync`` — registering the app commands only when they changed, in one scope only;
* ``config`` / ``endpoints`` / ``permissions`` — environment, API URLs, invite and manager rules;
* ``cli`` — ``threatbot discord invite``.

See ``docs/discord.md`` for setting it up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The front door is lazy: ``threatbot --help`` should not pay for importing discord.py and the core.
_EXPORTS = {
    "DiscordBot": "adapters.discord.bot",
    "DiscordComponent": "adapters.discord.component",
    "DiscordPlatform": "adapters.discord.component",
    "platform": "adapters.discord.component",
    "discord_component_from_env": "adapters.discord.component",
    "discord_targets": "adapters.discord.component",
    "DiscordSettings": "adapters.discord.config",
    "DiscordTarget": "adapters.discord.delivery",
    "point_discord_at": "adapters.discord.endpoints",
    "ManagerPolicy": "adapters.discord.permissions",
    "invite_url": "adapters.discord.permissions",
    "required_permissions": "adapters.discord.permissions",
    "DiscordWebhookTarget": "adapters.discord.webhook",
    "parse_webhook_url": "adapters.discord.webhook",
}

__all__ = [
    "DiscordBot",
    "DiscordComponent",
    "DiscordPlatform",
    "DiscordSettings",
    "DiscordTarget",
    "DiscordWebhookTarget",
    "ManagerPolicy",
    "discord_component_from_env",
    "discord_targets",
    "invite_url",
    "parse_webhook_url",
    "platform",
    "point_discord_at",
    "required_permissions",
]

if TYPE_CHECKING:
    from adapters.discord.bot import DiscordBot
    from adapters.discord.component import (
        DiscordComponent,
        DiscordPlatform,
        discord_component_from_env,
        discord_targets,
        platform,
    )
    from adapters.discord.config import DiscordSettings
    from adapters.discord.delivery import DiscordTarget
    from adapters.discord.endpoints import point_discord_at
    from adapters.discord.permissions import ManagerPolicy, invite_url, required_permissions
    from adapters.discord.webhook import DiscordWebhookTarget, parse_webhook_url


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adapters.discord' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
