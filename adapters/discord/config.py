"""The Discord adapter's settings, read from the environment.

=====================================  ==============================================================
``DISCORD_BOT_TOKEN``                  the bot's token; without it ``serve`` starts no Discord bot
``DISCORD_APPLICATION_ID``             the application (client) id, for ``threatbot discord invite``
``THREATBOT_DISCORD_GUILD_ID``         sync the app commands to this server only (instant; for testing)
``THREATBOT_DISCORD_MANAGERS``         who may subscribe/add sources (default ``manage_channels,manage_guild``)
``THREATBOT_DISCORD_MESSAGE_CONTENT``  ``1``: ask for the privileged Message Content intent (see docs)
``THREATBOT_DISCORD_TZ``               the zone chat answers word times in (Discord does not tell a user's)
``THREATBOT_DISCORD_WEBHOOK_URL``      webhook-only mode: post ``discord-webhook`` subscriptions here
``THREATBOT_DISCORD_WEBHOOKS``         several webhooks: ``name=URL,name=URL`` (subscription channel = name)
``THREATBOT_DISCORD_API_URL``          the REST base (default ``https://discord.com/api/v10``)
``THREATBOT_DISCORD_GATEWAY_URL``      the gateway (default ``wss://gateway.discord.gg/``)
=====================================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.discord.endpoints import DEFAULT_API_URL, DEFAULT_GATEWAY_URL, DiscordEndpoints
from adapters.discord.permissions import DEFAULT_MANAGERS, ManagerPolicy

__all__ = ["DiscordSettings"]

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class DiscordSettings:
    """Everything the Discord adapter needs to know, resolved. Build it with :meth:`from_env`."""

    token: str = field(default="", repr=False)
    application_id: int | None = None
    guild_id: int | None = None
    managers: ManagerPolicy = field(default_factory=ManagerPolicy.default)
    message_content: bool = False
    tz: str = "UTC"
    #: Webhook-only delivery: subscription channel name → webhook URL; ``"*"`` serves any name.
    webhooks: Mapping[str, str] = field(default_factory=dict, repr=False)
    endpoints: DiscordEndpoints = field(default_factory=DiscordEndpoints)

    @property
    def has_bot(self) -> bool:
        return bool(self.token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DiscordSettings:
        """From ``env`` (default ``os.environ``). Raises ValueError naming the variable that is wrong."""
        env = _settings_environment() if env is None else env

        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        tz = get("THREATBOT_DISCORD_TZ") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"THREATBOT_DISCORD_TZ: unknown time zone {tz!r} (use an IANA name)") from None
        return cls(
            token=get("DISCORD_BOT_TOKEN"),
            application_id=_snowflake(get("DISCORD_APPLICATION_ID"), "DISCORD_APPLICATION_ID"),
            guild_id=_snowflake(get("THREATBOT_DISCORD_GUILD_ID"), "THREATBOT_DISCORD_GUILD_ID"),
            managers=ManagerPolicy.parse(get("THREATBOT_DISCORD_MANAGERS") or DEFAULT_MANAGERS),
            message_content=get("THREATBOT_DISCORD_MESSAGE_CONTENT").lower() in _TRUE,
            tz=tz,
            webhooks=_webhooks(get("THREATBOT_DISCORD_WEBHOOK_URL"), get("THREATBOT_DISCORD_WEBHOOKS")),
            endpoints=DiscordEndpoints(
                get("THREATBOT_DISCORD_API_URL") or DEFAULT_API_URL,
                get("THREATBOT_DISCORD_GATEWAY_URL") or DEFAULT_GATEWAY_URL,
            ),
        )


def _snowflake(value: str, name: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise ValueError(f"{name} must be a numeric Discord id, not {value!r}")
    return int(value)


def _webhooks(single: str, several: str) -> dict[str, str]:
    """``THREATBOT_DISCORD_WEBHOOK_URL`` serves every channel name; ``THREATBOT_DISCORD_WEBHOOKS`` names them."""
    out: dict[str, str] = {}
    for pair in several.replace(";", ",").split(","):
        pair = pair.strip()
        if not pair:
            continue
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            # Never echo the pair: it holds a webhook token.
            raise ValueError("THREATBOT_DISCORD_WEBHOOKS wants name=URL pairs separated by commas")
        out[name.strip()] = url.strip()
    if single:
        out["*"] = single
    return out


def _settings_environment() -> Mapping[str, str]:
    """The variables as threatbot's one settings model resolves them (environment, ``.env``, config file)."""
    from bot.config import Settings

    return Settings.load().environment()
