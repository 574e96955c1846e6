"""The embedder must give Chroma's default function's vectors, only faster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES, MODEL_DIR, needs_fixtures, needs_model


def _news_texts(count: int) -> list[str]:
    path = FIXTURES / "news-2023" / "security_feeds_2023_entries.jsonl"
    texts = []
    with path.open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(count), strict=False):
            item = json.loads(line)
            texts.append(f"{item['title']}\n{item.get('description') or ''}")
    return texts


@needs_model
@needs_fixtures
def test_vectors_equal_chromas_default_function_within_1e5():
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    from retrieval.embeddings import MiniLMEmbedder

    class ChromaDefaultFromLocalFolder(ONNXMiniLM_L6_V2):
        DOWNLOAD_PATH = Path(MODEL_DIR).parent  # Chroma looks in DOWNLOAD_PATH/onnx

    texts = [*_news_texts(40), "x", "Exchange Online outage " * 200, "ünïcödé — 攻撃 CVE-2024-3400"]
    ours = MiniLMEmbedder(MODEL_DIR).embed(texts)
    chroma = np.array(ChromaDefaultFromLocalFolder()(texts))
    assert ours.shape == (len(texts), 384)
    assert np.abs(ours - chroma).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@needs_model
def test_order_is_kept_although_batches_are_sorted_by_length():
    from retrieval.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(MODEL_DIR, batch_size=2)
    texts = ["a much longer sentence about a ransomware attack on a hospital", "short", "medium length text here"]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed_one(t) for t in texts])
    assert np.abs(together - alone).max() < 1e-5


def test_a_model_folder_missing_files_is_a_clear_error(tmp_path):
    from retrieval.embeddings import EmbeddingModelMissing, resolve_model_dir

    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(EmbeddingModelMissing, match=r"tokenizer\.json"):
        resolve_model_dir(tmp_path)


@needs_model
def test_the_model_is_verified_before_first_use(tmp_path):
    """A folder whose model.onnx is not a known export is refused, naming its hash, unless the operator trusts it."""
    import hashlib
    import shutil

    from retrieval.embeddings import EmbeddingModelMissing, MiniLMEmbedder, verify_model_dir

    assert "known all-MiniLM-L6-v2 export" in verify_model_dir(MODEL_DIR)
    tampered = tmp_path / "onnx"
    shutil.copytree(MODEL_DIR, tampered, copy_function=shutil.copyfile)  # writable copies of read-only files
    with (tampered / "model.onnx").open("ab") as handle:
        handle.write(b"\0")  # one byte more: still loads in some runtimes, but it is not the export
    digest = hashlib.sha256((tampered / "model.onnx").read_bytes()).hexdigest()
    with pytest.raises(EmbeddingModelMissing, match=f"THREATBOT_EMBEDDING_MODEL_SHA256={digest}"):
        MiniLMEmbedder(tampered)
    assert "matches THREATBOT_EMBEDDING_MODEL_SHA256" in verify_model_dir(tampered, trusted_sha256=digest)
    with pytest.raises(EmbeddingModelMissing, match="not the"):
        verify_model_dir(tampered, trusted_sha256="0" * 64)
    shutil.copyfile(MODEL_DIR / "model.onnx", tampered / "model.onnx")
    (tampered / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(EmbeddingModelMissing, match=r"vocab\.txt does not match"):
        verify_model_dir(tampered)
