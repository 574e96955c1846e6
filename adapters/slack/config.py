"""The Slack settings, from the environment, and a plain statement of what is missing.

Two ways to receive Slack's events:

* **Socket Mode** — ``SLACK_BOT_TOKEN`` (``xoxb-…``) and ``SLACK_APP_TOKEN`` (``xapp-…``, scope
  ``connections:write``). No public URL needed.
* **HTTP mode** — ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET``, with ``threatbot serve --slack-http
  PORT`` (or ``THREATBOT_SLACK_HTTP_PORT``); Slack posts to ``https://<your host>/slack/events``.

Feed posts only need ``SLACK_BOT_TOKEN``. Optional: ``THREATBOT_SLACK_HTTP_HOST`` (default
``127.0.0.1``; ``0.0.0.0`` in a container behind a proxy), ``THREATBOT_SLACK_MANAGERS`` (see
``adapters.slack.users``), ``THREATBOT_SLACK_WORKERS`` (answers computed at once, default 8),
``THREATBOT_SLACK_API_URL`` (the Web API base URL; tests only).

Secrets never appear in ``repr`` or in any message here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.slack.client import DEFAULT_API_URL, api_url_from_env
from adapters.slack.users import ManagerPolicy
from bot.errors import ConfigError

__all__ = ["SlackConfig", "SlackConfigError"]

#: Where each setting lives in the Slack app's pages, for error messages.
WHERE = {
    "SLACK_BOT_TOKEN": "OAuth & Permissions → Bot User OAuth Token, starts with xoxb-",
    "SLACK_APP_TOKEN": "Basic Information → App-Level Tokens, scope connections:write, starts with xapp-",
    "SLACK_SIGNING_SECRET": "Basic Information → App Credentials → Signing Secret",
}


class SlackConfigError(ConfigError):
    """The Slack settings are present but cannot work as given; the message says what to set."""


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    api_url: str = DEFAULT_API_URL
    managers: ManagerPolicy = field(default_factory=lambda: ManagerPolicy("admins"))
    workers: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, http_port: int | None = None) -> SlackConfig:
        """Read the environment; raises :class:`SlackConfigError` for values that cannot be right."""
        env = _settings_environment() if env is None else env
        port = http_port
        raw_port = (env.get("THREATBOT_SLACK_HTTP_PORT") or "").strip()
        if port is None and raw_port:
            if not raw_port.isdigit():
                raise SlackConfigError(f"THREATBOT_SLACK_HTTP_PORT must be a port number, not {raw_port!r}")
            port = int(raw_port)
        if port is not None and not 0 <= port <= 65535:
            raise SlackConfigError(f"the Slack HTTP port must be between 0 and 65535, not {port}")
        raw_workers = (env.get("THREATBOT_SLACK_WORKERS") or "8").strip()
        if not raw_workers.isdigit() or int(raw_workers) < 1:
            raise SlackConfigError(f"THREATBOT_SLACK_WORKERS must be a positive number, not {raw_workers!r}")
        try:
            managers = ManagerPolicy.parse(env.get("THREATBOT_SLACK_MANAGERS"))
        except ValueError as error:
            raise SlackConfigError(str(error)) from None
        config = cls(
            bot_token=(env.get("SLACK_BOT_TOKEN") or "").strip(),
            app_token=(env.get("SLACK_APP_TOKEN") or "").strip(),
            signing_secret=(env.get("SLACK_SIGNING_SECRET") or "").strip(),
            http_port=port,
            http_host=(env.get("THREATBOT_SLACK_HTTP_HOST") or "127.0.0.1").strip(),
            api_url=api_url_from_env(env),
            managers=managers,
            workers=int(raw_workers),
        )
        config._check_token_shapes()
        return config

    def _check_token_shapes(self) -> None:
        if self.bot_token and not self.bot_token.startswith("xoxb-"):
            hint = (
                " (that is an app-level token: it belongs in SLACK_APP_TOKEN)"
                if self.bot_token.startswith("xapp-")
                else ""
            )
            raise SlackConfigError(f"SLACK_BOT_TOKEN must be the bot token{hint}: {WHERE['SLACK_BOT_TOKEN']}")
        if self.app_token and not self.app_token.startswith("xapp-"):
            hint = " (that is a bot token: it belongs in SLACK_BOT_TOKEN)" if self.app_token.startswith("xoxb-") else ""
            raise SlackConfigError(f"SLACK_APP_TOKEN must be an app-level token{hint}: {WHERE['SLACK_APP_TOKEN']}")

    # -- what can run ------------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        """Whether anything Slack-related is set at all (nothing set: Slack is simply off)."""
        return bool(self.bot_token or self.app_token or self.signing_secret or self.http_port is not None)

    @property
    def mode(self) -> str | None:
        """``"http"``, ``"socket"`` or None (chat cannot run with these settings)."""
        if not self.bot_token:
            return None
        if self.http_port is not None:
            return "http" if self.signing_secret else None
        return "socket" if self.app_token else None

    def chat_problem(self) -> str | None:
        """Why the chat app cannot start (naming the missing setting), or None when it can or nothing is set."""
        if not self.configured or self.mode is not None:
            return None
        if self.http_port is not None:
            missing = [
                n
                for n, v in (("SLACK_BOT_TOKEN", self.bot_token), ("SLACK_SIGNING_SECRET", self.signing_secret))
                if not v
            ]
            return "Slack HTTP mode (--slack-http) needs " + " and ".join(f"{n} ({WHERE[n]})" for n in missing)
        if not self.bot_token:
            return f"Slack needs SLACK_BOT_TOKEN ({WHERE['SLACK_BOT_TOKEN']})"
        return (
            "Slack chat is off: SLACK_BOT_TOKEN is set, but to receive commands and mentions also set "
            f"SLACK_APP_TOKEN for Socket Mode ({WHERE['SLACK_APP_TOKEN']}), or run with --slack-http PORT and "
            f"SLACK_SIGNING_SECRET for HTTP mode ({WHERE['SLACK_SIGNING_SECRET']}). Feed posts still work."
        )

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.bot_token, self.app_token, self.signing_secret) if s]


def _settings_environment() -> Mapping[str, str]:
    """The variables as threatbot's one settings model resolves them (environment, ``.env``, config file)."""
    from bot.config import Settings

    return Settings.load().environment()
