"""Slack chat that could not be reached at start-up: ``serve`` keeps running and retries with backoff.

Bolt's ``App`` asks ``auth.test`` when it is built; with Slack unreachable (no route, DNS, TLS, a proxy)
that raised out of ``serve`` as a long traceback. Now the first failure is one warning, and this
component keeps building the app in the background (5 s, doubling to 5 min, with jitter) until Slack
answers, then runs it. A refused token is not retried: it needs the operator, and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from adapters.slack.config import SlackConfigError

log = logging.getLogger(__name__)

FIRST_DELAY = 5.0
MAX_DELAY = 300.0


def is_unreachable(error: BaseException) -> bool:
    """No answer from Slack (as opposed to an answer saying no)."""
    return isinstance(error, OSError | TimeoutError) or (
        isinstance(error, SlackClientError) and not isinstance(error, SlackApiError)
    )


class RetryingSlackComponent:
    """Builds the Slack component with ``build`` until Slack answers, then runs it until ``stop``."""

    name = "slack"

    def __init__(
        self,
        build: Callable[[], Any],
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.build = build
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.first_delay
        while not stop.is_set():
            self.attempts += 1
            try:
                component = await asyncio.to_thread(self.build)
            except SlackConfigError as error:  # Slack answered and refused: retrying cannot help
                log.error("Slack chat is off: %s", error)
                return
            except Exception as error:
                if not is_unreachable(error):
                    raise
                wait = delay * (1 + 0.2 * self.jitter())
                log.warning(
                    "Slack unreachable (%s, attempt %d); chat retries in %.0f s",
                    type(error).__name__,
                    self.attempts,
                    wait,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                delay = min(self.max_delay, delay * 2)
                continue
            log.warning("Slack reachable again after %d attempt(s): chat is on", self.attempts)
            await component.run(stop)
            return
