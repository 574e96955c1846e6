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


@needs_model
def test_ingest_json_reports_each_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    missing = tmp_path / "nope.xml"
    code = main(["--data-dir", str(tmp_path / "data"), "ingest", "--json", str(SMOKE_FEED), str(missing)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] is True
    good, bad = out["sources"]
    assert good["format"] == "rss" and good["new"] == 3 and good["error"] is None
    assert bad["ok"] is False and str(missing) in bad["source"] and bad["error"]
    assert isinstance(out["backlog"], int)


@needs_model
def test_poll_once_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """One cycle for cron, as one JSON object: each source polled, what was queued and delivered."""
    import json

    from tests.helpers.feed_server import FeedRoute
    from tests.helpers.http_server import LocalHTTPServer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THREATBOT_ALLOW_PRIVATE_URLS", "1")
    config = tmp_path / "threatbot.toml"
    data = str(tmp_path / "data")
    with LocalHTTPServer() as server:
        server.route("/feed.xml", FeedRoute(SMOKE_FEED.read_bytes(), content_type="application/rss+xml"))
        config.write_text(f'default_sources = false\n[[sources]]\nname = "smoke"\nurl = "{server.url("/feed.xml")}"\n')
        code = main(["--data-dir", data, "poll", "--once", "--json", "--config", str(config)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(p["source"], p["status"]) for p in out["polled"]] == [("smoke", "ok")]
    assert out["polled"][0]["new"] + out["polled"][0]["backlog"] >= 3 and out["polled"][0]["error"] is None
    assert set(out["queued"]) == {"posts", "updates", "digests"} and "sent" in out["delivered"]


def test_every_argument_has_help_and_every_command_says_what_it_does() -> None:
    import argparse

    from bot.cli import build_parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if not (sub.description or "").strip():
                        missing.append(f"{path} {name}: no description")
                    walk(sub, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path}: {action.option_strings or action.dest}")

    parser = build_parser()
    walk(parser, "threatbot")
    assert not missing, missing
    assert (parser.description or "").splitlines()[0].startswith("threatbot: a threat-intel assistant")
