"""``threatbot doctor``'s Slack check: does Slack accept the bot token (``auth.test``)?"""

from __future__ import annotations

from bot.config import Settings
from bot.doctor import Check, Verdict

TIMEOUT = 10


def check_slack_token(settings: Settings) -> Check | None:
    """None when no Slack token is set (Slack is simply off)."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from adapters.slack.client import api_url_from_env

    token = settings.slack_bot_token.get_secret_value()
    if not token:
        return None
    client = WebClient(token=token, base_url=api_url_from_env(settings.environment()), timeout=TIMEOUT)
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "error") if error.response is not None else "error"
        return Check(
            "slack",
            Verdict.FAIL,
            f"Slack refused SLACK_BOT_TOKEN ({code})",
            "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page; reinstall the app if revoked",
        )
    except Exception as error:  # no answer at all: DNS, TLS, timeout
        return Check(
            "slack",
            Verdict.FAIL,
            f"Slack did not answer auth.test ({type(error).__name__})",
            "check this machine's route to slack.com (proxy, firewall); serve retries with backoff meanwhile",
        )
    return Check("slack", Verdict.OK, f"token accepted: @{answer.get('user')} in {answer.get('team')}")
