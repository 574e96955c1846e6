"""The Chroma collection that answers "which records are nearest to this question?".

Embedded (``PersistentClient`` in the data folder) by default, or a Chroma server when
``THREATBOT_CHROMA_URL`` is set — the same calls either way. Vectors are always computed by
threatbot and passed in, so Chroma never falls back to its own (downloading) default function.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from retrieval.errors import ServiceUnavailable

COLLECTION = "threat_records"
#: Chroma's add() refuses batches above its max_batch_size (~5k locally); stay well below.
ADD_BATCH = 2000


def open_chroma_client(chroma_url: str, chroma_path: Path):
    """A Chroma client for the configured deployment."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        parts = urlsplit(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        ssl = parts.scheme == "https"
        try:
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if ssl else 8000),
                ssl=ssl,
                settings=settings,
            )
        except Exception as error:  # chromadb raises ValueError on a refused connection, httpx types on others
            raise ServiceUnavailable(
                f"the Chroma server at {chroma_url} did not answer ({error.__class__.__name__}): start it, "
                "or unset THREATBOT_CHROMA_URL to use the embedded index in the data folder"
            ) from error
    chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_path), settings=settings)


class VectorIndex:
    """Nearest-neighbour search over record vectors, keyed by record id."""

    def __init__(self, client) -> None:
        self._client = client
        self._collection = client.get_or_create_collection(
            COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        #: A size the collection has had: a query for at most that many neighbours need not ask the size again
        #: (that costs as much as half a query). This object's delete/reset forget it; if another process
        #: shrinks the collection meanwhile, Chroma returns the fewer neighbours it has.
        self._known_size = 0

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, published: Sequence[float], kinds: Sequence[str]) -> None:
        for start in range(0, len(ids), ADD_BATCH):
            end = start + ADD_BATCH
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                metadatas=[
                    {"published": p, "kind": k} for p, k in zip(published[start:end], kinds[start:end], strict=True)
                ],
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._known_size = 0
            self._collection.delete(ids=list(ids))

    def query(self, vector: np.ndarray, limit: int, where: dict | None = None) -> list[tuple[str, float]]:
        """Ids and cosine similarities of the ``limit`` nearest records, best first."""
        if self._known_size < limit:
            self._known_size = self.count()
            if self._known_size == 0:
                return []
        result = self._collection.query(
            query_embeddings=[vector], n_results=min(limit, self._known_size), where=where, include=["distances"]
        )
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

    def ids(self, page: int = 5000) -> list[str]:
        """Every id in the collection (paged: Chroma caps how many one call returns)."""
        out: list[str] = []
        while True:
            batch = self._collection.get(include=[], limit=page, offset=len(out))["ids"]
            out += batch
            if len(batch) < page:
                return out

    def count(self) -> int:
        return self._collection.count()

    def reset(self) -> None:
        """Drop and recreate the collection (before a full reindex)."""
        self._known_size = 0
        self._client.delete_collection(COLLECTION)
        self._collection = self._client.get_or_create_collection(
            COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
