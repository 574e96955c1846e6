"""A generic JSON webhook target: one POST per message, signed when a secret is configured.

The receiver gets ``{"event": "post"|"update"|"digest", "platform", "channel", "key", "sent_at", …payload}``
with headers ``Idempotency-Key`` (the same on every retry of one message: dedupe on it),
``X-Threatbot-Event`` and, with a secret, ``X-Threatbot-Signature: sha256=<hex>`` — HMAC-SHA256 of the
exact body bytes with the secret as key (verify before parsing; ``sent_at`` in the body lets the
receiver refuse replays). A JSON answer with an ``id`` becomes the message id that later updates
carry as ``ref.message_id``; otherwise the idempotency key is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.delivery.base import (
    DeliveryError,
    DeliveryRejected,
    DeliveryTarget,
    Digest,
    IncidentPost,
    IncidentUpdate,
    PostRef,
    RateHint,
    RateLimited,
)
from retrieval.fetch import USER_AGENT, parse_retry_after

__all__ = ["SIGNATURE_HEADER", "WebhookTarget", "sign"]

SIGNATURE_HEADER = "X-Threatbot-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Threatbot-Event"


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookTarget(DeliveryTarget):
    """POSTs JSON to ``url``. Serves every platform by default: the receiver routes by ``platform``/``channel``."""

    platform = "webhook"
    channel_format = "any string; passed through in the body's `channel`"
    rate_hint = RateHint(5.0)

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        platforms: tuple[str, ...] = ("*",),
        transport: httpx.BaseTransport | None = None,
        messages_per_second: float | None = None,
    ) -> None:
        super().__init__(platforms=platforms)
        self.url = url
        self.secret = secret or None
        if messages_per_second is not None:
            self.rate_hint = RateHint(messages_per_second)  # type: ignore[misc]  # per-instance override
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), transport=transport, trust_env=False, headers={"User-Agent": USER_AGENT}
        )

    def post(self, channel: str, post: IncidentPost) -> PostRef:
        return self._send("post", channel, post.key, post.platform, post.to_json())

    def update(self, channel: str, ref: PostRef, update: IncidentUpdate) -> PostRef:
        self._send("update", channel, update.key, update.platform, {"ref": ref.to_json(), **update.to_json()})
        return ref

    def post_digest(self, channel: str, digest: Digest) -> PostRef:
        return self._send("digest", channel, digest.key, digest.platform, digest.to_json())

    def close(self) -> None:
        self._client.close()

    def _send(self, event: str, channel: str, key: str, platform: str, payload: dict[str, Any]) -> PostRef:
        document = {
            **payload,
            "event": event,
            "platform": platform or self.platform,
            "channel": channel,
            "key": key,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key, EVENT_HEADER: event}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook {self.url}: {type(error).__name__}: {error}") from error
        status = response.status_code
        if status == 429:
            raise RateLimited(f"webhook {self.url}: HTTP 429", parse_retry_after(response.headers.get("retry-after")))
        if status == 408 or status >= 500:
            raise DeliveryError(f"webhook {self.url}: HTTP {status}")
        if status >= 400:
            raise DeliveryRejected(f"webhook {self.url}: HTTP {status}: {response.text[:200]}")
        return PostRef(platform or self.platform, channel, _message_id(response) or key)


def _message_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value not in (None, "") else None
