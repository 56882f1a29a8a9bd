"""Retrieval runs of the evaluation: every question through a retriever, recorded once and replayed for the
fusion ablations (``rrf``, ``hybrid-passages``, ``hybrid-no-coverage``) and the sweep of the fusion settings.

Why record and replay: the ablations and the sweep (about 50 settings) differ only in how candidates are fused,
so each question is embedded and searched once (``RecordingRetriever``) and every setting re-runs the real
``Retriever.run`` on the recorded candidates. The sweep chooses on XQuAD-de's tuning half only; the held-out half
is reported for every point but never used to choose.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.eval.datasets import EvalOptions, EvalQuestion, score_splits, wants
from rag.eval.metrics import doc_ranking
from rag.index.dates import DateRange
from rag.retrieve import retrieval as retrieval_module
from rag.retrieve.retrieval import Retriever

K = 10
RRF_K = 60
RRF_WEIGHTS = {"dense_weight": 0.5, "sentence_weight": 0.0, "bm25_weight": 0.5, "coverage_weight": 0.0}
SWEEP_DEPTH = 200
SWEEP_GRID = {
    "dense_weight": [round(0.1 * i, 1) for i in range(11)],
    "sentence_weight": [round(0.1 * i, 1) for i in range(11)],
    "bm25_weight": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
    "coverage_weight": [round(0.1 * i, 1) for i in range(11)],
    "same_article_penalty": [0.0, 0.25, 0.5, 1.0, 2.0],
    "candidates": [10, 20, 50, 100, 200],
}
SELECTION = ("mrr@10", "recall@1", "recall@5")
# A setting replaces the current one only if it gains at least this much MRR@10 on the tuning half
# (one question moving from rank 2 to rank 1 among 632 is worth 0.0008): smaller gains are noise.
MIN_GAIN = 0.002


class RecordingRetriever(Retriever):
    """A retriever that records each question's dense and BM25 candidates and can replay them.

    Recording fetches ``depth`` candidates (and hands ``run`` the top ``n`` it asked
    for), so a sweep over fusion settings and candidate depths re-runs the real
    ``Retriever.run`` code without embedding any question twice.
    """

    def __init__(self, base: Retriever, depth: int = SWEEP_DEPTH) -> None:
        super().__init__(base.index, base.embedder, base.settings, base.reranker, base.store)
        self.depth = depth
        self.replay = False
        # question → (how many candidates were asked for, {row: score} best first)
        self._dense: dict[str, tuple[int, dict[int, float]]] = {}
        self._lexical: dict[str, tuple[int, dict[int, float]]] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def query_vector(self, question: str) -> np.ndarray:
        if not (self.replay and question in self._vectors):
            self._vectors[question] = super().query_vector(question)
        return self._vectors[question]

    def _cached(self, cache: dict, search: Callable[[str, int], dict[int, float]], question: str,
                n: int) -> dict[int, float]:
        if not (self.replay and question in cache and cache[question][0] >= n):
            size = max(n, self.depth)
            cache[question] = (size, search(question, size))
        return dict(list(cache[question][1].items())[:n])

    def dense_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        if dates is not None:  # a date range is not recorded (the sweeps do not use one)
            return super().dense_search(question, n, dates)
        return self._cached(self._dense, super().dense_search, question, n)

    def bm25_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        if dates is not None:
            return super().bm25_search(question, n, dates)
        return self._cached(self._lexical, super().bm25_search, question, n)

    @contextlib.contextmanager
    def configured(self, replay: bool = True, fusion: Callable | None = None, **overrides):
        """Temporarily other settings (``dense_weight=…``), replay mode and/or another fusion function."""
        saved = (self.settings, self.replay)
        self.settings = self.settings.model_copy(update=overrides)
        self.replay = replay
        patch = contextlib.nullcontext() if fusion is None else _patched_fusion(fusion)
        try:
            with patch:
                yield self
        finally:
            self.settings, self.replay = saved


@contextlib.contextmanager
def _patched_fusion(fusion: Callable):
    original = retrieval_module.fuse
    retrieval_module.fuse = fusion
    try:
        yield
    finally:
        retrieval_module.fuse = original


def rrf_fuse(columns: Sequence[tuple[Mapping[int, float], float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion with the signature of ``rag.retrieve.retrieval.fuse``, best first (ties by row).

    score(row) = Σ w · 1/(k + rank), ranks from 1 within each column; a row missing from a
    column gets nothing from it. The ablation uses the plain form: passage vectors and BM25,
    equal weights.
    """
    fused: dict[int, float] = {}
    for scores, weight in columns:
        if not weight:
            continue
        for rank, row in enumerate(sorted(scores, key=lambda r: (-scores[r], r)), start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


# Ablations replayed from the hybrid run's recorded candidates: name → (fusion function or None, weights, note).
REPLAYED = {
    "rrf": (rrf_fuse, RRF_WEIGHTS, f"reciprocal-rank fusion, k={RRF_K}, equal weights, same candidates"),
    "hybrid-passages": (None, {"dense_weight": 0.7, "sentence_weight": 0.0, "bm25_weight": 0.3, "coverage_weight": 0.0},
                        "no sentence signals: passage vectors 0.7, BM25 0.3"),
    "hybrid-no-coverage": (None, {"dense_weight": 0.7, "sentence_weight": 0.3, "bm25_weight": 0.3, "coverage_weight": 0.0},
                           "no sentence coverage: passage vectors 0.7, sentence vectors 0.3, BM25 0.3"),
}


@dataclass
class RunResult:
    """What one configuration retrieved: doc rankings per question and per-question latency."""

    ranked: dict[str, list[str]]
    latencies: list[float] = field(default_factory=list)
    passages: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)


