"""The answer object of INTERFACES.md: what `rag ask --json`, `rag batch` and `/answer` return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rag.retrieval import Hit


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

    def to_dict(self) -> dict:
        return asdict(self)
