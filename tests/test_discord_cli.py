"""``threatbot discord invite`` and the permission rules behind it."""

from __future__ import annotations

import argparse
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from adapters.discord.cli import add_discord_commands
from adapters.discord.permissions import BOT_PERMISSIONS, ManagerPolicy, required_permissions


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="threatbot")
    commands = root.add_subparsers(dest="command", required=True)

    def add(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add_discord_commands(add)
    return root


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return args.handler(args)


def test_invite_prints_exactly_the_scopes_and_permissions_the_code_uses(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DISCORD_APPLICATION_ID", raising=False)
    assert run(["discord", "invite", "--client-id", "1100000000000000002"]) == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert "\n" not in url
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["1100000000000000002"]
    assert query["scope"] == ["bot applications.commands"]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert all(getattr(granted, flag) for flag in BOT_PERMISSIONS)
    assert bin(granted.value).count("1") == len(BOT_PERMISSIONS)  # nothing more
    assert not (granted.administrator or granted.manage_guild or granted.manage_messages or granted.mention_everyone)
    assert "create_public_threads" in err and str(required_permissions().value) in err


def test_invite_reads_the_application_id_from_the_environment(capsys, monkeypatch) -> None:
    monkeypatch.setenv("DISCORD_APPLICATION_ID", "1100000000000000005")
    assert run(["discord", "invite", "--guild", "1100000000000000001"]) == 0
    query = parse_qs(urlsplit(capsys.readouterr().out.strip()).query)
    assert query["client_id"] == ["1100000000000000005"] and query["guild_id"] == ["1100000000000000001"]


def test_invite_without_an_application_id_says_where_to_find_it(capsys, monkeypatch) -> None:
    monkeypatch.delenv("DISCORD_APPLICATION_ID", raising=False)
    assert run(["discord", "invite"]) == 2
    assert "DISCORD_APPLICATION_ID" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["discord", "invite", "--client-id", "abc"])


def test_manager_policy_parses_permissions_roles_and_users() -> None:
    default = ManagerPolicy.default()
    assert default.allows(user_id=1, permissions=discord.Permissions(manage_channels=True))
    assert default.allows(user_id=1, permissions=discord.Permissions(manage_guild=True))
    assert default.allows(user_id=1, permissions=discord.Permissions(administrator=True).all())
    assert not default.allows(user_id=1, permissions=discord.Permissions(send_messages=True))
    assert not default.allows(user_id=1)  # a DM: no server permissions
    custom = ManagerPolicy.parse("role:11, user:22 ban_members")
    assert custom.allows(user_id=5, permissions=discord.Permissions.none(), role_ids=[11])
    assert custom.allows(user_id=22) and custom.allows(user_id=5, permissions=discord.Permissions(ban_members=True))
    assert not custom.allows(user_id=5, permissions=discord.Permissions(manage_channels=True))
    for bad in ("manage_everything", "role:abc", " , "):
        with pytest.raises(ValueError):
            ManagerPolicy.parse(bad)
