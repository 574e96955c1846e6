"""Who is asking: a cached ``users.info`` (time zone, admin flags) and the rule for who may manage feeds.

The time zone makes "today" and every printed time the asker's (``IncomingMessage.tz``). The
manager rule (env ``THREATBOT_SLACK_MANAGERS``) decides ``IncomingMessage.can_manage`` — whether
someone may subscribe channels or add sources:

* ``admins`` (the default) — workspace admins and owners, per ``users.info``;
* ``everyone`` — anyone who can use the slash command;
* a comma-separated list of user ids (``U012ABC,U034DEF``) — exactly those people.

A lookup that fails (missing ``users:read`` scope, network) answers UTC and "not a manager" —
never more rights than known — and is retried after a minute rather than on every message.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

__all__ = ["ManagerPolicy", "SlackUser", "UserDirectory"]

log = logging.getLogger(__name__)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str = ""
    tz: str = "UTC"
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    #: False when ``users.info`` could not be read: the defaults above stand in.
    known: bool = True


class UserDirectory:
    """``users.info`` with a time-to-live cache (default an hour; failures a minute). Thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = 3600.0,
        failure_ttl: float = 60.0,
        max_entries: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, SlackUser]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str) -> SlackUser:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(user_id)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(user_id)
                return cached[1]
        user = self._lookup(user_id)
        with self._lock:
            self._cache[user_id] = (now + (self.ttl if user.known else self.failure_ttl), user)
            self._cache.move_to_end(user_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return user

    def _lookup(self, user_id: str) -> SlackUser:
        if not user_id:
            return SlackUser("", known=False)
        try:
            data = self.client.users_info(user=user_id).get("user") or {}
        except SlackApiError as error:
            log.warning("users.info for %s failed (%s): using UTC and no manager rights", user_id, _error(error))
            return SlackUser(user_id, known=False)
        except Exception as error:  # network trouble: same fallback
            log.warning("users.info for %s failed (%s): using UTC and no manager rights", user_id, type(error).__name__)
            return SlackUser(user_id, known=False)
        tz = data.get("tz") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            tz = "UTC"
        profile = data.get("profile") or {}
        return SlackUser(
            id=user_id,
            name=profile.get("display_name") or data.get("real_name") or data.get("name") or user_id,
            tz=tz,
            is_admin=bool(data.get("is_admin")),
            is_owner=bool(data.get("is_owner") or data.get("is_primary_owner")),
            is_bot=bool(data.get("is_bot")),
        )


def _error(error: SlackApiError) -> str:
    try:
        return str(error.response.get("error") or error.response.status_code)
    except Exception:
        return "error"


@dataclass(frozen=True)
class ManagerPolicy:
    """Who may subscribe channels and add sources."""

    mode: str  # "admins" | "everyone" | "list"
    user_ids: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: str | None) -> ManagerPolicy:
        """From ``THREATBOT_SLACK_MANAGERS``; raises ValueError naming what is wrong."""
        text = (value or "").strip()
        if not text or text.lower() == "admins":
            return cls("admins")
        if text.lower() == "everyone":
            return cls("everyone")
        ids = [part.strip() for part in text.split(",") if part.strip()]
        bad = [i for i in ids if not _USER_ID.match(i)]
        if bad or not ids:
            raise ValueError(
                "THREATBOT_SLACK_MANAGERS must be 'admins', 'everyone' or a comma-separated list of Slack user ids "
                f"(like U012ABCDEF); not understood: {', '.join(bad) or text!r}"
            )
        return cls("list", frozenset(ids))

    def allows(self, user: SlackUser) -> bool:
        if self.mode == "everyone":
            return bool(user.id)
        if self.mode == "list":
            return user.id in self.user_ids
        return user.known and (user.is_admin or user.is_owner)

    def describe(self) -> str:
        if self.mode == "everyone":
            return "everyone"
        if self.mode == "list":
            return f"{len(self.user_ids)} listed user(s)"
        return "workspace admins and owners"
