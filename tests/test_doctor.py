"""``threatbot doctor``: a healthy store exits 0; each fault is named with its fix and exits 1."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import MODEL_DIR, needs_model

SMOKE_FEED = Path(__file__).parent / "data" / "smoke-feed.xml"


def _doctor(capsys: pytest.CaptureFixture[str], data: Path, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--data-dir", str(data), "doctor", "--json", "--offline", *extra])
    return code, json.loads(capsys.readouterr().out)


def _by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ingested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", str(SMOKE_FEED)]) == 0
    from bot.outbox import Outbox
    from retrieval.database import Database

    db = Database(data / "threatbot.sqlite3")
    Outbox(db)  # the delivery tables, as serve would create them
    db.close()
    return data


@needs_model
def test_a_healthy_store_exits_0(ingested: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("THREATBOT_EMBEDDING_MODEL_DIR", str(MODEL_DIR))
    code, report = _doctor(capsys, ingested)
    checks = _by_name(report)
    assert code == 0 and report["healthy"] is True, report
    assert checks["database"]["verdict"] == "ok" and "3 records" in checks["database"]["detail"]
    assert checks["vector index"]["verdict"] == "ok" and "3 vectors" in checks["vector index"]["detail"]
    assert "known all-MiniLM-L6-v2 export" in checks["embedding model"]["detail"]
    assert checks["outbox"]["verdict"] == "ok"


@needs_model
def test_each_fault_is_named_with_its_fix(ingested: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    from retrieval.database import Database

    db = Database(ingested / "threatbot.sqlite3")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO delivery_outbox (key, kind, platform, channel, payload, status, attempts, next_attempt,"
            " created_at, last_error) VALUES ('k1', 'post', 'slack', 'C123', '{}', 'dead', 8, 0, ?, 'channel_not_found')",
            (time.time(),),
        )
        conn.execute(
            "INSERT INTO delivery_subscriptions (id, platform, channel, query, created_by, created_at)"
            " VALUES ('s1', 'slack', 'C123', 'fortinet', 'analyst', 0)"
        )
        conn.execute(
            "INSERT INTO delivery_channel_health (platform, channel, state, failures, reason)"
            " VALUES ('slack', 'C123', 'disabled', 3, 'channel_not_found')"
        )
    db.close()
    monkeypatch.setenv("THREATBOT_EMBEDDING_MODEL_DIR", str(tmp_path / "model-folder-that-is-gone"))
    monkeypatch.setenv("THREATBOT_CHROMA_URL", f"http://127.0.0.1:{_closed_port()}")
    code, report = _doctor(capsys, ingested)
    checks = _by_name(report)
    assert code == 1 and report["healthy"] is False
    model, index, outbox = checks["embedding model"], checks["vector index"], checks["outbox"]
    assert model["verdict"] == "fail" and "model-folder-that-is-gone" in model["detail"] and model["fix"]
    assert index["verdict"] == "fail" and "did not answer" in index["detail"] and "THREATBOT_CHROMA_URL" in index["fix"]
    assert (
        outbox["verdict"] == "fail"
        and "1 dead delivery" in outbox["detail"]
        and "channel_not_found" in outbox["detail"]
    )
    assert "--retry-dead" in outbox["fix"]
    subscriptions = checks["subscriptions"]
    assert subscriptions["verdict"] == "warn" and "1 of 1 subscriptions are disabled" in subscriptions["detail"]
    assert "threatbot resume" in subscriptions["fix"]
    # The text form names the same faults, one per line, with the fix below each.
    assert main(["--data-dir", str(ingested), "doctor", "--offline"]) == 1
    text = capsys.readouterr().out
    assert "FAIL embedding model" in text and "FAIL vector index" in text and "FAIL outbox" in text
    assert text.rstrip().endswith("3 faults, 1 warning(s)") or "3 faults" in text.splitlines()[-1]


def test_bad_settings_are_a_finding_not_a_crash(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THREATBOT_METRICS_PORT", "ninety")
    code, report = _doctor(capsys, tmp_path / "data")
    assert code == 1
    assert (
        report["checks"][0]["name"] == "settings" and "THREATBOT_METRICS_PORT='ninety'" in report["checks"][0]["detail"]
    )


def test_platform_tokens_are_asked_of_the_platform(tmp_path: Path, capsys, monkeypatch) -> None:
    from tests.fakes.slack_api import FakeSlack

    monkeypatch.chdir(tmp_path)
    with FakeSlack() as slack:
        monkeypatch.setenv("THREATBOT_SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-fake-token")
        capsys.readouterr()
        main(["--data-dir", str(tmp_path / "data"), "doctor", "--json"])
        good = _by_name(json.loads(capsys.readouterr().out))["slack"]
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked-token")
        main(["--data-dir", str(tmp_path / "data"), "doctor", "--json"])
        bad = _by_name(json.loads(capsys.readouterr().out))["slack"]
    assert good["verdict"] == "ok", good
    assert bad["verdict"] == "fail" and "refused SLACK_BOT_TOKEN" in bad["detail"] and "xoxb-revoked" not in str(bad)
