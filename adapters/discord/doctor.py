"""``threatbot doctor``'s Discord check: does Discord accept the bot token (its application)?"""

from __future__ import annotations

from bot.config import Settings
from bot.doctor import Check, Verdict

TIMEOUT = 10


def check_discord_token(settings: Settings) -> Check | None:
    """None when no Discord bot token is set. Webhook-only setups have nothing to ask Discord up front."""
    import httpx

    from adapters.discord.endpoints import DEFAULT_API_URL

    token = settings.discord_bot_token.get_secret_value()
    if not token:
        return None
    api = (settings.discord_api_url or DEFAULT_API_URL).rstrip("/")
    try:
        response = httpx.get(
            f"{api}/oauth2/applications/@me", headers={"Authorization": f"Bot {token}"}, timeout=TIMEOUT
        )
    except httpx.HTTPError as error:
        return Check(
            "discord",
            Verdict.FAIL,
            f"Discord did not answer ({type(error).__name__})",
            "check this machine's route to discord.com (proxy, firewall); serve retries with backoff meanwhile",
        )
    if response.status_code == 401:
        return Check(
            "discord",
            Verdict.FAIL,
            "Discord refused DISCORD_BOT_TOKEN (401)",
            "reset the token in the Developer Portal (Bot → Reset Token) and set DISCORD_BOT_TOKEN to it",
        )
    if response.status_code != 200:
        return Check(
            "discord", Verdict.FAIL, f"Discord answered {response.status_code}", "try again; see status.discord.com"
        )
    app = response.json()
    return Check("discord", Verdict.OK, f"token accepted: application {app.get('name')} ({app.get('id')})")
