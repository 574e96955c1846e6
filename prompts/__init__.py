"""Prompt templates for the optional LLM answers, kept as files so they can be read and reviewed as prose.

Templates use ``string.Template`` placeholders (``$records``, ``${question}``): braces in the
prose (JSON examples, code) need no escaping, and a missing value is an error, not a silent gap.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

__all__ = ["load_prompt", "render_prompt"]


@cache
def load_prompt(name: str) -> str:
    """The text of ``prompts/<name>.md``. Raises FileNotFoundError naming the prompt when absent."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"not a prompt name: {name!r}")
    resource = resources.files(__name__).joinpath(f"{name}.md")
    if not resource.is_file():
        raise FileNotFoundError(f"no prompt named {name!r} (prompts/{name}.md)")
    return resource.read_text(encoding="utf-8").strip() + "\n"


def render_prompt(name: str, **values: str) -> str:
    """``prompts/<name>.md`` with its ``$placeholders`` filled; every placeholder must be given."""
    return Template(load_prompt(name)).substitute(values)
