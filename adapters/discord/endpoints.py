"""Where Discord is: the REST base and the gateway URL discord.py talks to, switchable for a local fake.

discord.py keeps both as class attributes (``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``); :func:`point_discord_at` is the one place
threatbot changes them. ``threatbot serve`` calls it with ``THREATBOT_DISCORD_API_URL`` and
``THREATBOT_DISCORD_GATEWAY_URL`` (both default to Discord's own), so the whole bot — login, command
sync, gateway, interactions, webhooks — can be pointed at a fake on 127.0.0.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

__all__ = ["DEFAULT_API_URL", "DEFAULT_GATEWAY_URL", "DiscordEndpoints", "current_endpoints", "point_discord_at"]

DEFAULT_API_URL = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"

_VERSION = re.compile(r"/v\d+$")


@dataclass(frozen=True)
class DiscordEndpoints:
    """A REST base (``…/api/v10``) and a gateway URL."""

    api_url: str = DEFAULT_API_URL
    gateway_url: str = DEFAULT_GATEWAY_URL

    @property
    def api_root(self) -> str:
        """The REST base without its version: ``https://discord.com/api`` (webhook URLs live under it)."""
        return _VERSION.sub("", self.api_url.rstrip("/"))


def current_endpoints() -> DiscordEndpoints:
    """What discord.py is pointed at right now."""
    return DiscordEndpoints(Route.BASE, str(DiscordWebSocket.DEFAULT_GATEWAY))


def point_discord_at(api_url: str | None = None, gateway_url: str | None = None) -> DiscordEndpoints:
    """Point discord.py's REST client and gateway at ``api_url`` / ``gateway_url``; return what was set before.

    ``None`` or an empty string means Discord's own. An API URL without a version gets ``/v10``.
    The change is process-wide (discord.py keeps the URLs on classes): call it once at start-up,
    or in tests, restore the returned endpoints afterwards.
    """
    previous = current_endpoints()
    api = (api_url or DEFAULT_API_URL).strip().rstrip("/")
    if not api.startswith(("http://", "https://")):
        raise ValueError(f"THREATBOT_DISCORD_API_URL must be an http(s) URL, not {api!r}")
    if not _VERSION.search(api):
        api += "/v10"
    gateway = (gateway_url or DEFAULT_GATEWAY_URL).strip()
    if not gateway.startswith(("ws://", "wss://")):
        raise ValueError(f"THREATBOT_DISCORD_GATEWAY_URL must be a ws(s) URL, not {gateway!r}")
    if not gateway.endswith("/"):
        gateway += "/"
    Route.BASE = api
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return previous
