"""Fake platforms for tests and benchmarks: local servers that speak enough of a real API to drive real SDKs."""
