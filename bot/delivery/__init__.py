"""Delivery targets: where new incidents are posted. One contract (``base``), one module per platform.

``DeliveryTarget`` is the interface; ``ConsoleTarget`` prints, ``WebhookTarget`` POSTs signed JSON,
``MemoryTarget`` records for tests. Slack and Discord targets implement the same class.
"""

from bot.delivery.base import (
    DeliveryError,
    DeliveryRejected,
    DeliveryTarget,
    Digest,
    FieldChange,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateHint,
    RateLimited,
)
from bot.delivery.console import ConsoleTarget
from bot.delivery.memory import MemoryTarget
from bot.delivery.webhook import WebhookTarget

__all__ = [
    "ConsoleTarget",
    "DeliveryError",
    "DeliveryRejected",
    "DeliveryTarget",
    "Digest",
    "FieldChange",
    "IncidentPost",
    "IncidentUpdate",
    "MemoryTarget",
    "PostRef",
    "RateHint",
    "RateLimited",
    "WebhookTarget",
]
