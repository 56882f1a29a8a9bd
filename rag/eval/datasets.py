"""The evaluation's questions and options: the German eval sets, XQuAD-de as questions, what a run asks for,
and retrieval metrics per split.

Kept apart from ``rag.eval.evaluation`` so that the parts of the suite (``xquad_answers``, ``own_data``) can share
them without importing the module that drives them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from rag.errors import RagError
from rag.eval.metrics import retrieval_metrics
from rag.settings import project_root

DATASETS = ("xquad", "questions_de", "questions_de_heldout")


def eval_dir() -> Path:
    return project_root() / "eval"


@dataclass(frozen=True)
class EvalQuestion:
    """One question with what every metric needs; ``query`` is the text sent to the pipeline."""

    id: str
    question: str
    query: str
    gold_docs: tuple[str, ...]
    split: str = "all"
    type: str = ""
    answerable: bool = True
    answer: tuple = ()
    evidence: tuple[str, ...] = ()


def load_questions_de(path: Path | None = None) -> list[EvalQuestion]:
    """The German eval set; follow-ups use their ``standalone`` rewrite as the query."""
    path = Path(path or eval_dir() / "questions_de.jsonl")
    if not path.exists():
        raise RagError(f"The eval set {path} does not exist.")
    questions = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query = row.get("standalone") or row["question"]
                questions.append(EvalQuestion(
                    str(row["id"]), row["question"], query, tuple(row.get("gold_docs") or ()), "all",
                    row.get("type", ""), bool(row.get("answerable", bool(row.get("gold_docs")))),
                    tuple(tuple(f) if isinstance(f, list) else f for f in row.get("answer") or ()),
                    tuple(row.get("evidence") or ())))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise RagError(f"{path.name}, line {number}: not a valid eval question ({err}).") from None
    return questions


def load_xquad_questions(path: Path) -> list[EvalQuestion]:
    from rag.eval.xquad import read_questions

    return [EvalQuestion(q.id, q.question, q.question, tuple(q.gold_docs), q.split, "xquad", True,
                         tuple((a,) for a in q.answers[:1]), ()) for q in read_questions(path)]


@dataclass
class EvalOptions:
    datasets: tuple[str, ...] = DATASETS
    configs: tuple[str, ...] | None = None  # None: every applicable configuration
    quick: bool = False
    sweep: bool = True
    ablate: bool = False  # also the extractive answerer with each composition rule switched off
    progress: bool = False
    xquad_source: Path | None = None
    xquad_workdir: Path | None = None
    xquad_index: Path | None = None
    questions_de: Path | None = None
    questions_de_heldout: Path | None = None
    seeds_index: Path | None = None


def wants(options: EvalOptions, config: str) -> bool:
    return options.configs is None or config in options.configs


def score_splits(questions: Sequence[EvalQuestion], ranked: Mapping[str, Sequence[str]],
                 splits: Sequence[str] = ("all",)) -> dict[str, dict]:
    """Retrieval metrics for each split (``all`` = every question)."""
    out = {}
    for split in splits:
        subset = [q for q in questions if split == "all" or q.split == split]
        scores = retrieval_metrics({q.id: q.gold_docs for q in subset}, ranked)
        scores["questions"] = sum(1 for q in subset if q.gold_docs)
        out[split] = scores
    return out
