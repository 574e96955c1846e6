"""``threatbot discord invite``: the URL that adds the bot to a server, asking for exactly what it uses.

``bot.cli.build_parser`` registers it with ``add_discord_commands(add)``, ``add`` being the CLI's
subcommand factory. The URL goes to standard output alone (``open "$(threatbot discord invite)"``);
what it asks for, and why, goes to standard error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["add_discord_commands", "cmd_discord"]

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def _snowflake(value: str) -> int:
    if not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"a Discord id is a number, not {value!r}")
    return int(value)


def add_discord_commands(add: AddCommand) -> argparse.ArgumentParser:
    """Register ``discord`` (action ``invite``) with the CLI's subcommand factory; returns its parser."""
    parser = add("discord", cmd_discord, "Discord bot helpers: `discord invite` prints the URL that adds the bot")
    parser.add_argument("action", choices=["invite"], help="invite: print the bot's invite URL")
    parser.add_argument(
        "--client-id",
        type=_snowflake,
        default=None,
        help="the application (client) id from the Developer Portal (env DISCORD_APPLICATION_ID)",
    )
    parser.add_argument("--guild", type=_snowflake, default=None, help="pre-select this server id in the invite")
    return parser


def cmd_discord(args: argparse.Namespace) -> int:
    from adapters.discord.permissions import BOT_PERMISSIONS, INVITE_SCOPES, invite_url, required_permissions

    client_id = args.client_id
    if client_id is None:
        from bot.config import Settings

        configured = Settings.load().discord_application_id.strip()
        if not configured:
            print(
                "discord invite: give --client-id or set DISCORD_APPLICATION_ID "
                "(Developer Portal → your application → General Information → Application ID)",
                file=sys.stderr,
            )
            return 2
        if not configured.isdigit():
            print(f"discord invite: DISCORD_APPLICATION_ID must be a number, not {configured!r}", file=sys.stderr)
            return 2
        client_id = int(configured)
    print(invite_url(client_id, guild_id=args.guild))
    permissions = required_permissions()
    print(f"scopes: {' '.join(INVITE_SCOPES)}; permissions {permissions.value}:", file=sys.stderr)
    for flag, why in BOT_PERMISSIONS.items():
        print(f"  {flag}: {why}", file=sys.stderr)
    return 0
