"""`threatbot search` in a terminal: what an empty answer to a KEV question says."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import needs_model

SMOKE_FEED = Path(__file__).parent / "data" / "smoke-feed.xml"

pytestmark = needs_model


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("what went into KEV this week?", "nothing added to the CISA KEV catalogue this week"),
        ("is CVE-2024-3400 in KEV yet?", "not in the CISA KEV catalogue as of "),
    ],
)
def test_an_empty_kev_answer_says_what_was_asked(tmp_path: Path, capsys, question: str, said: str) -> None:
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", str(SMOKE_FEED)]) == 0
    capsys.readouterr()
    assert main(["--data-dir", str(data), "search", question]) == 0
    out = capsys.readouterr().out
    assert said in out, out
