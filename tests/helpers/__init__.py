"""Reusable test helpers (a local HTTP server, …), imported as ``tests.helpers.<module>``."""
