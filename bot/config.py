"""Where threatbot keeps its data and which services it talks to, read once from the environment.

Every knob is an environment variable (``THREATBOT_*``) so the same image runs on a laptop,
in CI and under docker-compose; the CLI's flags override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir


def default_data_dir() -> Path:
    """Per-user data folder (``~/.local/share/threatbot`` on Linux) unless the environment says otherwise."""
    configured = os.environ.get("THREATBOT_DATA_DIR")
    return Path(configured).expanduser() if configured else Path(user_data_dir("threatbot", appauthor=False))


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved. Build it with :meth:`from_env`."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: ``http://host:port`` of a Chroma server; empty means the embedded PersistentClient.
    chroma_url: str = ""
    #: Folder holding the all-MiniLM-L6-v2 ONNX export; empty means Chroma's cache and download.
    embedding_model_dir: str = ""
    #: Let user-supplied URLs reach loopback/private addresses. Only tests switch this on.
    allow_private_urls: bool = False
    #: Seconds a chat answer may wait for an LLM before the extractive answer is sent.
    llm_timeout: float = 8.0
    #: ``provider:model`` or an OpenAI-compatible base URL; empty means no LLM.
    llm: str = ""

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        return cls(
            data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(),
            chroma_url=os.environ.get("THREATBOT_CHROMA_URL", "").strip(),
            embedding_model_dir=os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR", "").strip(),
            allow_private_urls=_env_bool("THREATBOT_ALLOW_PRIVATE_URLS"),
            llm_timeout=_env_float("THREATBOT_LLM_TIMEOUT", 8.0),
            llm=os.environ.get("THREATBOT_LLM", "").strip(),
        )

    @property
    def database_path(self) -> Path:
        return self.data_dir / "threatbot.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"
