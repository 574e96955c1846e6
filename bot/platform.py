"""The one contract between ``serve`` and a chat platform, as Errbot's ``backends/base.py`` is for its backends.

Each adapter package (``adapters.slack``, ``adapters.discord``) exports a ``platform(...)`` factory that
returns a :class:`Platform`. ``serve`` builds the core once (one :class:`~bot.conversation.Conversation`
over one store, its subscriptions and sources, and the LLM if configured), then asks every platform for
its chat component and its delivery targets. Nothing in ``bot`` imports an adapter or a chat SDK; the
CLI picks the platforms by name.

An adapter reaches the core only through its public methods (``Conversation.handle``,
``Conversation.rebind_thread`` and what :class:`ChatCore` lists), never through ``store.db`` or
thread tables.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from bot.conversation import Conversation
    from bot.delivery.base import DeliveryTarget


@dataclass(frozen=True)
class PlatformStatus:
    """What ``serve`` prints at start for one platform, without ``-v``."""

    name: str
    #: The chat side (commands, mentions, DMs) will run.
    chat: bool
    #: Feed posts can be delivered (a bot token, or webhooks).
    delivery: bool
    #: One line for the operator: how it connects, or exactly which setting is missing.
    detail: str


@runtime_checkable
class ChatComponent(Protocol):
    """A long-running chat adapter: ``run`` returns soon after ``stop`` is set; it retries its own connection."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


@runtime_checkable
class Platform(Protocol):
    """One chat platform as ``serve`` sees it: built from settings, then asked for its two halves."""

    name: str

    def status(self) -> PlatformStatus: ...

    def chat_component(self, core: Conversation) -> ChatComponent | None:
        """The chat adapter around the shared core, or None when chat is not configured."""
        ...

    def delivery_targets(self) -> list[DeliveryTarget]:
        """The targets feed posts for this platform go through (none when not configured)."""
        ...
