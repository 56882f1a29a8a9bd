"""The data types every stage passes on: articles, passages, retrieval hits and the answer object of
INTERFACES.md (what `rag ask --json`, `rag batch` and `/answer` return).

``Embedder`` is the one interface type here: what the index and retrieval need from any embedding model, so that
building an index does not depend on the retrieval package. A leaf module: it imports nothing of the project, so every stage can use it without import cycles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Article:
    """One article as indexed: ``text`` is what all offsets refer to."""

    doc_id: str
    title: str
    date: str | None
    date_inferred: bool
    text: str
    source: str
    sha256: str


@dataclass(frozen=True)
class Chunk:
    """A passage of one article with its provenance."""

    chunk_id: str
    doc_id: str
    position: int
    start: int
    end: int
    text: str
    text_hash: str
    context: str = ""

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the article's title and month as a header, then the passage."""
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass
class Hit:
    """One retrieved passage with its provenance and the scores that ranked it."""

    doc_id: str
    chunk_id: str
    score: float
    text: str
    start: int
    end: int
    title: str
    date: str | None
    date_inferred: bool
    dense_score: float | None = None
    bm25_score: float | None = None


@dataclass
class Citation:
    """Where one ``[n]`` marker points: an exact quote at ``[start, end)`` of the article's stored text."""

    n: int
    doc_id: str
    title: str
    date: str | None
    quote: str
    start: int
    end: int
    score: float
    date_inferred: bool = False


@dataclass
class Retrieved:
    """One entry of the ranked retrieval list."""

    doc_id: str
    chunk_id: str
    score: float
    text: str
    start: int = 0
    end: int = 0

    @classmethod
    def from_hit(cls, hit: Hit) -> "Retrieved":
        return cls(hit.doc_id, hit.chunk_id, hit.score, hit.text, hit.start, hit.end)


@dataclass
class Answer:
    """One question's answer with its citations and the retrieval list behind it."""

    id: str | None
    question: str
    answer: str | None
    abstained: bool = False
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[Retrieved] = field(default_factory=list)
    # Added for issue 4: which answerer wrote the text, why it abstained, the grounding checks of a generated
    # answer ({"passed": bool, "problems": [...]}), and why a generated answer was replaced by the extractive one.
    answerer: str = "extractive"
    abstain_reason: str | None = None
    grounding: dict | None = None
    fallback_reason: str | None = None
    # Added for issue 14: the shortest verbatim span of a cited quote that answers (None when abstained or for an
    # explanation question), and the calibrated probability that the answer is right.
    short_answer: str | None = None
    confidence: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Embedder(Protocol):
    """What the index and retrieval need from an embedding model."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def token_count(self, text: str) -> int: ...
