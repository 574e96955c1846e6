"""Every variable the README documents is a setting of the one model and a line of .env.example (compose's env_file)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

REPO = Path(__file__).resolve().parents[1]
PROVIDER_KEYS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}  # read by the langchain providers themselves


def test_readme_variables_are_settings_and_in_env_example() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\b((?:THREATBOT|SLACK|DISCORD)_[A-Z0-9_]+)\b", readme))
    example = {
        line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines() if re.match(r"^[A-Z]", line)
    }
    model = {info.json_schema_extra["env"] for info in Settings.model_fields.values()}  # type: ignore[index]
    assert documented, "the README documents no variables?"
    assert documented - model == set(), "documented but not in the settings model"
    assert (model | PROVIDER_KEYS) - example == set(), "settings missing from .env.example"
