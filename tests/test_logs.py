"""``--log-format json``: one JSON object per log line, exceptions included, nothing else on the line."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import configure_logging


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(0, "json")
    try:
        log = logging.getLogger("threatbot.test")
        log.info("hidden without -v")
        log.warning("source %s failing", "cisa-kev")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("poll cycle failed")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging(0, "text")
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("warning", "threatbot.test", "source cisa-kev failing"),
        ("error", "threatbot.test", "poll cycle failed"),
    ]
    assert lines[1]["exc_type"] == "RuntimeError" and "boom" in lines[1]["exc"]
    assert lines[0]["time"].endswith("+00:00")
