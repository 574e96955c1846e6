"""Registering the app commands: only when they changed, and in one place only.

Discord shows a server's members both the global commands and that server's own; a bot that was
once synced to a test server (``THREATBOT_DISCORD_GUILD_ID``) and later globally — or the other way
round — would leave every member two ``/threat`` entries. And a bulk overwrite on every start
re-registers unchanged commands (Discord rate-limits command creation to 200 a day per server).

So :func:`sync_commands` fetches what is registered where the commands belong, overwrites only when
the definitions differ (compared field by field with :func:`same_commands`), and deletes copies of
the same names from the other scope: the global ones when syncing to a server, and each server's own
(:func:`remove_server_copies`, called once the servers are known) when syncing globally.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import discord
from discord import app_commands

__all__ = ["remove_server_copies", "same_commands", "sync_commands"]

log = logging.getLogger(__name__)

#: Fields Discord adds to a registered command that are not part of its definition.
_SERVER_FIELDS = frozenset({"id", "application_id", "version", "guild_id"})


def _clean(value: Any) -> Any:
    """A definition without its empty or default-off values (Discord omits or adds those freely)."""
    if isinstance(value, Mapping):
        cleaned = {k: _clean(v) for k, v in value.items() if k not in _SERVER_FIELDS}
        return {k: v for k, v in cleaned.items() if v not in (None, False, [], {})}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _covers(mine: Any, theirs: Any) -> bool:
    """Whether the registered ``theirs`` says everything the local ``mine`` says."""
    if isinstance(mine, Mapping):
        return isinstance(theirs, Mapping) and all(_covers(v, theirs.get(k)) for k, v in mine.items())
    if isinstance(mine, list):
        return isinstance(theirs, list) and len(mine) == len(theirs) and all(map(_covers, mine, theirs))
    if isinstance(mine, int | str) and isinstance(theirs, int | str) and not isinstance(mine, bool):
        return str(mine) == str(theirs)
    return bool(mine == theirs)


def same_commands(local: Sequence[Mapping[str, Any]], registered: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the registered commands are exactly the local definitions (names, options, permissions)."""
    if sorted(c["name"] for c in local) != sorted(c["name"] for c in registered):
        return False
    by_name = {c["name"]: c for c in registered}
    for command in local:
        theirs = by_name[command["name"]]
        # Who may use it is compared even when unset locally: dropping a restriction is a change.
        if str(command.get("default_member_permissions")) != str(theirs.get("default_member_permissions")):
            return False
        if not _covers(_clean(command), theirs):
            return False
    return True


async def _delete_copies(
    client: discord.Client, registered: Iterable[Mapping[str, Any]], names: set[str], guild_id: int | None
) -> int:
    app_id = client.application_id
    assert app_id is not None
    removed = 0
    for command in registered:
        if command.get("name") not in names:
            continue
        if guild_id is None:
            await client.http.delete_global_command(app_id, command["id"])
        else:
            await client.http.delete_guild_command(app_id, guild_id, command["id"])
        removed += 1
    return removed


async def sync_commands(
    client: discord.Client, tree: app_commands.CommandTree, guild_id: int | None
) -> list[app_commands.AppCommand]:
    """Register the tree's commands on ``guild_id`` (instant) or globally, if they changed; remove other copies.

    Raises ``discord.HTTPException`` when Discord refuses; the caller logs it (the commands of an
    earlier sync keep working).
    """
    app_id = client.application_id
    assert app_id is not None, "sync after login: the application id comes with it"
    guild = discord.Object(id=guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    local = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    names = {c["name"] for c in local}
    if guild_id:
        registered = await client.http.get_guild_commands(app_id, guild_id)
    else:
        registered = await client.http.get_global_commands(app_id)
    if same_commands(local, registered):  # type: ignore[arg-type]
        log.info("app commands %s unchanged: not registered again", ", ".join(sorted(names)))
        synced = [app_commands.AppCommand(data=data, state=client._connection) for data in registered]
    else:
        synced = await tree.sync(guild=guild)
        log.info("registered %s for %s", ", ".join(sorted(names)), f"server {guild_id}" if guild_id else "all servers")
    if guild_id:
        removed = await _delete_copies(client, await client.http.get_global_commands(app_id), names, None)  # type: ignore[arg-type]
        if removed:
            log.info("removed %d global copy(ies) of the commands now registered on server %s", removed, guild_id)
    return synced


async def remove_server_copies(client: discord.Client, tree: app_commands.CommandTree) -> int:
    """With global commands: delete each server's own copies of them (left by an earlier per-server sync)."""
    if client.application_id is None:
        return 0
    names = {command.name for command in tree.get_commands()}
    removed = 0
    for guild in client.guilds:
        if client.is_closed():
            break  # shutting down: the next start checks again
        try:
            registered = await client.http.get_guild_commands(client.application_id, guild.id)
            removed += await _delete_copies(client, registered, names, guild.id)  # type: ignore[arg-type]
        except discord.HTTPException as error:
            log.warning("could not check server %s for copies of the commands: %s", guild.id, error.text)
        except RuntimeError:  # the HTTP session closed under us: the client is stopping
            if not client.is_closed():
                raise
            break
    if removed:
        log.info("removed %d per-server copy(ies) of the global commands", removed)
    return removed
