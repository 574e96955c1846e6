"""Shared fixtures: where the real data lives, the embedding model, and throwaway stores.

Tests that need ``../shared`` (fixtures, the offline model) skip cleanly where it is absent,
e.g. on a contributor's laptop; CI has it beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
MODEL_DIR = SHARED / "models" / "all-MiniLM-L6-v2" / "onnx"

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not present")


def _model_available() -> bool:
    configured = os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR")
    return bool(configured and Path(configured, "model.onnx").is_file()) or (MODEL_DIR / "model.onnx").is_file()


needs_model = pytest.mark.skipif(not _model_available(), reason="no offline embedding model (../shared/models)")


@pytest.fixture(scope="session", autouse=True)
def _embedding_model_env() -> None:
    """Point the embedder at the offline model when the environment has not already."""
    if not os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR") and (MODEL_DIR / "model.onnx").is_file():
        os.environ["THREATBOT_EMBEDDING_MODEL_DIR"] = str(MODEL_DIR)


@pytest.fixture
def settings(tmp_path):
    from bot.config import Settings

    return Settings.from_env(tmp_path / "data")


@pytest.fixture
def store(settings):
    """An empty record store in a temporary data dir (embedded Chroma)."""
    if not _model_available():
        pytest.skip("no offline embedding model (../shared/models)")
    from retrieval.store import RecordStore

    record_store = RecordStore(settings)
    yield record_store
    record_store.close()
