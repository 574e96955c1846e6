"""Permissions both ways: what the bot needs in a server (the invite URL) and who may manage its feeds.

**The bot's permissions.** :data:`BOT_PERMISSIONS` lists every ``discord.Permissions`` flag the
adapter's code relies on, with the call that needs it; the invite URL asks for exactly these with
the scopes ``bot applications.commands``. Nothing privileged, and no Administrator.

**Managers.** Subscribing a channel, unsubscribing and adding feed sources change what the bot does
for everybody, so only managers may (``IncomingMessage.can_manage``). By default a manager is whoever
has Manage Channels or Manage Server where they ask; ``THREATBOT_DISCORD_MANAGERS`` replaces that with
a comma-separated list of permission names (``manage_channels``, ``manage_guild``, ``administrator``,
any ``discord.Permissions`` flag), ``role:<id>`` and ``user:<id>``. In DMs only ``user:<id>``
entries count: a DM has no server permissions, and ``sources add`` affects every server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import discord

__all__ = [
    "BOT_PERMISSIONS",
    "DEFAULT_MANAGERS",
    "INVITE_SCOPES",
    "POSTING_NEEDS",
    "ManagerPolicy",
    "invite_url",
    "missing_for_posting",
    "permission_label",
    "required_permissions",
]

#: Each flag the code uses, and where. Keep in step with the code: the invite asks for exactly these.
BOT_PERMISSIONS: dict[str, str] = {
    "view_channel": "see the channels it answers and posts in (every send and thread call)",
    "send_messages": "answer mentions and post feed incidents and digests (channel.send, POST /channels/…/messages)",
    "send_messages_in_threads": "answer follow-ups and post incident updates inside threads",
    "create_public_threads": "open a thread for an answer or for an incident's updates (POST …/messages/…/threads)",
    "embed_links": "feed posts and answers are embeds",
    "read_message_history": "reply to a message when a thread cannot be opened (message_reference)",
}

#: The OAuth2 scopes the invite asks for: the bot user, and its slash commands.
INVITE_SCOPES: tuple[str, ...] = ("bot", "applications.commands")

DEFAULT_MANAGERS = "manage_channels,manage_guild"


#: What feed delivery needs, by the kind of place a subscription delivers to: (required, nice to have).
#: A text channel: posts, and a thread per incident for its updates (else replies, which need the
#: history). A thread: posts inside it. A forum or media channel: a post per incident (Send Messages;
#: Create Public Threads is ignored there) and its updates inside the post. A DM needs nothing.
POSTING_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "channel": (("view_channel", "send_messages", "embed_links"), ("create_public_threads", "read_message_history")),
    "thread": (("view_channel", "send_messages_in_threads", "embed_links"), ("read_message_history",)),
    "forum": (("view_channel", "send_messages", "send_messages_in_threads", "embed_links"), ()),
    "dm": ((), ()),
}

_LABELS = {"send_messages_in_threads": "Send Messages in Threads"}


def permission_label(flag: str) -> str:
    """A permission as Discord's settings name it: ``embed_links`` → "Embed Links"."""
    return _LABELS.get(flag) or flag.replace("_", " ").title()


def missing_for_posting(kind: str, permissions: discord.Permissions) -> tuple[list[str], list[str]]:
    """The required and the nice-to-have permissions ``permissions`` lacks for delivering to a ``kind`` place."""
    required, optional = POSTING_NEEDS[kind]
    return (
        [flag for flag in required if not getattr(permissions, flag)],
        [flag for flag in optional if not getattr(permissions, flag)],
    )


def required_permissions() -> discord.Permissions:
    """The permissions the bot needs, as a ``discord.Permissions`` (its ``value`` is the invite's number)."""
    return discord.Permissions(**dict.fromkeys(BOT_PERMISSIONS, True))


def invite_url(application_id: int | str, *, guild_id: int | None = None) -> str:
    """The OAuth2 URL that adds the bot to a server with exactly :func:`required_permissions`."""
    guild = discord.Object(id=guild_id) if guild_id else discord.utils.MISSING
    return discord.utils.oauth_url(
        application_id, permissions=required_permissions(), scopes=INVITE_SCOPES, guild=guild
    )


@dataclass(frozen=True)
class ManagerPolicy:
    """Who may manage a channel's feeds: any of these permissions, roles or users."""

    permissions: frozenset[str] = frozenset()
    roles: frozenset[int] = frozenset()
    users: frozenset[int] = frozenset()

    @classmethod
    def default(cls) -> ManagerPolicy:
        return cls.parse(DEFAULT_MANAGERS)

    @classmethod
    def parse(cls, text: str) -> ManagerPolicy:
        """``"manage_channels, role:123, user:456"`` → a policy. Raises ValueError on an unknown entry."""
        permissions: set[str] = set()
        roles: set[int] = set()
        users: set[int] = set()
        for raw in text.replace(";", ",").replace(" ", ",").split(","):
            entry = raw.strip()
            if not entry:
                continue
            kind, sep, value = entry.partition(":")
            if sep and kind.lower() in ("role", "user"):
                if not value.isdigit():
                    raise ValueError(f"THREATBOT_DISCORD_MANAGERS: {entry!r} needs a numeric id")
                (roles if kind.lower() == "role" else users).add(int(value))
                continue
            name = entry.lower().replace("-", "_")
            if name not in discord.Permissions.VALID_FLAGS:
                raise ValueError(
                    f"THREATBOT_DISCORD_MANAGERS: unknown entry {entry!r} "
                    "(use permission names like manage_channels, or role:<id>, user:<id>)"
                )
            permissions.add(name)
        if not (permissions or roles or users):
            raise ValueError("THREATBOT_DISCORD_MANAGERS names nobody; leave it unset for the default")
        return cls(frozenset(permissions), frozenset(roles), frozenset(users))

    def allows(
        self,
        *,
        user_id: int,
        permissions: discord.Permissions | None = None,
        role_ids: Iterable[int] = (),
    ) -> bool:
        """Whether this user may manage feeds; ``permissions`` None means "not in a server" (a DM)."""
        if user_id in self.users:
            return True
        if permissions is None:
            return False
        if any(getattr(permissions, name, False) for name in self.permissions):
            return True
        return bool(self.roles.intersection(role_ids))

    def describe(self) -> str:
        parts = sorted(self.permissions) + [f"role:{r}" for r in sorted(self.roles)]
        return ", ".join(parts + [f"user:{u}" for u in sorted(self.users)])