def run_retrieval(retriever: Retriever, questions: Sequence[EvalQuestion], mode: str, k: int = K,
                  progress: bool = False, desc: str = "") -> RunResult:
    """Every question through ``retriever.run``; latency is the wall time of each call."""
    from tqdm import tqdm

    ranked, latencies, passages = {}, [], {}
    for q in tqdm(questions, desc=desc or mode, unit="q", disable=not progress, leave=False):
        started = time.perf_counter()
        hits = retriever.run(q.query, k=k, mode=mode)
        latencies.append(time.perf_counter() - started)
        ranked[q.id] = doc_ranking(h.doc_id for h in hits)
        passages[q.id] = [(h.doc_id, h.start, h.end) for h in hits]
    return RunResult(ranked, latencies, passages)


def gold_ranks(questions: Sequence[EvalQuestion], ranked: Mapping[str, Sequence[str]]) -> dict[str, int | None]:
    """1-based rank of the first gold document (None: not in the list)."""
    out = {}
    for q in questions:
        docs = list(ranked.get(q.id, ()))
        out[q.id] = next((i + 1 for i, d in enumerate(docs) if d in q.gold_docs), None)
    return out


# --- tuning sweep ------------------------------------------------------------


def _selection_key(scores: Mapping[str, float]) -> tuple:
    return tuple(round(scores[m], 6) for m in SELECTION)


def sweep(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], progress: bool = False,
          grid: Mapping[str, Sequence] = SWEEP_GRID, min_gain: float = MIN_GAIN) -> dict:
    """Coordinate-wise sweep of ``grid`` (in its order), choosing on the tuning half only.

    Each parameter is swept with the others at their current best; the value
    with the best (MRR@10, Recall@1, Recall@5) on ``tune`` replaces the current
    one only if its MRR@10 is at least ``min_gain`` higher. Every point also
    carries its held-out scores, for the report; they never influence the choice.
    """
    from tqdm import tqdm

    tune = [q for q in questions if q.split == "tune"]
    if not tune:
        raise RagError("The sweep needs questions of the tuning half.")
    best = {name: getattr(retriever.settings, name) for name in grid}
    defaults = dict(best)
    points = []
    total = sum(len(v) for v in grid.values())
    with tqdm(total=total, desc="sweep", unit="setting", disable=not progress, leave=False) as bar:
        for name, values in grid.items():
            scored = []
            for value in values:
                setting = dict(best, **{name: value})
                with retriever.configured(replay=True, **setting):
                    run = run_retrieval(retriever, questions, "hybrid")
                splits = score_splits(questions, run.ranked, ("tune", "heldout"))
                points.append({"parameter": name, "value": value, "setting": setting, **splits})
                scored.append((value, splits["tune"]))
                bar.update(1)
            current = next((s for v, s in scored if v == best[name]), None)
            top_value, top_scores = max(scored, key=lambda item: _selection_key(item[1]))
            if current is None or top_scores[SELECTION[0]] >= current[SELECTION[0]] + min_gain - 1e-12:
                best[name] = top_value
    with retriever.configured(replay=True, **best):
        tuned = run_retrieval(retriever, questions, "hybrid")
    return {"grid": {k: list(v) for k, v in grid.items()}, "selection": list(SELECTION), "min_gain": min_gain,
            "defaults": defaults,
            "chosen": best, "changed": {k: v for k, v in best.items() if v != defaults[k]},
            "points": points, "tuned": score_splits(questions, tuned.ranked, ("all", "tune", "heldout")),
            "tuned_ranked": tuned.ranked}


def run_modes(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], options: EvalOptions,
               label: str) -> dict[str, RunResult]:
    """``dense``/``bm25``/``hybrid`` runs (those wanted), in that order.

    ``hybrid`` runs first and records both candidate lists. A full run times
    ``dense`` and ``bm25`` afresh; a quick run replays them from the recording
    (each question is embedded once; their latency is then not measured).
    """
    runs = {}
    for mode in ("hybrid", "dense", "bm25"):
        if wants(options, mode):
            replay = options.quick and mode != "hybrid"
            with retriever.configured(replay=replay):
                run = run_retrieval(retriever, questions, mode, progress=options.progress, desc=f"{label} {mode}")
            runs[mode] = RunResult(run.ranked, [] if replay else run.latencies, run.passages)
    return {mode: runs[mode] for mode in ("dense", "bm25", "hybrid") if mode in runs}


def replayed_runs(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], options: EvalOptions,
                   label: str) -> dict[str, RunResult]:
    """The ablations of ``REPLAYED`` (those wanted), re-run from the recorded candidates (no latency of their own)."""
    runs = {}
    for name, (fusion, weights, _) in REPLAYED.items():
        if wants(options, name):
            with retriever.configured(replay=True, fusion=fusion, **weights):
                runs[name] = run_retrieval(retriever, questions, "hybrid", progress=options.progress,
                                           desc=f"{label} {name}")
    return runs
