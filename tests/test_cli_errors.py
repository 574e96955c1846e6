"""The CLI's top-level handler: an expected failure is one line on stderr and exit 1, a usage error exit 2.

Each case of issue 12 point 2 is run through ``bot.cli.main`` as a user would type it; none may print a
traceback unless ``-v``/``--debug`` asks for one.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import needs_model

SMOKE_FEED = Path(__file__).parent / "data" / "smoke-feed.xml"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unwritable_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["--data-dir", str(blocker / "data"), "stats"]) == 1
    line = _one_line_error(capsys)
    assert str(blocker / "data") in line and "--data-dir" in line


def test_bad_time_zone_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--data-dir", str(tmp_path), "search", "anything", "--tz", "Mars/Olympus"])
    assert exit_.value.code == 2
    line = _one_line_error(capsys)
    assert "Mars/Olympus" in line and "IANA" in line


def test_malformed_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    config = tmp_path / "threatbot.toml"
    config.write_text("[poller]\njitter = \n")
    monkeypatch.setenv("THREATBOT_CONFIG", str(config))
    assert main(["--data-dir", str(tmp_path / "data"), "sources"]) == 1
    line = _one_line_error(capsys)
    assert str(config) in line and "TOML" in line


def test_bad_setting_names_the_variable_and_the_form(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("THREATBOT_LLM_TIMEOUT", "8s")
    assert main(["--data-dir", str(tmp_path), "stats"]) == 1
    line = _one_line_error(capsys)
    assert "THREATBOT_LLM_TIMEOUT='8s'" in line and "number of seconds" in line


@needs_model
def test_missing_model_when_a_search_needs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", str(SMOKE_FEED)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("THREATBOT_EMBEDDING_MODEL_DIR", str(tmp_path / "no-model"))
    assert main(["--data-dir", str(data), "search", "heap overflow in the SSL-VPN daemon"]) == 1
    line = _one_line_error(capsys)
    assert "THREATBOT_EMBEDDING_MODEL_DIR" in line and "model.onnx" in line


@needs_model
def test_unreachable_chroma_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", str(SMOKE_FEED)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("THREATBOT_CHROMA_URL", f"http://127.0.0.1:{_closed_port()}")
    assert main(["--data-dir", str(data), "reindex"]) == 1
    line = _one_line_error(capsys)
    assert "Chroma server" in line and "THREATBOT_CHROMA_URL" in line


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["--data-dir", str(blocker / "data"), "--debug", "stats"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("threatbot: data folder")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("threatbot ")
