"""threatbot's error root, as the core and the adapters import it (defined in :mod:`retrieval.errors`)."""

from retrieval.errors import ConfigError, ServiceUnavailable, ThreatbotError

__all__ = ["ConfigError", "ServiceUnavailable", "ThreatbotError"]
