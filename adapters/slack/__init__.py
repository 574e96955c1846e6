"""threatbot in Slack: the chat app (``/threat``, mentions, DMs, threads, buttons) and the feed target.

Front door:

* :class:`SlackAdapter` — a slack-bolt app wired to the conversation core (``app.py``);
* :class:`SlackComponent`, :func:`slack_component_from_env` —
  running it in ``threatbot serve``, Socket Mode or HTTP (``component.py``);
* :class:`SlackTarget`, :func:`slack_target_from_env` — feed posts, thread updates and digests for the
  outbox (``delivery.py``);
* :class:`SlackConfig`, :class:`SlackConfigError` — settings from the environment (``config.py``);
* :func:`platform` — Slack as ``serve`` sees it (:class:`bot.platform.Platform`, ``platform.py``).

Behind it: ``render.py`` (Block Kit within Slack's limits), ``mrkdwn.py`` (escaping and reading
Slack text), ``users.py`` (``users.info`` cache, who may manage feeds), ``store.py`` (cards, feedback,
delivery ledger), ``dedupe.py`` (events once), ``client.py`` (Web API client, 429 retries, secret
redaction in logs). Setup: ``docs/slack.md`` and ``slack/manifest.yml``.
"""

from adapters.slack.app import BOT_EVENTS, BOT_SCOPES, COMMAND, SlackAdapter
from adapters.slack.component import (
    SlackComponent,
    slack_component_from_env,
    slack_target_from_env,
)
from adapters.slack.config import SlackConfig, SlackConfigError
from adapters.slack.delivery import SlackTarget
from adapters.slack.platform import SlackPlatform, platform

__all__ = [
    "BOT_EVENTS",
    "BOT_SCOPES",
    "COMMAND",
    "SlackAdapter",
    "SlackComponent",
    "SlackConfig",
    "SlackConfigError",
    "SlackPlatform",
    "SlackTarget",
    "platform",
    "slack_component_from_env",
    "slack_target_from_env",
]
