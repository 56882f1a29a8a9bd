"""Shared fixtures: a fake embedder you can check by hand, and a real index of the seeds built by the default embedder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.index.build import build_index

from rag.index.store import load_index
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


class FakeEmbedder:
    """Counts of a few keywords plus a constant bias dimension, L2-normalised.

    "Meta 2026 Meta" → counts (meta=2, 2026=1, bias=1) → [2, 0, 0, 0, 1, 0, 0, 1] / sqrt(6).
    Queries and passages are embedded alike; a token is a whitespace-separated word.
    """

    VOCABULARY = ["meta", "google", "microsoft", "amazon", "2026", "2025", "2024", "bias"]
    model_id = "fake:keywords-8"
    dim = len(VOCABULARY)

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def _vector(self, text: str) -> np.ndarray:
        words = re.findall(r"\w+", text.lower())
        counts = np.array([words.count(w) for w in self.VOCABULARY[:-1]] + [1], dtype=np.float32)
        return counts / np.linalg.norm(counts)

    def embed_queries(self, texts):
        return np.stack([self._vector(t) for t in texts])

    def embed_passages(self, texts):
        self.calls.append(list(texts))
        return np.stack([self._vector(t) for t in texts])

    def token_count(self, text: str) -> int:
        return len(text.split())


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def settings_for(tmp_path):
    """Settings with an index folder inside the test's tmp folder."""

    def make(**overrides) -> Settings:
        return Settings(index_dir=tmp_path / "index", seeds_dir=SEEDS, **overrides)

    return make


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    """A private copy of the seed articles that a test may change."""
    target = tmp_path / "articles"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def real_seeds_index(tmp_path_factory):
    """The seeds indexed once per session with the default real embedder (e5 on ONNX Runtime), real FAISS and
    real BM25."""
    from rag.retrieve.embedding import make_embedder

    settings = Settings(index_dir=tmp_path_factory.mktemp("real") / "seeds", seeds_dir=SEEDS, threads=2)
    embedder = make_embedder(settings)
    build_index(SEEDS, settings, embedder)
    return settings, embedder, load_index(settings.index_dir, embedder.model_id)


@pytest.fixture(scope="session")
def reader():
    """The short-answer reader over the real ONNX e5 (``rag.answer.reader``), loaded once per session."""
    from rag.answer.reader import make_reader

    return make_reader(Settings(threads=2))
