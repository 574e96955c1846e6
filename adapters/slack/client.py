"""The Web API client threatbot uses, and the log filter that keeps Slack secrets out of every log line.

:func:`web_client` builds ``slack_sdk.WebClient`` against ``THREATBOT_SLACK_API_URL`` (default Slack's
own, ``https://slack.com/api/``; tests point it at a local fake) with retries for connection errors
and for HTTP 429: a ``Retry-After`` of up to ``max_retry_wait`` seconds is waited out in place
(slack_sdk's ``RateLimitErrorRetryHandler``); a longer one is left to the caller — the feed target
turns it into :class:`~bot.delivery.base.RateLimited` so the deliverer reschedules instead of
blocking.

:class:`SecretFilter` replaces configured secrets and anything shaped like a Slack token
(``xoxb-…``, ``xapp-…``, ``xoxp-…``) in log records; :func:`guarded_logger` returns a logger with it,
which the client, the Bolt app and the Socket Mode client all log through.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

__all__ = [
    "DEFAULT_API_URL",
    "BoundedRateLimitRetryHandler",
    "SecretFilter",
    "api_url_from_env",
    "guarded_logger",
    "retry_after",
    "web_client",
    "webhook_client",
]

DEFAULT_API_URL = "https://slack.com/api/"
#: Anything shaped like a Slack token: bot, user, app-level, legacy, refresh and config tokens.
_TOKEN_SHAPE = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{6,}")
REDACTED = "[redacted]"


def api_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """``THREATBOT_SLACK_API_URL`` with a trailing slash, or Slack's own Web API."""
    env = _settings_environment() if env is None else env
    url = (env.get("THREATBOT_SLACK_API_URL") or "").strip() or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


#: Every secret any SecretFilter was given: Bolt copies a base logger's filters to its own child loggers
#: once, so each filter redacts all secrets known to the process, not only those of its first app.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


class SecretFilter(logging.Filter):
    """Rewrites a record's message so no configured secret and no token-shaped string survives."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        with _SECRETS_LOCK:
            _SECRETS.update(s for s in secrets if s and len(s) >= 6)

    @property
    def secrets(self) -> list[str]:
        with _SECRETS_LOCK:
            return sorted(_SECRETS, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            return True
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def guarded_logger(name: str, secrets: Iterable[str]) -> logging.Logger:
    """A logger that redacts ``secrets`` (and token shapes) from everything logged through it."""
    logger = logging.getLogger(name)
    for existing in list(logger.filters):
        if isinstance(existing, SecretFilter):
            logger.removeFilter(existing)
    logger.addFilter(SecretFilter(secrets))
    return logger


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Waits out HTTP 429 in place only when ``Retry-After`` is short; otherwise the 429 reaches the caller."""

    def __init__(self, max_retry_count: int = 1, max_wait: float = 10.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response.headers)
        return wait is None or wait <= self.max_wait


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (slack_sdk gives header values as lists or strings)."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


def _retry_handlers(max_retry_wait: float) -> list[RetryHandler]:
    return [ConnectionErrorRetryHandler(max_retry_count=1), BoundedRateLimitRetryHandler(1, max_retry_wait)]


def web_client(
    token: str,
    *,
    base_url: str | None = None,
    timeout: int = 10,
    max_retry_wait: float = 10.0,
    logger: logging.Logger | None = None,
) -> WebClient:
    """A WebClient for ``token`` against ``base_url`` (default: ``THREATBOT_SLACK_API_URL`` or Slack)."""
    return WebClient(
        token=token,
        base_url=base_url or api_url_from_env(),
        timeout=timeout,
        logger=logger or guarded_logger("adapters.slack.api", [token]),
        retry_handlers=_retry_handlers(max_retry_wait),
    )


def webhook_client(url: str, *, timeout: int = 10, logger: logging.Logger | None = None) -> WebhookClient:
    """A client for one ``response_url`` (slash commands and buttons reply through it)."""
    return WebhookClient(
        url=url,
        timeout=timeout,
        logger=logger or logging.getLogger("adapters.slack.api"),
        retry_handlers=_retry_handlers(10.0),
    )


def _settings_environment() -> Mapping[str, str]:
    """The variables as threatbot's one settings model resolves them (environment, ``.env``, config file)."""
    from bot.config import Settings

    return Settings.load().environment()
