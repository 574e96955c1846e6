"""The one root of threatbot's expected failures, defined in the lowest layer so ``retrieval`` can use it.

``ThreatbotError`` means "the operator can fix this": the CLI prints its message as one line and exits 1
(a traceback only with ``-v``/``--debug``). Anything else escaping a command is a bug and keeps its
traceback. ``ConfigError`` is the branch for settings, files and folders that cannot work as given.
Subclasses keep their older bases too (``ValueError``, ``RuntimeError``), so existing ``except`` clauses
still catch them.
"""

from __future__ import annotations

__all__ = ["ConfigError", "ServiceUnavailable", "ThreatbotError"]


class ThreatbotError(Exception):
    """An expected failure whose message says what is wrong and what to do."""


class ConfigError(ThreatbotError, ValueError):
    """A setting, config file, folder or model that cannot work as given; the message names it and the fix."""


class ServiceUnavailable(ThreatbotError, RuntimeError):
    """A service threatbot depends on (a Chroma server, say) did not answer."""
